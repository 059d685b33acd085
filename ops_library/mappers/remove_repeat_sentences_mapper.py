"""remove_repeat_sentences_mapper: drop sentences already seen earlier in the same document."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.registry import register
from ops_library.rowwise import map_rows
from ops_library.text import PYTHON_WHITESPACE

# Data-Juicer's sentence splitter, verbatim: a newline after sentence-ending punctuation (and after a closing
# quote that follows it). Its last class really holds ".", "{", "6", "}", "2" and "…" (the `\.{6}` and `\…{2}`
# written inside [...]). Literal classes only, so Python's `re` matches exactly as Data-Juicer's `regex` does.
_SPLITS = (
    (re.compile(r"([.。！!？\?])([^’”])"), r"\1\n\2"),
    (re.compile(r"(\.{6})([^’”])"), r"\1\n\2"),
    (re.compile("(\\…{2})([^’”])"), r"\1\n\2"),
    (re.compile(r"([.。!！？\?\.{6}\…{2}][’”])([^’”])"), r"\1\n\2"),
)
# The same four substitutions for polars: literal classes and no look-around, so Rust matches as Python does.
_RUST_SPLITS = tuple((pattern.pattern.replace("\\…", "…"), "${1}\n${2}") for pattern, _ in _SPLITS)
_RUST_SPECIAL = r"[^a-zA-Z0-9\x{4e00}-\x{9fa5}\n\t ]"
# What `ignore_special_character` deletes before comparing: all but ASCII letters and digits, U+4E00..U+9FA5,
# newline, tab and space.
_SPECIAL = re.compile(r"[^a-zA-Z0-9\u4e00-\u9fa5\n\t ]")


def split_sentence(text: str) -> list[str]:
    """Data-Juicer's `split_sentence`: the pieces keep their leading whitespace, so joining them gives the line."""
    for pattern, repl in _SPLITS:
        text = pattern.sub(repl, text)
    return text.split("\n")


def _wrap_tokenizer(fn: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """Data-Juicer's wrapper of a custom tokenizer: a space before every sentence after the first that lacks one."""

    def wrapped(line: str) -> list[str]:
        return [(" " + s if i > 0 and not s[:1].isspace() else s) for i, s in enumerate(fn(line))]

    return wrapped


def lambda_tokenizer(source: str) -> Callable[[str], list[str]]:
    """Data-Juicer's `_create_tokenizer`: a one-argument lambda written in the recipe, evaluated as Python."""
    try:
        node = ast.parse(source, mode="eval")
        if not isinstance(node.body, ast.Lambda):
            raise ValueError("Input string must be a valid lambda function.")
        if len(node.body.args.args) != 1:
            raise ValueError("Lambda function must have exactly one argument.")
        return eval(compile(node, "<string>", "eval"), {"__builtins__": __builtins__})
    except Exception as err:
        raise ValueError(f"Invalid tokenizer lambda: {err}") from err


@register("remove_repeat_sentences_mapper")
class RemoveRepeatSentencesMapper(Mapper):
    """Within each document, drops every sentence whose normalized form (stripped, optionally lower-cased, by
    default only letters, digits, CJK and spaces kept) appeared earlier in it; normalized forms shorter than
    `min_repeat_sentence_length` always stay. Lines stay lines. Matches Data-Juicer's op of the same name.

    In polars: lines and sentences exploded into rows, the first occurrence of each (document, sentence) kept,
    then joined back. Row by row in Python (Data-Juicer's loop) with a custom `tokenizer`, a Python function,
    and with `lowercase` but not `ignore_special_character`, where Python's and Rust's Unicode case tables (of
    different Unicode versions) could differ.
    """

    class Params(OpParams):
        lowercase: bool = Field(False, description="Compare sentences lower-cased.")
        ignore_special_character: bool = Field(
            True, description="Compare sentences with all but letters, digits, CJK, spaces, tabs removed."
        )
        min_repeat_sentence_length: int = Field(
            2, description="Sentences whose compared form is shorter than this are never dropped."
        )
        tokenizer: str | None = Field(
            None,
            description="A Python lambda splitting a line into sentences, e.g. "
            "\"lambda text: text.split('; ')\"; None: Data-Juicer's punctuation splitter.",
        )

    def __init__(self, params: OpParams | Mapping[str, Any] | None = None, *, text_key: str = "text"):
        super().__init__(params, text_key=text_key)
        source = self.params.tokenizer
        self._tokenize = split_sentence if source is None else _wrap_tokenizer(lambda_tokenizer(source))

    def dedup(self, text: str) -> str:
        """Data-Juicer's loop for one document."""
        lowercase, min_len = self.params.lowercase, self.params.min_repeat_sentence_length
        remove = _SPECIAL if self.params.ignore_special_character else None
        new_lines, seen = [], set()
        for line in text.split("\n"):
            new_line = ""
            if line:
                for sentence in self._tokenize(line):
                    key = sentence.strip()
                    if lowercase:
                        key = key.lower()
                    if remove is not None:
                        key = remove.sub("", key)
                    if len(key) < min_len:
                        new_line += sentence
                    elif key not in seen:
                        new_line += sentence
                        seen.add(key)
            new_lines.append(new_line)
        return "\n".join(new_lines)

    def dedup_all(self, texts: pl.Series) -> pl.Series:
        """`dedup` of every text, in polars: one row per sentence, the first of each (document, key) kept."""
        p = self.params
        line = pl.col("line")
        for pattern, repl in _RUST_SPLITS:
            line = line.str.replace_all(pattern, repl)
        key = pl.col("sentence").str.strip_chars(PYTHON_WHITESPACE)
        if p.lowercase:
            key = key.str.to_lowercase()
        if p.ignore_special_character:
            key = key.str.replace_all(_RUST_SPECIAL, "")
        present = texts.is_not_null()
        sentences = (
            pl.DataFrame({"text": texts.filter(present)})
            .select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("doc"), pl.col("text").str.split("\n").alias("line"))
            .with_columns(pl.int_ranges(pl.col("line").list.len(), dtype=pl.UInt32).alias("line_no"))
            .explode("line", "line_no")
            # Data-Juicer skips empty lines: they neither lose nor register a sentence.
            .with_columns(line.str.split("\n").alias("sentence"), (pl.col("line") == "").alias("empty"))
            .explode("sentence")
            .with_columns(pl.when(~pl.col("empty")).then(key).alias("key"))
        )
        keep = (
            pl.col("empty")
            | (pl.col("key").str.len_chars() < p.min_repeat_sentence_length)
            | pl.struct("doc", "key").is_first_distinct()
        )
        lines = (
            sentences.select("doc", "line_no", pl.when(keep).then(pl.col("sentence")).otherwise(pl.lit("")))
            .group_by("doc", "line_no", maintain_order=True)
            .agg(pl.col("sentence").str.join(""))
        )
        docs = lines.group_by("doc", maintain_order=True).agg(pl.col("sentence").str.join("\n"))["sentence"]
        return texts.clone().scatter(present.arg_true(), docs) if docs.len() else texts

    def map_text(self, text: pl.Expr) -> pl.Expr:
        p = self.params
        if p.tokenizer is not None or (p.lowercase and not p.ignore_special_character):
            return map_rows(text, self.dedup)
        return text.map_batches(self.dedup_all, return_dtype=pl.String, is_elementwise=True)
