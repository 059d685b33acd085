"""The polars ops against tests/reference_dj.py (a row-by-row Python statement of Data-Juicer's semantics)."""

import random

import polars as pl
import pytest

from ops_library.columns import ROW_ID, STATS
from ops_library.registry import get_op
from tests.reference_dj import reference_pipeline

PIECES = [
    "the", "Data", "juicer", "ÉTÉ", "ΟΔΟΣ", "naïve", "e\u0301", "中文", "日本語", "한국어", "क्", "عربى",
    "0", "42", "1999", "\u0661\u0662", "½", "²",
    ".", ",", "!", "?", "--", "...", "'", '"', "(", ")", "[", "]", "«", "»", "“", "”",
    "#", "@", "%", "/", "\\", "$",
    "😀", "👍🏻", "❤️", "🇺🇸", "1️⃣", "\u200d", "\ufe0f",
    "http://example.com/a_(b)", "https://www.x.org/p?q=1&r=2.", "www.test.co.uk", "ftp://f.net/",
    "mailto:a@b.cd", "example.com/path", "HTTP://UP.CASE", "\u0130ttp://x", "a@b.com",
    " ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n", "\u3000", "\u00a0", "\u2009", "\u200b", "\u2028",
    "\x1c", "\x85", "\ufeff",
]  # fmt: skip


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40))) for _ in range(n)]
    # Exact duplicates and near-duplicates (case, spacing, punctuation) for the deduplicator.
    for _ in range(n // 4):
        base = rng.choice(texts)
        variant = rng.choice([base, base.upper(), f" {base}\n", base.replace(" ", ""), base + "!", base.lower()])
        texts.insert(rng.randrange(len(texts) + 1), variant)
    return texts


TEXTS = random_texts(300)


def polars_pipeline(texts: list[str], process: list[dict]) -> pl.DataFrame:
    df = pl.DataFrame({"text": texts, ROW_ID: [f"r.jsonl:{i}" for i in range(1, len(texts) + 1)]})
    for step in process:
        ((name, params),) = step.items()
        df = get_op(name)(params).run(df).kept
    return df


PROCESSES = {
    "whitespace": [{"whitespace_normalization_mapper": {}}],
    "links": [{"clean_links_mapper": {}}],
    "links_repl": [{"clean_links_mapper": {"repl": "<\\1>"}}],
    "text_length": [{"text_length_filter": {"min_len": 20, "max_len": 120}}],
    "text_length_reversed": [{"text_length_filter": {"min_len": 20, "max_len": 120, "reversed_range": True}}],
    "words_num": [{"words_num_filter": {"min_num": 3, "max_num": 12}}],
    "words_num_open": [{"words_num_filter": {"min_num": 3, "max_num": 12, "max_closed_interval": False}}],
    "dedup": [{"document_deduplicator": {}}],
    "dedup_lower": [{"document_deduplicator": {"lowercase": True}}],
    "dedup_ignore": [{"document_deduplicator": {"ignore_non_character": True}}],
    "dedup_both": [{"document_deduplicator": {"lowercase": True, "ignore_non_character": True}}],
    "recipe": [
        {"whitespace_normalization_mapper": {}},
        {"clean_links_mapper": {}},
        {"text_length_filter": {"min_len": 5}},
        {"words_num_filter": {"min_num": 2}},
        {"document_deduplicator": {"lowercase": True, "ignore_non_character": True}},
    ],
}


def test_the_corpus_exercises_every_op() -> None:
    assert len(TEXTS) >= 300
    assert len(set(TEXTS)) < len(TEXTS)
    for name in ("whitespace", "links", "text_length", "words_num", "dedup_both"):
        rows = reference_pipeline([{"text": t} for t in TEXTS], PROCESSES[name])
        assert [r["text"] for r in rows] != TEXTS, name


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_polars_ops_equal_the_reference(name: str) -> None:
    process = PROCESSES[name]
    rows = [{"text": t, ROW_ID: f"r.jsonl:{i}"} for i, t in enumerate(TEXTS, 1)]
    expected = reference_pipeline(rows, process)
    result = polars_pipeline(TEXTS, process)
    assert result[ROW_ID].to_list() == [r[ROW_ID] for r in expected]
    assert result["text"].to_list() == [r["text"] for r in expected]
    if STATS in result.columns:
        assert result[STATS].to_list() == [r[STATS] for r in expected]
