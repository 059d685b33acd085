"""Sluice's filters against tests/reference_dj_filters.py (Data-Juicer's filters, row by row in Python), on the
real demo corpus and on adversarial strings: the same kept rows, in order, and the same stats."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import polars as pl
import pytest

from ops_library.columns import ROW_ID, STATS
from ops_library.registry import get_op
from tests.reference_dj_filters import reference_filter

PIECES = [
    "the", "Data", "juicer", "and", "of", "ÉTÉ", "ΟΔΟΣ", "Σ", "naïve", "e\u0301", "İ", "Г", "ß", "ǅ", "中文", "日本語",
    "한국어", "क्", "عربى", "שָׁלוֹם", "\u200f", "\u202e", "0", "42", "\u0661\u0662", "½", "²", "Ⅻ", "①",
    ".", ",", "!", "?", "--", "...", "'", '"', "(", ")", "«", "»", "“", "”", "#", "@", "%", "/", "\\", "$", "一", "ー",
    "😀", "👍🏻", "❤️", "🇺🇸", "1️⃣", "\u200d", "\ufe0f", "fuck", "shit", "ass",
    " ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
    "\u2029", "\u3000", "\u00a0", "\u2009", "\u200b", "\ufeff", "abcabcabcabc", "the the the the the the the the",
]  # fmt: skip


def adversarial_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = ["", " ", "\n", "\r\n", "\t\t", "a" * 9, "a" * 10, "a" * 11, "x" * 5000, ("ab" * 40 + "\n") * 50]
    texts += ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60))) for _ in range(n)]
    for _ in range(n // 5):  # repeated blocks: repetition ratios above 0
        texts.append(rng.choice(texts[10:]) * rng.randint(2, 5))
    return texts


ADVERSARIAL = adversarial_texts(400)


@pytest.fixture(scope="module")
def demo_rows(demo_corpus) -> list[dict]:
    """Every demo-corpus document with its Sluice id (`<file>:<row>`), read without the pipeline's reader."""
    corpus = demo_corpus.out_dir
    rows: list[dict] = []
    for path in sorted(p for p in Path(corpus).iterdir() if not p.name.startswith("_")):
        if path.suffix == ".parquet":
            file_rows = pl.read_parquet(path).to_dicts()
        else:
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                file_rows = [json.loads(line) for line in fh]
        rows += [{**r, ROW_ID: f"{path.name}:{i}"} for i, r in enumerate(file_rows, 1)]
    return rows


# (op, params): defaults, every documented option, and bounds that split the corpus.
CASES = [
    ("alphanumeric_filter", {}),
    ("alphanumeric_filter", {"min_ratio": 0.7, "max_ratio": 0.8, "reversed_range": True}),
    ("special_characters_filter", {}),
    ("special_characters_filter", {"min_ratio": 0.1, "max_ratio": 0.3, "min_closed_interval": False}),
    ("average_line_length_filter", {}),
    ("average_line_length_filter", {"min_len": 20, "max_len": 60, "max_closed_interval": False}),
    ("maximum_line_length_filter", {}),
    ("maximum_line_length_filter", {"min_len": 40, "max_len": 79, "reversed_range": True}),
    ("character_repetition_filter", {}),
    ("character_repetition_filter", {"rep_len": 3, "min_ratio": 0.05, "max_ratio": 0.2}),
    ("word_repetition_filter", {}),
    ("word_repetition_filter", {"rep_len": 2, "min_ratio": 0.0, "max_ratio": 0.1}),
    ("stopwords_filter", {}),
    ("stopwords_filter", {"lang": "all", "min_ratio": 0.2, "max_ratio": 0.6}),
    ("stopwords_filter", {"use_words_aug": True, "words_aug_group_sizes": [2, 3], "words_aug_join_char": "_"}),
    ("flagged_words_filter", {}),
    ("flagged_words_filter", {"max_ratio": 0.0, "max_closed_interval": True}),
    ("language_id_score_filter", {}),
    ("language_id_score_filter", {"lang": ["en", "fr"], "min_score": 0.5}),
    ("language_id_score_filter", {"lang": "en", "min_score": 0.9, "reversed_range": True}),
    ("token_num_filter", {}),
    ("token_num_filter", {"min_num": 20, "max_num": 200}),
    ("suffix_filter", {"suffixes": [".jsonl", ".parquet"]}),
    ("suffix_filter", {"suffixes": ".jsonl.gz", "reversed_range": True}),
]


def sluice_kept(rows: list[dict], op: str, params: dict, columns: list[str]) -> pl.DataFrame:
    df = pl.DataFrame([{k: r[k] for k in columns} for r in rows], schema={k: pl.String for k in columns})
    return get_op(op)(params).run(df).kept


def assert_same(rows: list[dict], op: str, params: dict) -> list[dict]:
    expected = reference_filter(rows, op, params)
    kept = sluice_kept(rows, op, params, ["text", ROW_ID])
    assert kept[ROW_ID].to_list() == [r[ROW_ID] for r in expected]
    if STATS in kept.columns:
        assert kept[STATS].to_list() == [r["__dj__stats__"] for r in expected]
    return expected


