"""The compiled code-point kernels (ops_library/codepoints.py) against the Python definitions they replace: the same
values on adversarial and real text, whatever the frame's chunking; a hash collision falls back to the exact count;
without the C library the filters keep their polars/Python forms with the same results."""

from __future__ import annotations

import itertools
import sys

import polars as pl
import pytest

from ops_library import codepoints
from ops_library.filters.character_repetition_filter import CharacterRepetitionFilter, char_rep_ratio
from ops_library.registry import get_op
from tests.ops_library.test_reference_agreement_filters import adversarial_texts
from tests.reference_dj_filters import refined_words

pytestmark = pytest.mark.skipif(codepoints.kernels() is None, reason="Sluice's C kernels are not built (no C compiler)")

TEXTS = [*adversarial_texts(300, seed=11), None]


@pytest.fixture(scope="module")
def demo_texts(demo_corpus) -> list[str]:
    corpus = demo_corpus.out_dir
    parquet = sorted(p for p in corpus.iterdir() if p.suffix == ".parquet")
    return pl.concat([pl.read_parquet(p).select("text") for p in parquet])["text"].head(3000).to_list()


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_rep_ratios_equal_the_python_definition(n: int) -> None:
    got = codepoints.char_rep_ratios(pl.Series(TEXTS), n, char_rep_ratio).to_list()
    assert got == [None if t is None else char_rep_ratio(t, n) for t in TEXTS]


def test_rep_ratios_on_real_text(demo_texts: list[str]) -> None:
    got = codepoints.char_rep_ratios(pl.Series(demo_texts), 10, char_rep_ratio).to_list()
    assert got == [char_rep_ratio(t, 10) for t in demo_texts]


def test_a_hash_collision_is_recomputed_exactly() -> None:
    # With multiplier 0 an n-gram's hash is its last code point: different n-grams collide all the time.
    recomputed: list[str] = []

    def exact(text: str, n: int) -> float:
        recomputed.append(text)
        return char_rep_ratio(text, n)

    texts = pl.Series(["abcxbcyacz" * 3, "aaaa", "abcdefg", "abcdbc"])
    got = codepoints.char_rep_ratios(texts, 3, exact, roll=0).to_list()
    assert got == [char_rep_ratio(t, 3) for t in texts]
    assert recomputed == [texts[0], texts[3]]  # abc and dbc share a last code point; the others do not collide


@pytest.mark.parametrize("name", ["alnum", "special"])
def test_class_ratio_equals_python_membership(name: str, demo_texts: list[str]) -> None:
    from ops_library.text import SPECIAL_CHARACTERS

    member = str.isalnum if name == "alnum" else SPECIAL_CHARACTERS.__contains__
    texts = [*TEXTS, *demo_texts[:500]]
    got = codepoints.class_ratio(pl.Series(texts), name).to_list()
    want = [None if t is None else (sum(map(member, t)) / len(t) if t else 0.0) for t in texts]
    assert got == want


@pytest.mark.parametrize("op", ["alphanumeric_filter", "special_characters_filter", "character_repetition_filter"])
def test_stats_are_the_same_without_numba_and_in_chunks(
    op: str, demo_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [t for t in [*TEXTS, *demo_texts[:800]] if t is not None]
    frame = pl.DataFrame({"text": texts})
    chunked = pl.concat([frame[i : i + 97] for i in range(0, frame.height, 97)], rechunk=False)
    assert chunked.n_chunks() > 1

    def stats(df: pl.DataFrame) -> list[float]:
        instance = get_op(op)({})
        (expr,) = instance.stats(pl.col("text")).values()
        return df.select(expr).to_series().to_list()

    compiled, compiled_chunked = stats(frame), stats(chunked)
    monkeypatch.setattr(codepoints, "kernels", lambda: None)
    assert compiled == compiled_chunked == stats(frame)


def test_character_repetition_filter_uses_the_exact_fallback_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codepoints, "kernels", lambda: None)
    frame = pl.DataFrame({"text": ["ab" * 1000, "The quick brown fox jumps over the lazy dog"]})
    (expr,) = CharacterRepetitionFilter().stats(pl.col("text")).values()
    assert frame.select(expr).to_series().to_list() == [996 / 1991, 0.0]


# --- strip_class: document_deduplicator's normalized text -------------------------------------------------------

# Python's str.strip() also strips U+001C..U+001F, which are not Unicode White_Space: a removal of `\s` keeps them.
EDGES = [
    "",
    " \t\n",
    "\x1c\x1dword\x1e\x1f",
    "\x1c 12 \x1f",
    "a\x1cb",
    "\u3000全角\u3000",
    "\x85\xa0nbsp\u2028\u2029",
    "٣٤٥ Arabic-Indic digits ۱۲",
    "emoji 😀👍🏽 and 漢字, punct !?.",
    "!!!???...",
    "\x1c",
    "ß ǅ İ",
]


