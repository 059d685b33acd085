"""text_chunk_mapper: split each text into chunks, one row per chunk."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import polars as pl
from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from ops_library.base import Mapper, OpOutput, OpParams
from ops_library.columns import FILTERED, PARENT_ID, ROW_ID
from ops_library.registry import register

_ROW = "__sluice_chunk_row__"


@register("text_chunk_mapper")
class TextChunkMapper(Mapper):
    """Splits each text into chunks, one output row per chunk, every other field copied. With `split_pattern`
    only: the pieces between its matches, blank pieces dropped; with `max_len` only: windows of `max_len`
    characters overlapping by `overlap_len`; with both: the longest prefix of at most `max_len` characters that
    ends before a match, forced cuts (with overlap) where none matches. Matches Data-Juicer's op of the same
    name, with Python's `re` as Data-Juicer (pattern cases row by row: regex splits with capture groups and
    the recursive cut have no polars form; `max_len` only is polars).

    A row split into n > 1 chunks becomes rows with ROW_ID "<parent ROW_ID>#1".."#n" and PARENT_ID the parent's
    ROW_ID; a row left whole keeps its ROW_ID. A row with no non-blank chunk (a blank text with `split_pattern`
    only) is dropped, as in Data-Juicer, and reported as filtered. Deviations: `tokenizer` (Hugging Face,
    tiktoken, DashScope, all downloaded at run time) is refused at validation; the recursive cut is a loop, so
    texts needing more than ~1000 chunks work (Data-Juicer raises RecursionError), and a pattern whose last match
    ends at 0 (e.g. "^") is force-cut where Data-Juicer recurses without end.
    """

    class Params(OpParams):
        max_len: PositiveInt | None = Field(
            None, description="Most characters per chunk; None: split on the pattern only."
        )
        split_pattern: str | None = Field(
            r"\n\n",
            description="Python regex to split at (cut before its match, drop the match); None: by length only.",
        )
        overlap_len: NonNegativeInt = Field(0, description="Characters repeated between chunks cut by length.")
        tokenizer: str | None = Field(
            None, description="Count tokens of this tokenizer instead of characters (refused: needs a download)."
        )
        trust_remote_code: bool = Field(False, description="Passed to the Hugging Face tokenizer; unused without one.")

        @model_validator(mode="after")
        def _consistent(self) -> TextChunkMapper.Params:
            if self.max_len is None and self.split_pattern is None:
                raise ValueError("max_len and split_pattern cannot be both None")
            if self.max_len is not None and self.overlap_len >= self.max_len:
                raise ValueError("overlap_len must be less than max_len")
            return self

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        tokenizer = getattr(params, "tokenizer", None)
        if tokenizer is not None:
            return (
                f"{cls.name}: tokenizer={tokenizer!r} needs a tokenizer downloaded at run time (Hugging Face, tiktoken "
                "or DashScope), which Sluice does not do; leave tokenizer unset to count characters"
            )
        return None

    def __init__(self, params: OpParams | Mapping[str, Any] | None = None, *, text_key: str = "text"):
        super().__init__(params, text_key=text_key)
        pattern = self.params.split_pattern
        try:
            self._pattern = None if pattern is None else re.compile(pattern)
        except re.error as err:
            raise ValueError(f"{self.name}: split_pattern {pattern!r} is not a valid regex: {err}") from err

    def map_text(self, text: pl.Expr) -> pl.Expr:  # pragma: no cover - run() is overridden
        raise NotImplementedError(f"{self.name} changes the row count: use run()")

    # --- chunking one text, Data-Juicer's way ----------------------------------------------------------------------

    def split_on_pattern(self, text: str) -> list[str]:
        assert self._pattern is not None
        return [t for t in self._pattern.split(text) if t is not None and t.strip()]

    def cut(self, text: str) -> list[str]:
        """Data-Juicer's `recursively_chunk`, as a loop."""
        assert self._pattern is not None and self.params.max_len is not None
        max_len, overlap = self.params.max_len, self.params.overlap_len
        chunks: list[str] = []
        while len(text) > max_len:
            head = text[:max_len]
            last = None
            for last in self._pattern.finditer(head):  # noqa: B007 - the last match is wanted
                pass
            if last is None or last.end() == 0:
                current, text = head, text[max_len - overlap :]
            else:
                current, text = head[: last.start()], text[last.end() :]
            if current.strip():
                chunks.append(current)
        chunks.append(text)
        return chunks

    def _chunks_in_python(self, df: pl.DataFrame) -> pl.DataFrame:
        chunk = self.split_on_pattern if self.params.max_len is None else self.cut
        lists = [[None] if t is None else chunk(t) for t in df[self.text_key].to_list()]
        parts = pl.DataFrame(
            {_ROW: pl.int_range(0, df.height, dtype=pl.UInt32, eager=True), self.text_key: lists},
            schema={_ROW: pl.UInt32, self.text_key: pl.List(pl.String)},
        )
        return parts.filter(pl.col(self.text_key).list.len() > 0).explode(self.text_key)

    def _windows(self, df: pl.DataFrame) -> pl.DataFrame:
        """`max_len` only: windows starting every max_len - overlap_len characters, in polars."""
        max_len, step = self.params.max_len, self.params.max_len - self.params.overlap_len
        length = self.text.str.len_chars().fill_null(0)
        starts = pl.when(length <= max_len).then(pl.int_ranges(0, 1)).otherwise(pl.int_ranges(0, length, step))
        return (
            df.select(pl.int_range(0, pl.len(), dtype=pl.UInt32).alias(_ROW), self.text, starts.alias("__start"))
            .explode("__start")
            .select(_ROW, self.text.str.slice(pl.col("__start"), max_len))
        )

    # --- one row in, n rows out -----------------------------------------------------------------------------------

    def run(self, df: pl.DataFrame) -> OpOutput:
        parts = self._chunks_in_python(df) if self._pattern is not None else self._windows(df)
        parts = parts.with_columns(
            pl.len().over(_ROW).alias("__n"), pl.int_range(1, pl.len() + 1).over(_ROW).cast(pl.String).alias("__no")
        )
        indexed = df.with_row_index(_ROW)
        columns = [c for c in df.columns if c != PARENT_ID] + [PARENT_ID]
        parent = pl.col(PARENT_ID) if PARENT_ID in df.columns else pl.lit(None, dtype=pl.String)
        kept = indexed.drop(self.text_key).join(parts, on=_ROW, how="inner", maintain_order="right")
        split = pl.col("__n") > 1
        if ROW_ID in df.columns:
            kept = kept.with_columns(
                pl.when(split).then(pl.col(ROW_ID)).otherwise(parent).alias(PARENT_ID),
                pl.when(split).then(pl.format("{}#{}", pl.col(ROW_ID), pl.col("__no"))).otherwise(pl.col(ROW_ID)),
            )
        else:
            kept = kept.with_columns(parent.alias(PARENT_ID))
        kept = kept.select(columns)
        empty = indexed.join(parts.select(_ROW).unique(), on=_ROW, how="anti", maintain_order="left")
        dropped = self._mark_dropped(
            empty.drop(_ROW).with_columns(parent.alias(PARENT_ID)).select(columns),
            FILTERED,
            pl.lit("no non-blank chunk"),
        )
        whole = parts.filter(pl.col("__n") == 1).join(indexed.select(_ROW, self.text), on=_ROW, suffix="_in")
        unchanged = int(whole[self.text_key].eq_missing(whole[f"{self.text_key}_in"]).sum())
        chunked = df.height - empty.height
        return OpOutput(kept, dropped, chunked - unchanged, added=kept.height - chunked)