# The model-backed ops' reference calls the model once per row through its Python API: a third of the corpus.
SAMPLED = {"language_id_score_filter", "token_num_filter"}


@pytest.mark.parametrize(("op", "params"), CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_demo_corpus_equals_reference(demo_rows: list[dict], op: str, params: dict) -> None:
    rows = demo_rows[::3] if op in SAMPLED else demo_rows
    expected = assert_same(rows, op, params)
    if not (op == "flagged_words_filter" and not params):  # docstrings and comments hold few flagged words
        assert 0 < len(expected) < len(rows)  # the case decides something on real text


@pytest.mark.parametrize(("op", "params"), CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_adversarial_texts_equal_reference(op: str, params: dict) -> None:
    files = ["dir/f.jsonl", "dir/F.JSONL.GZ", "x.parquet", "noext", ".hidden.jsonl"]
    rows = [{"text": t, ROW_ID: f"{files[i % len(files)]}:{i}"} for i, t in enumerate(ADVERSARIAL)]
    assert_same(rows, op, params)


def test_specified_fields_on_the_corpus(demo_rows: list[dict]) -> None:
    for params in (
        {"field_key": "kind", "target_value": ["readme", "comment"]},
        {"field_key": "kind", "target_value": ["docstring"], "reversed_range": True},
    ):
        expected = reference_filter(demo_rows, "specified_field_filter", params)
        kept = sluice_kept(demo_rows, "specified_field_filter", params, ["text", "kind", ROW_ID])
        assert 0 < len(expected) < len(demo_rows)
        assert kept[ROW_ID].to_list() == [r[ROW_ID] for r in expected]
        assert kept[STATS].to_list() == [r["__dj__stats__"] for r in expected]


NUMERIC_VALUES = [
    "1.5",
    " 2 ",
    "1e3",
    "1_000",
    "nan",
    "inf",
    "-inf",
    "",
    "0",
    "x",
    "\u0661\u0662",
    None,
    "7",
    "-3",
    "0.0",
]


@pytest.mark.parametrize(
    "params",
    [
        {"field_key": "meta.score", "min_value": 0, "max_value": 100},
        {"field_key": "meta.score", "min_value": 1.5, "max_value": 12, "min_closed_interval": False},
        {"field_key": "meta.score", "min_value": 1.5, "max_value": 12, "reversed_range": True},
        {"field_key": "meta.n"},
        {"field_key": "meta.n", "min_value": 1, "max_value": 3, "reversed_range": True},
    ],
)
def test_specified_numeric_field_equals_reference(params: dict) -> None:
    rng = random.Random(3)
    rows = [
        {
            "text": "t",
            ROW_ID: f"f.jsonl:{i}",
            "meta": {"score": rng.choice(NUMERIC_VALUES), "n": rng.choice([0, 1, 2, 3, 4, None, -1])},
        }
        for i in range(300)
    ]
    expected = reference_filter(rows, "specified_numeric_field_filter", params)
    df = pl.DataFrame(
        rows, schema={"text": pl.String, ROW_ID: pl.String, "meta": pl.Struct({"score": pl.String, "n": pl.Int64})}
    )
    kept = get_op("specified_numeric_field_filter")(params).run(df).kept
    assert kept[ROW_ID].to_list() == [r[ROW_ID] for r in expected]
    assert kept[STATS].to_list() == [r["__dj__stats__"] for r in expected]


@pytest.mark.parametrize(
    "params",
    [
        {"field_key": "meta.tags", "target_value": ["a", "b"]},
        {"field_key": "meta.tags", "target_value": ["a", None], "reversed_range": True},
        {"field_key": "meta.lang", "target_value": ["en", None]},
        {"field_key": "meta.flag", "target_value": [1]},
    ],
)
def test_specified_field_equals_reference(params: dict) -> None:
    rng = random.Random(5)
    rows = [
        {
            "text": "t",
            ROW_ID: f"f.jsonl:{i}",
            "meta": {
                "tags": rng.choice([[], ["a"], ["a", "b"], ["b", "c"], None]),
                "lang": rng.choice(["en", "fr", None]),
                "flag": rng.choice([True, False, None]),
            },
        }
        for i in range(200)
    ]
    schema = {
        "text": pl.String,
        ROW_ID: pl.String,
        "meta": pl.Struct({"tags": pl.List(pl.String), "lang": pl.String, "flag": pl.Boolean}),
    }
    expected = reference_filter(rows, "specified_field_filter", params)
    kept = get_op("specified_field_filter")(params).run(pl.DataFrame(rows, schema=schema)).kept
    assert kept[ROW_ID].to_list() == [r[ROW_ID] for r in expected]
    assert kept[STATS].to_list() == [r["__dj__stats__"] for r in expected]
