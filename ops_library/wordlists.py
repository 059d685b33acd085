"""Word lists for stopwords_filter and flagged_words_filter, read from installed packages or a local directory,
and the filter both ops are (`WordListFilter`).

Data-Juicer downloads `stopwords.json` and `flagged_words.json` (BigScience's lists) at run time; Sluice
downloads nothing, so its default lists are those that ship inside PyPI packages:

* stopwords: `stopwordsiso` (the stopwords-iso collection, MIT licence; 58 languages). BigScience built its
  lists from stopwords-json, the collection stopwords-iso grew from, so the words largely overlap but are
  not the same lists (English: 1298 words here).
* flagged words: `better_profanity`'s `profanity_wordlist.txt` (MIT licence; English only, 900+ entries).
  BigScience's English list comes from LDNOOBW; the two overlap but differ.

A recipe that names a directory (`stopwords_dir` / `flagged_words_dir`) gets Data-Juicer's loader instead:
every `*.json` file whose name contains the list type, merged per language, so Data-Juicer's own files give
Data-Juicer's exact lists. A directory that is absent or holds no such file falls back to the shipped lists,
as Data-Juicer falls back to its download.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import ClassVar

import polars as pl
from pydantic import Field, PositiveInt

from ops_library.base import Filter, FilterParams, OpParams
from ops_library.text import lower_refined_words

STOPWORDS = "stopwords"
FLAGGED_WORDS = "flagged_words"
ALL = "all"  # Data-Juicer's key for the union of every language's list
_PACKAGE = {STOPWORDS: "stopwordsiso", FLAGGED_WORDS: "better_profanity"}


def _from_packages(words_type: str) -> dict[str, list[str]]:
    if words_type == STOPWORDS:
        text = resources.files("stopwordsiso").joinpath("stopwords-iso.json").read_text(encoding="utf-8")
        return dict(json.loads(text))
    text = resources.files("better_profanity").joinpath("profanity_wordlist.txt").read_text(encoding="utf-8")
    return {"en": [line.strip() for line in text.splitlines() if line.strip()]}


def _from_directory(words_dir: Path, words_type: str) -> dict[str, list[str]]:
    """Data-Juicer's `load_words_asset`, without its download: lists of every matching JSON file, merged."""
    merged: dict[str, list[str]] = {}
    for path in sorted(words_dir.iterdir()):
        if path.name.endswith(".json") and words_type in path.name:
            for lang, words in json.loads(path.read_text(encoding="utf-8")).items():
                merged.setdefault(lang, []).extend(words)
    return merged


def _directory_files(words_type: str, words_dir: str | None) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of the directory's list files: the cache key, so edited files are read again."""
    if words_dir is None or not Path(words_dir).is_dir():
        return ()
    files = sorted(p for p in Path(words_dir).iterdir() if p.name.endswith(".json") and words_type in p.name)
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def load_words(words_type: str, words_dir: str | None = None) -> dict[str, frozenset[str]]:
    """Language -> word set (plus "all", their union, unless the source has its own).

    The lists of `words_dir` when it holds matching files, else the shipped ones: Data-Juicer likewise reads
    the directory and falls back to its download (so its recipes' `stopwords_dir: ./assets` still run).
    """
    return _load_words(words_type, words_dir, _directory_files(words_type, words_dir))


@cache
def _load_words(words_type: str, words_dir: str | None, files: tuple) -> dict[str, frozenset[str]]:
    lists = _from_directory(Path(words_dir), words_type) if files and words_dir else {}
    sets = {lang: frozenset(words) for lang, words in (lists or _from_packages(words_type)).items()}
    if sets and ALL not in sets:
        sets[ALL] = frozenset().union(*sets.values())
    return sets


def missing_words(op: str, words_type: str, lang: str, words_dir: str | None, dir_param: str) -> str | None:
    """Why the list for `lang` cannot be had here (one line, with how to get it), or None."""
    if _directory_files(words_type, words_dir):
        source = f"{dir_param} '{words_dir}'"
    else:
        package = _PACKAGE[words_type]
        if find_spec(package) is None:
            return (
                f"{op}: the {words_type} list ships in the Python package '{package}', which is not installed; "
                f"pip install {package}"
            )
        source = f"the shipped lists (package {package})"
    langs = load_words(words_type, words_dir)
    if lang not in langs:
        return (
            f"{op}: no {words_type} list for lang '{lang}' in {source} (it has {', '.join(sorted(langs))}); "
            f"set {dir_param} to a directory holding a {words_type}.json with that language"
        )
    return None


def listed_ratio(
    words: pl.Expr, listed: frozenset[str], aug_group_sizes: list[int] | None = None, aug_join_char: str = ""
) -> pl.Expr:
    """Share of the words found in `listed`, over a list column of words; 0.0 without words.

    With `aug_group_sizes` (Data-Juicer's `use_words_aug`), every run of g consecutive words joined by
    `aug_join_char` is appended to the words first, for each g.
    """
    if aug_group_sizes:
        groups = [
            words.list.eval(
                pl.concat_str([pl.element().shift(-j) for j in range(g)], separator=aug_join_char).drop_nulls()
            )
            for g in aug_group_sizes
        ]
        words = pl.concat_list([words, *groups])
    members = pl.lit(pl.Series(sorted(listed), dtype=pl.String)).implode()
    hits = words.list.eval(pl.element().is_in(members)).list.sum()
    total = words.list.len()
    return pl.when(total > 0).then(pl.min_horizontal(hits / total, 1.0)).otherwise(0.0).cast(pl.Float64)


class WordListParams(FilterParams):
    """What stopwords_filter and flagged_words_filter share: the language, the word split and Data-Juicer's
    word augmentation. Each op adds its bounds and its directory field (`WordListFilter.dir_param`)."""

    lang: str = Field("en", description='Language whose word list is used; "all" merges every language.')
    tokenization: bool = Field(
        False, description="Split words with a SentencePiece model instead of whitespace (not supported)."
    )
    use_words_aug: bool = Field(
        False, description="Also count runs of consecutive words joined together (for Chinese, Vietnamese)."
    )
    words_aug_group_sizes: list[PositiveInt] = Field([2], description="Run lengths joined when use_words_aug.")
    words_aug_join_char: str = Field("", description="Text put between the words of a joined run.")


class WordListFilter(Filter):
    """A filter on the share of a text's words found in a word list (`words_type`, from the directory named by
    the `dir_param` field or the shipped list). Words are split on space, newline and tab, lower-cased, stripped
    of special characters at both ends and dropped when empty (0.0 without words)."""

    words_type: ClassVar[str]
    dir_param: ClassVar[str]
    bounds = ("min_ratio", "max_ratio")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        from ops_library.filters.word_repetition_filter import sentencepiece_refusal

        words_dir = getattr(params, cls.dir_param)
        return sentencepiece_refusal(cls.name, params) or missing_words(
            cls.name,
            cls.words_type,
            params.lang,  # type: ignore[attr-defined]
            words_dir,
            cls.dir_param,
        )

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        p = self.params
        listed = load_words(self.words_type, getattr(p, self.dir_param))[p.lang]
        groups = p.words_aug_group_sizes if p.use_words_aug else None
        return {self.stat: listed_ratio(lower_refined_words(text), listed, groups, p.words_aug_join_char)}
