import hashlib
import random
import re
import string
from collections import Counter

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ops_library.columns import HASH, ROW_ID
from ops_library.dedup.document_line_deduplicator import DOC_FREQUENCY, DocumentLineDeduplicator

# Data-Juicer 1.6.1's patterns and rules, written out (document_line_deduplicator.py).
BRACKETS_ONLY = frozenset("{}[]();")
LATEX_ENV_RE = re.compile(r"^\s*\\(begin|end)\{")
HTML_TAG_RE = re.compile(r"^\s*</?[a-z][a-z0-9]*[^>]*>?\s*$", re.IGNORECASE)
SPECIAL_CHAR_RE = re.compile(rf"\s+|\d+|[{re.escape(string.punctuation)}]")
DEFAULTS = {
    "frequency_threshold": 6,
    "lowercase": False,
    "ignore_special_character": False,
    "min_line_length": 2,
    "skip_brackets": True,
    "skip_markdown_headers": True,
    "skip_latex_env": True,
    "skip_html_tags": True,
}


def dj_line_dedup(texts: list[str], **params) -> list[str]:
    p = {**DEFAULTS, **params}

    def skip(line: str) -> bool:
        s = line.strip()
        return (
            len(s) < p["min_line_length"]
            or (p["skip_brackets"] and all(c in BRACKETS_ONLY for c in s))
            or (p["skip_markdown_headers"] and s.startswith("#"))
            or (p["skip_latex_env"] and bool(LATEX_ENV_RE.match(s)))
            or (p["skip_html_tags"] and bool(HTML_TAG_RE.match(s)))
        )

    def key(line: str) -> str:
        if p["lowercase"]:
            line = line.lower()
        if p["ignore_special_character"]:
            line = SPECIAL_CHAR_RE.sub("", line)
        return hashlib.md5(line.strip().encode()).hexdigest()

    hashes = [["" if skip(line) else key(line) for line in t.split("\n")] for t in texts]
    if len(texts) <= 1:
        return texts
    freq = Counter(h for row in hashes for h in {x for x in row if x})
    high = {h for h, n in freq.items() if n > p["frequency_threshold"]}
    return [
        "\n".join(line for line, h in zip(t.split("\n"), row, strict=True) if not (h and h in high))
        for t, row in zip(texts, hashes, strict=True)
    ]


POOL = [
    "Copyright (C) 2020 Foo Inc.",
    "copyright (c) 2021 foo inc!",
    "# Header",
    "{",
    "};",
    "<div class='x'>",
    "</DIV>",
    "\\begin{document}",
    "  All rights reserved.  ",
    "all rights reserved",
    "x",
    "",
    "  ",
    "Navigation: Home | About",
    "ΟΔΟΣ line",
    "οδος LINE",
    "Line 1",
    "Line 2",
    "\x1cpadded\x1c",
    "tab\t",
    "tab",
    "trailing\r",
]


def corpus(seed: int, n: int = 80) -> list[str]:
    rng = random.Random(seed)
    return [
        "\n".join(rng.choice([*POOL, f"unique {i} {j}", f"unique {i} {j}"]) for j in range(rng.randint(0, 9)))
        for i in range(n)
    ]


def frame(texts: list[str], file: str = "f.jsonl", start: int = 1) -> pl.DataFrame:
    return pl.DataFrame(
        {"text": texts, ROW_ID: [f"{file}:{i}" for i in range(start, start + len(texts))]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"lowercase": True},
        {"ignore_special_character": True},
        {"lowercase": True, "ignore_special_character": True, "frequency_threshold": 3},
        {"min_line_length": 0, "skip_brackets": False},
        {"skip_markdown_headers": False, "skip_latex_env": False, "skip_html_tags": False},
        {"min_line_length": 12},
        {"frequency_threshold": 0},
    ],
)
def test_texts_equal_data_juicers(params: dict) -> None:
    texts = corpus(0)
    out = DocumentLineDeduplicator(params).run(frame(texts))
    expected = dj_line_dedup(texts, **params)
    assert out.kept["text"].to_list() == expected
    assert out.changed == sum(a != b for a, b in zip(texts, expected, strict=True))
    assert out.dropped_count == 0


def test_document_frequency_counts_all_partitions() -> None:
    texts = corpus(1, 120)
    parts = [frame(texts[:50], "a"), frame(texts[50:90], "b", 51), frame(texts[90:], "c", 91)]
    op = DocumentLineDeduplicator()
    index = op.index([op.hashes(p) for p in parts])
    assert index.schema == pl.Schema({HASH: pl.UInt64, DOC_FREQUENCY: pl.UInt32})
    rewritten = [t for p in parts for t in op.apply(p, index).kept["text"].to_list()]
    assert rewritten == dj_line_dedup(texts)
    # one partition alone sees fewer documents per line: fewer lines are frequent
    alone = op.index([op.hashes(parts[2])])
    assert alone.height < index.height


def test_a_line_repeated_inside_one_text_counts_once() -> None:
    texts = ["boiler plate\nboiler plate\nboiler plate"] * 3 + ["other"]
    op = DocumentLineDeduplicator({"frequency_threshold": 3})
    assert op.run(frame(texts)).changed == 0
    assert DocumentLineDeduplicator({"frequency_threshold": 2}).run(frame(texts)).kept["text"].to_list() == [
        "",
        "",
        "",
        "other",
    ]


def test_single_row_is_left_alone_and_nulls_pass() -> None:
    op = DocumentLineDeduplicator({"frequency_threshold": 0})
    assert op.run(frame(["a line\nanother"])).changed == 0
    df = pl.DataFrame({"text": ["same line", None, "same line"], ROW_ID: ["1", "2", "3"]})
    out = op.run(df)
    assert out.kept["text"].to_list() == ["", None, ""]


def test_untouched_rows_and_columns_are_unchanged() -> None:
    texts = corpus(2)
    df = frame(texts).with_columns(pl.lit(7).alias("other"))
    out = DocumentLineDeduplicator({"frequency_threshold": 1000}).run(df)
    assert_frame_equal(out.kept, df)
    assert out.changed == 0


def test_empty_frames() -> None:
    op = DocumentLineDeduplicator()
    empty = frame([])
    assert op.hashes(empty)[HASH].dtype == pl.List(pl.UInt64)
    assert op.index([]).height == 0
    assert op.run(empty).kept.height == 0


def test_index_stats_describe_the_frequent_lines() -> None:
    texts = ["boiler plate\nown line a", "boiler plate\nown line b", "boiler plate", "other"]
    op = DocumentLineDeduplicator({"frequency_threshold": 2})
    index = op.index([op.hashes(frame(texts))])
    assert op.index_stats(index, total_rows=4) == {
        "frequent_lines": 1,
        "max_doc_frequency": 3,
        "median_doc_frequency": 3.0,
        "rows": 4,
    }