def test_regex_table_is_the_regex_on_every_code_point() -> None:
    from ops_library.dedup.document_deduplicator import _NON_CHARACTER

    table = codepoints.regex_table(_NON_CHARACTER)
    sample = [*range(0x300), *range(0x600, 0x700), *range(0x2000, 0x2100), 0x3000, 0xFF10, 0x1D7CE, 0x10FFFF]
    chars = pl.Series([chr(c) for c in sample])
    assert table[sample].tolist() == chars.str.contains(f"^{_NON_CHARACTER}$").to_list()
    assert table[[ord(c) for c in " \t9٣!~\u3000"]].all() and not table[[ord(c) for c in "aZ漢\x1c😀"]].any()


def test_alnum_table_is_isalnum_of_every_code_point() -> None:
    table = codepoints.alnum_table()
    expected = [chr(c).isalnum() for c in range(sys.maxunicode + 1)]
    assert table.tolist() == expected
    assert codepoints.class_table("alnum") is codepoints.class_table("alnum")
    assert table[[ord(c) for c in "aZ9٣漢ǅ²"]].all() and not table[[ord(c) for c in "_ !\x00\u3000😀"]].any()


def test_strip_class_equals_the_regex_replacement(demo_texts: list[str]) -> None:
    from ops_library.dedup.document_deduplicator import _NON_CHARACTER
    from ops_library.text import PYTHON_WHITESPACE

    texts = [*EDGES, *(t for t in TEXTS if t is not None), *demo_texts[:800]]
    for remove in (codepoints.regex_table(_NON_CHARACTER), codepoints.chars_table("")):
        data, offsets = codepoints.strip_class(pl.Series(texts), remove, codepoints.chars_table(PYTHON_WHITESPACE))
        got = [data[a:b].tobytes().decode() for a, b in itertools.pairwise(offsets)]
        removed = pl.Series(texts).str.replace_all(_NON_CHARACTER + "+", "") if remove.any() else pl.Series(texts)
        assert got == [t.strip() for t in removed.to_list()]
        assert got[2] == "word"  # U+001C..U+001F come off the ends, as str.strip() takes them
        assert got[4] == "a\x1cb" and got[3] == ("12" if not remove.any() else "")


@pytest.mark.parametrize("lowercase", [False, True])
def test_dedup_hashes_are_the_same_without_numba_and_in_chunks(
    lowercase: bool, demo_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops_library.dedup.document_deduplicator import DocumentDeduplicator

    texts = [*EDGES, *TEXTS, *demo_texts[:800]]
    frame = pl.DataFrame({"text": texts})
    chunked = pl.concat([frame[i : i + 97] for i in range(0, frame.height, 97)], rechunk=False)
    op = DocumentDeduplicator({"lowercase": lowercase, "ignore_non_character": True})
    assert op._compiled()
    compiled, compiled_chunked = op.hash_column(frame), op.hash_column(chunked)
    monkeypatch.setattr(codepoints, "kernels", lambda: None)
    assert not op._compiled()
    regex = op.hash_column(frame)
    assert compiled.to_list() == compiled_chunked.to_list() == regex.to_list()
    assert regex.null_count() == 1 and compiled.dtype == pl.Binary


def test_dedup_normalizes_with_the_kernel_only_where_it_removes_characters() -> None:
    from ops_library.dedup import document_deduplicator as dd

    frame = pl.DataFrame({"text": ["Hello, World! 42", "hello world", "x" * 1000]})
    op = dd.DocumentDeduplicator({"lowercase": True, "ignore_non_character": True})
    assert op._compiled()
    assert not dd.DocumentDeduplicator({"lowercase": True})._compiled()  # polars is as fast without the removal
    hashes = op.hash_column(frame)
    assert hashes[0] == hashes[1] != hashes[2]


def test_python_whitespace_is_every_code_point_str_strip_removes() -> None:
    from ops_library.text import PYTHON_WHITESPACE

    assert "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()) == PYTHON_WHITESPACE


def test_refined_word_counts_equal_the_python_definition_and_the_regex(demo_texts: list[str]) -> None:
    from ops_library.text import count_refined_words

    texts = [*TEXTS, *demo_texts, "", " \t\n", "--- 1234 !!", "a\u3000b c\u00a0d", "😀 😀x ©"]
    got = codepoints.refined_word_counts(pl.Series(texts)).to_list()
    assert got == [None if t is None else len(refined_words(t, lower_case=False)) for t in texts]
    assert got == pl.select(count_refined_words(pl.lit(pl.Series(texts)))).to_series().to_list()


def test_word_counts_take_the_kernel_where_it_is_built_and_the_regex_where_not(monkeypatch) -> None:
    from ops_library.text import count_refined_words

    calls: list[int] = []
    real = codepoints.refined_word_counts
    monkeypatch.setattr(codepoints, "refined_word_counts", lambda s: calls.append(len(s)) or real(s))
    frame = pl.DataFrame({"text": ["one two ---", "x"]})
    assert frame.select(count_refined_words(pl.col("text"))).to_series().to_list() == [2, 1]
    assert calls == [2]
    monkeypatch.setattr(codepoints, "kernels", lambda: None)
    assert frame.select(count_refined_words(pl.col("text"))).to_series().to_list() == [2, 1]
    assert calls == [2]  # the regex
