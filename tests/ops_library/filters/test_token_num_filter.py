import json
from pathlib import Path

import pytest

from ops_library.base import OpUnavailableError
from ops_library.filters.token_num_filter import SHIPPED_TOKENIZER, TokenNumFilter, tokenizer_file
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

# The shipped tokenizer is BERT's uncased WordPiece: lower-cased, accents stripped, CJK split per character,
# no [CLS]/[SEP] added.
CASES = [
    ("", 0),
    ("   \r\n\t", 0),
    ("Hello world", 2),
    ("HELLO, world!", 4),  # hello , world !
    ("unaffable", 3),  # un ##aff ##able
    ("中文字", 3),
    ("😀", 1),  # [UNK]
    ("a\r\nb", 2),
]


@pytest.mark.parametrize(("text", "count"), CASES)
def test_token_count(text: str, count: int) -> None:
    assert stats_of(TokenNumFilter({"min_num": 0}), text) == [count]


def test_counts_past_the_embedding_truncation() -> None:
    # The shipped tokenizer.json truncates at 128 tokens for the embedding model; a count must not.
    assert stats_of(TokenNumFilter(), "word " * 100_000) == [100_000]


def test_default_keeps_ten_tokens_and_more() -> None:
    ten = "one two three four five six seven eight nine ten"
    assert kept_texts(TokenNumFilter(), ten, "one two", "") == [ten]


def test_bounds_closedness_and_reversal() -> None:
    texts = ["a b", "a b c", "a b c d"]
    assert kept_texts(TokenNumFilter({"min_num": 3, "max_num": 4}), *texts) == texts[1:]
    assert kept_texts(TokenNumFilter({"min_num": 3, "min_closed_interval": False}), *texts) == texts[2:]
    assert kept_texts(TokenNumFilter({"min_num": 0, "max_num": 4, "max_closed_interval": False}), *texts) == texts[:2]
    assert kept_texts(TokenNumFilter({"min_num": 3, "max_num": 3, "reversed_range": True}), *texts) == texts


def test_a_local_tokenizer_json_can_be_named(tmp_path: Path) -> None:
    # A word-level tokenizer splitting on whitespace only: "hello," is one token (the shipped one makes two).
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"},
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    assert stats_of(TokenNumFilter({"min_num": 0}), "hello, world") == [3]
    assert stats_of(TokenNumFilter({"hf_tokenizer": str(tmp_path), "min_num": 0}), "hello, world") == [2]
    path = str(tmp_path / "tokenizer.json")
    assert stats_of(TokenNumFilter({"hf_tokenizer": path, "min_num": 0}), "hello, world") == [2]
    assert SHIPPED_TOKENIZER.endswith("all-MiniLM-L6-v2") and tokenizer_file(SHIPPED_TOKENIZER) is not None


def test_data_juicers_default_tokenizer_is_refused() -> None:
    with pytest.raises(OpUnavailableError, match=r"token_num_filter: tokenizer 'EleutherAI/pythia-6\.9b-deduped'"):
        TokenNumFilter({"hf_tokenizer": "EleutherAI/pythia-6.9b-deduped"})


def test_stored_stat_is_reused() -> None:
    df = with_stored_stats(frame("short"), [{"num_token": 50}])
    assert TokenNumFilter().run(df).kept.height == 1
