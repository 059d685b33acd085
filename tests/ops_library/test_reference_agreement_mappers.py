"""The Sluice mappers against tests/reference_dj_mappers.py (Data-Juicer's definitions, row by row), on the real
demo corpus and on adversarial strings: identical texts required."""

from __future__ import annotations

import gzip
import random
from typing import Any

import polars as pl
import pytest

from ops_library.columns import PARENT_ID, ROW_ID
from ops_library.registry import get_op
from tests.reference_dj_mappers import reference_map

PIECES = [
    "the", "Data", "juicer", "ÉTÉ", "naïve", "e\u0301", "中文", "汉字", "漢字", "软件", "台湾", "日本語",
    "عربى", "שלום",
    "0", "42", "1999", "\u0661\u0662", "½", "Ã©", "â€™", "ï¬", "&amp;", "&lt;b&gt;", "&#39;", "&", "\x1b[31m", "\x00",
    ".", ",", "!", "?", "...", "......", "……", "。", "！", "？", "，", "、", "：", "；", "—", "–", "…", "’", "”", "“",
    "«", "»", "「", "」", "《", "》", "１", "％", "►", "◆", "■", "□", "{", "}", "[", "]", "(", ")", "|", "-", "--",
    "#", "@", "%", "/", "//", "/*", "*/", "*", "\\", "$", "Copyright", "COPYRİGHT", "copyright (c) 2024",
    "😀", "👍🏻", "❤️", "\u200d",
    "x@y.com", "First.Last+tag@mail.example.org", "a@B.COM", "192.168.0.1", "256.1.1.1", "10.0.0.255",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "fe80::1", "http://example.com/a", "www.test.org", "href",
    "<p>", "</p>", "<li>", "</li>", "<ol>", "</ol>", "<br/>", "<script>x</script>", "<!-- c -->", "<",
    "\\section{Intro}", "\\subsection*[s]{T}", "\\chapter{C}", "\\sectionx{no}", "\\paragraph{P}",
    "\\appendix", "\\begin{thebibliography}", "\\bibliography{refs}", "\\begin{references}",
    "\\newcommand{\\R}{\\mathbb{R}}", "\\def\\eps{\\varepsilon}", "\\R", "\\Rx", "\\eps", "\\newcommand*{\\n}{é}",
    "% comment", "\\%", "100%", "%%", "2”", "6’", "{”", "}’",
    "a b c\n", "1 2 3\n", "x|y|z\n", "p\tq\n",
    "Mr. Smith", "Dr.", "e.g.", "U.S.", "Hello world.", "Hello world!", "hello WORLD.",
    " ", " ", " ", "  ", "\n", "\n\n", "\n\n\n", "\t", "\r\n", "\r", "\u3000", "\u00a0", "\u2009", "\u200b",
    "\u2028", "\x0c", "\x1c", "\x85", "\ufeff",
]  # fmt: skip


def adversarial_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = ["", " ", "\n", "\r\n", "\t \u3000", "x" * 5000, ("word " * 3000).strip(), "中文" * 2000]
    texts += ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40))) for _ in range(n)]
    return texts


def demo_texts(info) -> list[str]:
    from pipeline_defs.corpus import COMMENTS_FILE, DOCSTRINGS_FILE, READMES_FILE

    docstrings = pl.read_ndjson(info.paths[DOCSTRINGS_FILE])["text"]
    comments = pl.read_ndjson(gzip.decompress(info.paths[COMMENTS_FILE].read_bytes()))["text"]
    readmes = pl.read_parquet(info.paths[READMES_FILE])["text"]
    return pl.concat([docstrings, comments, readmes]).to_list()


@pytest.fixture(scope="module")
def corpus(demo_corpus) -> dict[str, list[str]]:
    return {
        "demo": demo_texts(demo_corpus),
        "adversarial": adversarial_texts(3000),
    }


