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

# Data-Juicer's sentence splitter, verbatim: a newline after sentence-ending punctuation (and after a closing
# quote that follows it). Its last class really holds ".", "{", "6", "}", "2" and "…" (the `\.{6}` and `\…{2}`
# written inside [...]). Literal classes only, so Python's `re` matches exactly as Data-Juicer's `regex` does.
_SPLITS = (
    (re.compile(r"([.。！!？\?])([^’”])"), r"\1\n\2"),
    (re.compile(r"(\.{6})([^’”])"), r"\1\n\2"),
    (re.compile("(\\…{2})([^’”])"), r"\1\n\2"),
    (re.compile(r"([.。!！？\?\.{6}\…{2}][’”])([^’”])"), r"\1\n\2"),
)
# Where the splitter can cut (or a line ends): a document without any of these is one sentence, left unchanged.
_MAY_SPLIT = r"[.。！!？?\n]|…|[{}26][’”]"
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

    Row by row in Python: the set of sentences seen is per document, which no polars expression keeps. With the
    default splitter, only rows where it can cut (a sentence end or a newline) are visited.
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

    def map_text(self, text: pl.Expr) -> pl.Expr:
        needs = text.str.contains(_MAY_SPLIT) if self.params.tokenizer is None else None
        return map_rows(text, self.dedup, needs)
