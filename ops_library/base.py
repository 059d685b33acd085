"""Base classes of every op: Mapper, Filter, Deduplicator.

An op works on a polars DataFrame and knows nothing of Dagster, partitions or storage: the engine hands it a
frame (and, for GPU ops later, a device and batch size) and gets back an `OpOutput`. Subclasses say only what
they change, measure or hash; the base classes own stats bookkeeping, the keep rule and the dropped-row
record.
"""

from __future__ import annotations

import inspect
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from ops_library import clusters
from ops_library.columns import (
    CLUSTER_ID,
    DROP_KIND,
    DROP_OP,
    DROP_REASON,
    DUPLICATE,
    DUPLICATE_OF,
    FILTERED,
    HASH,
    ROW_ID,
    STATS,
)

INF = sys.maxsize  # Data-Juicer's "no upper bound"


class OpUnavailableError(RuntimeError):
    """An op whose package, model or word list is absent here (the message says which, and how to get it)."""


class OpParams(BaseModel):
    """Typed params of one op: the recipe schema, its validation and the UI docs in one place."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterParams(OpParams):
    """Options every Data-Juicer Filter accepts (`Filter.get_keep_boolean`)."""

    min_closed_interval: bool = Field(True, description="Keep rows whose stat equals the minimum.")
    max_closed_interval: bool = Field(True, description="Keep rows whose stat equals the maximum.")
    reversed_range: bool = Field(False, description="Keep rows outside [min, max] instead of inside.")


@dataclass(frozen=True)
class ResourceNeeds:
    """What one worker of an op asks for, as data the engine reads (Data-Juicer's per-op resource keys)."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float | None = None
    batch_size: int = 1000
    accelerator: Literal["cpu", "cuda"] = "cpu"


@dataclass
class OpOutput:
    """What an op returns: the rows that go on, the rows it removed (with DROP_* columns), for mappers how
    many rows it changed, and how many rows it created beyond its input."""

    kept: pl.DataFrame
    dropped: pl.DataFrame | None = None
    changed: int | None = None
    # Rows created beyond the input (an op that splits one row into many): rows in + added == kept + dropped.
    added: int = 0

    @property
    def dropped_count(self) -> int:
        return 0 if self.dropped is None else self.dropped.height


class Op(ABC):
    name: ClassVar[str] = ""  # set by @register
    kind: ClassVar[str] = ""
    Params: ClassVar[type[OpParams]] = OpParams
    needs: ClassVar[ResourceNeeds] = ResourceNeeds()
    # True when a row's fate depends on rows of other partitions (the engine adds a global stage).
    is_global: ClassVar[bool] = False
    # Bump when the op's output for the same params changes: checkpoints made by older code become stale.
    version: ClassVar[str] = "1"
    # True when `run(df, **placement)` takes the engine's device, batch size and memory budget (GPU ops).
    accepts_placement: ClassVar[bool] = False

    def __init__(self, params: OpParams | Mapping[str, Any] | None = None, *, text_key: str = "text"):
        self.params = params if isinstance(params, self.Params) else self.Params.model_validate(params or {})
        self.text_key = text_key
        missing = type(self).unavailable(self.params)
        if missing:  # never an op that runs and drops every row because its package or model is absent
            raise OpUnavailableError(missing)

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        """Why this op cannot run here with these params, or None when it can.

        A one-line message naming the op, what is missing (package, model, word list) and how to get it.
        Recipe validation calls it, so an absent dependency fails `sluice validate`, never a run.
        """
        return None

    @property
    def text(self) -> pl.Expr:
        return pl.col(self.text_key)

    @classmethod
    def summary(cls) -> str:
        """The first paragraph of the docstring: what the op keeps or changes."""
        doc = inspect.getdoc(cls) or ""
        return doc.split("\n\n")[0].replace("\n", " ").strip()

    def _mark_dropped(self, rows: pl.DataFrame, kind: str, reason: pl.Expr) -> pl.DataFrame:
        return rows.with_columns(
            pl.lit(self.name).alias(DROP_OP), pl.lit(kind).alias(DROP_KIND), reason.alias(DROP_REASON)
        )

    @abstractmethod
    def run(self, df: pl.DataFrame) -> OpOutput:
        """Apply the op to one frame (one partition, or everything when run in memory)."""


class Mapper(Op):
    """Changes text, row for row. Subclasses give `map_text`; ops that change row counts override `run`."""

    kind = "mapper"

    @abstractmethod
    def map_text(self, text: pl.Expr) -> pl.Expr:
        """An expression computing the new text from the old."""

    def run(self, df: pl.DataFrame) -> OpOutput:
        out = df.with_columns(self.map_text(self.text).alias(self.text_key))
        changed = 0 if df.height == 0 else int((df[self.text_key].ne_missing(out[self.text_key])).sum())
        return OpOutput(out, None, changed)


def _fmt_bound(value: float) -> str:
    return "inf" if value >= INF else repr(value)


class Filter(Op):
    """Keeps rows whose stat lies in [min, max]. Subclasses give `stats()`; the range rule is Data-Juicer's.

    Stats land in the `__dj__stats__` struct and are computed once: a stat already present is not recomputed.
    Single-stat range filters only set `stat` and `bounds` (the names of their min/max params).
    """

    kind = "filter"
    Params = FilterParams
    stat: ClassVar[str] = ""
    bounds: ClassVar[tuple[str, str]] = ("min_len", "max_len")

    @abstractmethod
    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        """Stat name -> expression over the text."""

    def keep(self) -> pl.Expr:
        """True for rows to keep, over the stat fields (default: Data-Juicer's range rule on `stat`)."""
        lo, hi = (getattr(self.params, b) for b in self.bounds)
        return range_keep(stat_field(self.stat), lo, hi, self.params)

    def reason(self) -> pl.Expr:
        lo, hi = (getattr(self.params, b) for b in self.bounds)
        min_closed, max_closed = effective_closedness(self.params)
        where = "inside" if self.params.reversed_range else "outside"
        interval = f"{'[' if min_closed else '('}{_fmt_bound(lo)}, {_fmt_bound(hi)}{']' if max_closed else ')'}"
        return pl.format(f"{self.stat}={{}} {where} {interval}", stat_field(self.stat))

    def add_stats(self, df: pl.DataFrame) -> pl.DataFrame:
        present = present_stats(df)
        return with_stats(df, {k: v for k, v in self.stats(self.text).items() if k not in present})

    def run(self, df: pl.DataFrame) -> OpOutput:
        df = self.add_stats(df)
        return self.split(df, self.keep(), self.reason())

    def split(self, df: pl.DataFrame, keep: pl.Expr, reason: pl.Expr) -> OpOutput:
        """Rows where `keep` is true go on; the others (and rows where it is null) are dropped with `reason`."""
        mask = df.select(keep.fill_null(False)).to_series()
        return OpOutput(df.filter(mask), self._mark_dropped(df.filter(~mask), FILTERED, reason))


def stat_field(name: str) -> pl.Expr:
    return pl.col(STATS).struct.field(name)


def present_stats(df: pl.DataFrame) -> list[str]:
    """Names of the stats the frame already holds (they are not recomputed)."""
    dtype = df.schema.get(STATS)
    return [f.name for f in dtype.fields] if isinstance(dtype, pl.Struct) else []


def with_stats(df: pl.DataFrame, new: Mapping[str, pl.Expr | pl.Series]) -> pl.DataFrame:
    """The frame with `new` stats (expressions, or series of the frame's height) added to `__dj__stats__`."""
    if not new:
        return df
    # Rebuilt rather than `struct.with_fields`, which leaves a null struct null (rows of a frame without
    # stats, concatenated with one with stats): Data-Juicer gives every row a stats dict.
    fields = {k: v if isinstance(v, pl.Expr) else pl.lit(v) for k, v in new.items()}
    return df.with_columns(pl.struct(*(stat_field(k) for k in present_stats(df)), **fields).alias(STATS))


def effective_closedness(params: FilterParams) -> tuple[bool, bool]:
    """Data-Juicer's `Filter.__init__` flips both closedness flags when `reversed_range` is set, so a bound
    value is kept either way (reversed, with the defaults, keeps `value <= min or value >= max`)."""
    if params.reversed_range:
        return not params.min_closed_interval, not params.max_closed_interval
    return params.min_closed_interval, params.max_closed_interval


def range_keep(value: pl.Expr, lo: float | None, hi: float | None, params: FilterParams) -> pl.Expr:
    """Data-Juicer's `Filter.get_keep_boolean`: closed or open ends, optionally reversed."""
    min_closed, max_closed = effective_closedness(params)
    keep = pl.lit(True)
    if lo is not None:
        keep = keep & ((value >= lo) if min_closed else (value > lo))
    if hi is not None:
        keep = keep & ((value <= hi) if max_closed else (value < hi))
    return ~keep if params.reversed_range else keep


class Deduplicator(Op):
    """Removes rows whose key equals that of an earlier row, in input order, across all partitions.

    Three stages, so the engine can spread them over partitions: `hashes` per partition, `index` over the
    hashes of every partition in input order (rows that duplicate an earlier row, and which one), and
    `apply` per partition. `run` does all three on one frame.
    """

    kind = "deduplicator"
    is_global = True
    # True when `apply` only drops the rows the index names in its ROW_ID column, leaving the other rows and their
    # values as they were; and when each row's `hashes` come from that row alone. A global op right after this
    # one's filter then hashes the rows this one hashes, in the same Dagster run, and leaves the rows this one
    # drops out of its index (pipeline_defs/steps.py, `chained_globals`). A subclass that overrides `apply` or
    # `hashes` says so itself (else False).
    drops_rows_only: ClassVar[bool] = True
    row_wise_hashes: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "apply" in cls.__dict__ and "drops_rows_only" not in cls.__dict__:
            cls.drops_rows_only = False
        if "hashes" in cls.__dict__ and "row_wise_hashes" not in cls.__dict__:
            cls.row_wise_hashes = False

    @abstractmethod
    def hash_column(self, df: pl.DataFrame, threads: int | None = None) -> pl.Series:
        """The dedup key of every row (equal keys = duplicates). `threads`: the CPU threads its compiled (numba)
        kernels may use, default `needs.cpus`; kernels that polars calls per chunk run on polars' threads."""

    def hashes(self, df: pl.DataFrame, *, threads: int | None = None) -> pl.DataFrame:
        """ROW_ID and HASH per row; the hashes stage passes the CPUs its step was granted as `threads`."""
        return pl.DataFrame({ROW_ID: df[ROW_ID], HASH: self.hash_column(df, threads)})

    def index(self, hashes_in_order: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """ROW_ID -> DUPLICATE_OF for every row that repeats an earlier one; the first occurrence is kept."""
        frames = [h.select(ROW_ID, HASH) for h in hashes_in_order]
        if not frames:
            return pl.DataFrame(schema={ROW_ID: pl.String, DUPLICATE_OF: pl.String})
        allh = pl.concat(frames, how="vertical")
        return (
            allh.with_columns(pl.col(ROW_ID).first().over(HASH).alias(DUPLICATE_OF))
            .filter(pl.col(ROW_ID) != pl.col(DUPLICATE_OF))
            .select(ROW_ID, DUPLICATE_OF)
        )

    def duplicate_reason(self, provenance: Sequence[str]) -> pl.Expr:
        """The DROP_REASON of removed rows, over the provenance columns the index has."""
        return pl.format("duplicate of {}", pl.col(DUPLICATE_OF))

    def index_stats(
        self, index: pl.DataFrame, total_rows: int | None = None, index_bytes: int | None = None
    ) -> dict[str, Any]:
        """Asset metadata of an index: removed rows, clusters and their size histogram, bytes per row."""
        return clusters.index_stats(index, total_rows, index_bytes)

    def apply(self, df: pl.DataFrame, index: pl.DataFrame) -> OpOutput:
        """Drop the rows the index names; they keep DUPLICATE_OF (and CLUSTER_ID when the index has it)."""
        provenance = [c for c in (DUPLICATE_OF, CLUSTER_ID) if c in index.columns]
        joined = df.join(index.select(ROW_ID, *provenance), on=ROW_ID, how="left", maintain_order="left")
        is_dup = pl.col(DUPLICATE_OF).is_not_null()
        kept = joined.filter(~is_dup).drop(provenance)
        dropped = self._mark_dropped(joined.filter(is_dup), DUPLICATE, self.duplicate_reason(provenance))
        return OpOutput(kept, dropped)

    def run(self, df: pl.DataFrame) -> OpOutput:
        return self.apply(df, self.index([self.hashes(df)]))