CASES: list[tuple[str, dict[str, Any]]] = [
    ("clean_email_mapper", {}),
    ("clean_email_mapper", {"repl": "<EMAIL:\\g<0>>"}),
    ("clean_email_mapper", {"pattern": r"r'[a-z]+@\w+'", "repl": "#"}),
    ("clean_email_mapper", {"pattern": r"(?<=\s)\S+@\S+$", "repl": "#"}),  # Python-only: row by row
    ("clean_ip_mapper", {}),
    ("clean_ip_mapper", {"repl": "<IP>"}),
    ("clean_html_mapper", {}),
    ("clean_copyright_mapper", {}),
    ("fix_unicode_mapper", {}),
    ("fix_unicode_mapper", {"normalization": "nfkd"}),
    ("punctuation_normalization_mapper", {}),
    ("chinese_convert_mapper", {}),
    ("chinese_convert_mapper", {"mode": "t2s"}),
    ("chinese_convert_mapper", {"mode": "s2twp"}),
    ("remove_bibliography_mapper", {}),
    ("remove_comments_mapper", {}),
    ("remove_comments_mapper", {"inline": False}),
    ("remove_comments_mapper", {"multiline": False}),
    ("remove_header_mapper", {}),
    ("remove_header_mapper", {"drop_no_head": False}),
    ("remove_long_words_mapper", {}),
    ("remove_long_words_mapper", {"min_len": 3, "max_len": 12}),
    ("remove_non_chinese_character_mapper", {}),
    ("remove_non_chinese_character_mapper", {"keep_punc": False}),
    ("remove_non_chinese_character_mapper", {"keep_alphabet": False, "keep_number": False, "keep_punc": False}),
    ("remove_specific_chars_mapper", {}),
    ("remove_specific_chars_mapper", {"chars_to_remove": ["ab", "-", "]", "\\", "^"]}),
    ("remove_repeat_sentences_mapper", {}),
    ("remove_repeat_sentences_mapper", {"lowercase": True, "ignore_special_character": False}),
    ("remove_repeat_sentences_mapper", {"lowercase": True, "min_repeat_sentence_length": 0}),
    ("remove_repeat_sentences_mapper", {"min_repeat_sentence_length": 8, "tokenizer": "lambda t: t.split(', ')"}),
    ("remove_table_text_mapper", {}),
    ("remove_table_text_mapper", {"min_col": 3, "max_col": 4}),
    ("remove_words_with_incorrect_substrings_mapper", {}),
    ("remove_words_with_incorrect_substrings_mapper", {"substrings": ["the", "é"]}),
    ("expand_macro_mapper", {}),
    ("sentence_split_mapper", {}),
    ("sentence_split_mapper", {"lang": "fr"}),
]
CHUNK_CASES: list[dict[str, Any]] = [
    {},
    {"split_pattern": r"(\n)\s*(\n)"},  # capture groups: the separators are chunks too (blank ones dropped)
    {"max_len": 50, "split_pattern": None, "overlap_len": 10},
    {"max_len": 200},
    {"max_len": 60, "split_pattern": r"\n|\. ", "overlap_len": 5},
]


def frame(texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"text": texts, ROW_ID: [f"r.jsonl:{i}" for i in range(1, len(texts) + 1)]})


def first_difference(got: list[str], expected: list[str]) -> str:
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g != e:
            return f"row {i}: got {g[:300]!r}, expected {e[:300]!r}"
    return ""


def check_against_reference(texts: list[str], name: str, params: dict) -> None:
    got = get_op(name)(params).run(frame(texts)).kept["text"].to_list()
    expected = [r["text"] for r in reference_map(name, params, [{"text": t} for t in texts])]
    assert got == expected, first_difference(got, expected)


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_mapper_equals_the_reference_on_adversarial_strings(
    corpus: dict[str, list[str]], name: str, params: dict
) -> None:
    check_against_reference(corpus["adversarial"], name, params)


@pytest.mark.parametrize("name", sorted({name for name, _ in CASES}))
def test_mapper_with_defaults_equals_the_reference_on_the_demo_corpus(corpus: dict[str, list[str]], name: str) -> None:
    check_against_reference(corpus["demo"], name, {})


@pytest.mark.parametrize("source", ["demo", "adversarial"])
@pytest.mark.parametrize("params", CHUNK_CASES, ids=range(len(CHUNK_CASES)))
def test_text_chunk_equals_the_reference(corpus: dict[str, list[str]], source: str, params: dict) -> None:
    texts = corpus[source]
    out = get_op("text_chunk_mapper")(params).run(frame(texts))
    rows = [{"text": t, ROW_ID: f"r.jsonl:{i}"} for i, t in enumerate(texts, 1)]
    expected = reference_map("text_chunk_mapper", params, rows)
    assert out.kept["text"].to_list() == [r["text"] for r in expected]
    parents = out.kept.select(pl.coalesce(PARENT_ID, ROW_ID)).to_series().to_list()
    assert parents == [r[ROW_ID] for r in expected]
    assert len(texts) + out.added == out.kept.height + out.dropped_count


def test_the_corpora_exercise_every_op(corpus: dict[str, list[str]]) -> None:
    texts = corpus["adversarial"]
    for name, params in CASES:
        mapped = reference_map(name, params, [{"text": t} for t in texts])
        assert sum(r["text"] != t for r, t in zip(mapped, texts, strict=True)) > 0, name
