import pytest

from ops_library.mappers.remove_repeat_sentences_mapper import RemoveRepeatSentencesMapper, split_sentence
from tests.ops_library.mappers.helpers import apply, frame

OP = "remove_repeat_sentences_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("  \n\t", "  \n\t"),
        ("Hello world. Hello world! Bye.", "Hello world. Bye."),  # "!" vs "." is ignored by default
        ("A b. a B.", "A b. a B."),  # case matters by default
        ("Same line.\nSame line.\nOther.", "Same line.\n\nOther."),  # the emptied line stays
        ("Ok. Ok. Ok.", "Ok."),  # "Ok" is not shorter than min_repeat_sentence_length=2
        ("你好。你好。再见。", "你好。再见。"),
        ("😀 Hi there. 😀 Hi there.", "😀 Hi there."),
        ("שלום עולם. שלום עולם.", "שלום עולם. שלום עולם."),  # Hebrew letters are removed: keys are empty
        ("One.\r\nOne.\r\n", "One.\r\n\r\n"),  # "\r" is a sentence of its own, too short to drop
        ("Intro. " + "Repeat this. " * 20_000, "Intro. Repeat this. "),
    ],
)
def test_dedups_sentences_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_splitter_is_data_juicers() -> None:
    assert split_sentence("A. B! C？D“x”. E") == ["A.", " B!", " C？", "D“x”.", " E"]
    assert split_sentence("wait......then") == ["wait.", "..", "..", ".then"]  # "." pairs, non-overlapping
    assert split_sentence("2”x") == ["2”", "x"]  # the last class holds "2", "6", "{", "}" by accident


def test_params() -> None:
    assert apply(OP, "A b. a B.", lowercase=True) == ["A b."]
    assert apply(OP, "Hi, you. Hi you.", ignore_special_character=False) == ["Hi, you. Hi you."]
    assert apply(OP, "Hi, you. Hi you.") == ["Hi, you."]
    assert apply(OP, "Ok. Ok. Fine. Fine.", min_repeat_sentence_length=3) == ["Ok. Ok. Fine."]
    assert apply(OP, "Ok. Ok.", min_repeat_sentence_length=2) == ["Ok."]


def test_lambda_tokenizer() -> None:
    # Data-Juicer puts a space before each later sentence that lacks one.
    assert apply(OP, "aa;bb;aa;cc", tokenizer="lambda t: t.split(';')") == ["aa bb cc"]
    for bad in ("len", "lambda a, b: a", "lambda: x", "lambda t: ("):
        with pytest.raises(ValueError, match="Invalid tokenizer lambda"):
            RemoveRepeatSentencesMapper({"tokenizer": bad})


def test_frames_without_text() -> None:
    assert RemoveRepeatSentencesMapper().run(frame()).kept.height == 0
    assert RemoveRepeatSentencesMapper().run(frame(None, None)).kept["text"].to_list() == [None, None]
    assert apply(OP, "Aa. Aa.", None, "\n\nBb. Bb.\n") == ["Aa.", None, "\n\nBb.\n"]
