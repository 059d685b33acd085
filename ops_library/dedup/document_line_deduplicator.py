"""document_line_deduplicator: remove boilerplate lines that occur in too many documents of the whole dataset."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field, NonNegativeInt

from ops_library.base import Deduplicator, OpOutput, OpParams
from ops_library.columns import HASH
from ops_library.minhash import numba_threads
from ops_library.registry import register
from ops_library.shingles import Tokens, fnv1a_token_hashes, utf8_buffer
from ops_library.text import PYTHON_WHITESPACE, char_class

DOC_FREQUENCY = "doc_frequency"
_ROW, _LINE, _KEY = "__row__", "__line__", "__line_hash__"
# Data-Juicer's SPECIAL_CHAR_RE, `\s+|\d+|[punctuation]` with Python's `re`: its `\s` is str.isspace() and
# its `\d` is Unicode Nd (Rust's too); removing each run is removing each character of the union.
_SPECIAL = f"[{char_class(PYTHON_WHITESPACE)[1:-1]}\\d{char_class(string.punctuation)[1:-1]}]"
_BRACKETS_ONLY = r"^[{}\[\]();]*$"
# Data-Juicer's patterns match the stripped line, so their leading `\s*` never matches anything there.
_LATEX_ENV = r"^\\(begin|end)\{"
_HTML_TAG = r"(?i)^</?[a-z][a-z0-9]*[^>]*>?$"


@register("document_line_deduplicator")
class DocumentLineDeduplicator(Deduplicator):
    """Removes, from every text, the lines that occur in more than `frequency_threshold` texts of the whole
    dataset (boilerplate: licence headers, navigation, footers); rows are kept, even when emptied. Data-Juicer
    1.6's op of the same name, with its params, skip rules and defaults, hashing lines with FNV-1a-64
    (fmix64-finalized) in place of MD5.

    Stages: `hashes` gives each row's distinct line hashes (List(UInt64) in HASH); `index` counts in how many
    rows of all partitions each hash occurs and returns the frequent ones (HASH, doc_frequency), not a
    ROW_ID -> DUPLICATE_OF frame; `apply` rewrites the texts of one partition without those lines.
    """

    class Params(OpParams):
        frequency_threshold: NonNegativeInt = Field(
            6, description="Lines found in more than this many texts are removed everywhere."
        )
        lowercase: bool = Field(False, description="Compare lines lower-cased.")
        ignore_special_character: bool = Field(
            False, description="Compare lines without whitespace, digits and ASCII punctuation."
        )
        min_line_length: int = Field(2, description="Lines shorter than this (stripped) are never removed.")
        skip_brackets: bool = Field(True, description="Never remove lines of only { } [ ] ( ) ; characters.")
        skip_markdown_headers: bool = Field(True, description="Never remove lines starting with '#'.")
        skip_latex_env: bool = Field(True, description="Never remove \\begin{...} / \\end{...} lines.")
        skip_html_tags: bool = Field(True, description="Never remove lines that are one HTML/XML tag.")

    def _skipped(self, line: pl.Expr) -> pl.Expr:
        p = self.params
        stripped = line.str.strip_chars(PYTHON_WHITESPACE)
        skip = stripped.str.len_chars() < p.min_line_length
        if p.skip_brackets:
            skip = skip | stripped.str.contains(_BRACKETS_ONLY)
        if p.skip_markdown_headers:
            skip = skip | stripped.str.starts_with("#")
        if p.skip_latex_env:
            skip = skip | stripped.str.contains(_LATEX_ENV)
        if p.skip_html_tags:
            skip = skip | stripped.str.contains(_HTML_TAG)
        return skip | line.is_null()

    def _normalized(self, line: pl.Expr) -> pl.Expr:
        if self.params.lowercase:
            line = line.str.to_lowercase()
        if self.params.ignore_special_character:
            line = line.str.replace_all(_SPECIAL + "+", "")  # whole runs: fewer replacements, the same text
        return line.str.strip_chars(PYTHON_WHITESPACE)

    def line_hashes(self, df: pl.DataFrame, threads: int | None = None) -> pl.DataFrame:
        """One row per line of every text (_ROW, _LINE, _KEY): the line's hash, null for skipped lines, hashed on
        `threads` numba threads (default `needs.cpus`)."""
        lines = (
            df.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(_ROW), self.text.str.split("\n").alias(_LINE))
            .explode(_LINE)
            .with_columns(pl.when(~self._skipped(pl.col(_LINE))).then(self._normalized(pl.col(_LINE))).alias(_KEY))
        )
        # `Expr.hash` changes across polars versions: the normalized lines are hashed from their UTF-8 bytes.
        keys = lines[_KEY]
        data, offsets = utf8_buffer(keys.fill_null(""))
        n = len(keys)
        spans = Tokens(data, offsets[:-1], offsets[1:], np.arange(n, dtype=np.int64), n)
        with numba_threads(threads or max(1, int(self.needs.cpus))):
            digests = pl.Series(_KEY, fnv1a_token_hashes(spans), dtype=pl.UInt64)
        return lines.with_columns(pl.when(keys.is_not_null()).then(digests).alias(_KEY))

    def hash_column(self, df: pl.DataFrame, threads: int | None = None) -> pl.Series:
        """The distinct hashes of each row's non-skipped lines (List(UInt64))."""
        per_row = (
            self.line_hashes(df, threads)
            .group_by(_ROW, maintain_order=True)
            .agg(pl.col(_KEY).drop_nulls().unique().sort().alias(HASH))
        )
        full = pl.DataFrame({_ROW: pl.int_range(df.height, dtype=pl.UInt32, eager=True)})
        return full.join(per_row, on=_ROW, how="left", maintain_order="left")[HASH].fill_null([]).alias(HASH)

    def index(self, hashes_in_order: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """HASH, doc_frequency of every line hash found in more than `frequency_threshold` rows of all frames.
        Fewer than two rows in all: nothing (Data-Juicer's early return)."""
        empty = pl.DataFrame(schema={HASH: pl.UInt64, DOC_FREQUENCY: pl.UInt32})
        frames = [h.select(HASH) for h in hashes_in_order if h.height]
        if sum(f.height for f in frames) <= 1:
            return empty
        counts = (
            pl.concat(frames)
            .explode(HASH)
            .drop_nulls()
            .group_by(HASH)
            .len(name=DOC_FREQUENCY)
            .filter(pl.col(DOC_FREQUENCY) > self.params.frequency_threshold)
        )
        return counts.cast({DOC_FREQUENCY: pl.UInt32}).sort(DOC_FREQUENCY, HASH, descending=[True, False])

    def index_stats(
        self, index: pl.DataFrame, total_rows: int | None = None, index_bytes: int | None = None
    ) -> dict[str, Any]:
        """Asset metadata: how many line hashes are frequent, and their document frequencies."""
        freq = index[DOC_FREQUENCY]
        stats: dict[str, Any] = {
            "frequent_lines": index.height,
            "max_doc_frequency": int(freq.max()) if index.height else 0,  # type: ignore[arg-type]
            "median_doc_frequency": float(freq.median()) if index.height else 0.0,  # type: ignore[arg-type]
        }
        if total_rows is not None:
            stats["rows"] = total_rows
        if index_bytes is not None:
            stats["index_bytes"] = index_bytes
        return stats

    def apply(self, df: pl.DataFrame, index: pl.DataFrame) -> OpOutput:
        """The rows of `df` with the frequent lines removed from their texts (the other lines, in order, joined
        by newlines); no row is dropped; `changed` counts the rewritten texts."""
        frequent = index[HASH].implode()
        lines = self.line_hashes(df).with_columns(pl.col(_KEY).is_in(frequent).fill_null(False).alias("_drop"))
        changed_rows = lines.filter(pl.col("_drop"))[_ROW].unique()
        if changed_rows.len() == 0:
            self.last_removed_lines = 0
            return OpOutput(df, None, 0)
        rewritten = (
            lines.filter(pl.col(_ROW).is_in(changed_rows.implode()))
            .group_by(_ROW, maintain_order=True)
            .agg(pl.col(_LINE).filter(~pl.col("_drop")).str.join("\n").alias("_new"))
        )
        self.last_removed_lines = int(lines["_drop"].sum())
        joined = df.with_row_index(_ROW).join(rewritten, on=_ROW, how="left", maintain_order="left")
        changed = int(joined.select(pl.col("_new").is_not_null() & (pl.col("_new") != self.text)).to_series().sum())
        out = joined.with_columns(pl.coalesce("_new", self.text).alias(self.text_key)).drop(_ROW, "_new")
        return OpOutput(out, None, changed)

    def run(self, df: pl.DataFrame, **_: Any) -> OpOutput:
        return self.apply(df, self.index([self.hashes(df)]))
