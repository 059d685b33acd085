"""The export: kept rows of every shard in input order to `export_path` (JSONL or Parquet by extension), the
rows that were dropped beside it (`<stem>.dropped.jsonl`: filtered with reason, duplicates with the id they
duplicate) and the quarantined ones (`<stem>.quarantine.jsonl`), plus the per-shard row accounting."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from ops_library.columns import (
    DROP_KIND,
    DROP_KINDS,
    DROP_OP,
    DROP_REASON,
    DUPLICATE,
    DUPLICATE_OF,
    FILTERED,
    INTERNAL_PREFIX,
    QUARANTINED,
    ROW_ID,
    STATS,
)
from pipeline_defs import charts
from pipeline_defs.recipe import Recipe
from pipeline_defs.shards import RAW_JSON, discover_shards, json_text, shard_order
from resources.storage import CheckpointStore, atomic_write


def sidecar(export_path: str | Path, what: str) -> Path:
    """`out/data.jsonl` -> `out/data.<what>.jsonl` (always JSONL: rows of mixed shapes, read by people)."""
    path = Path(export_path)
    stem = path.name.split(".")[0]
    return path.with_name(f"{stem}.{what}.jsonl")


def _public(df: pl.DataFrame, keep_stats: bool) -> pl.DataFrame:
    drop = [
        c for c in df.columns if (c.startswith(INTERNAL_PREFIX) and c != RAW_JSON) or (c == STATS and not keep_stats)
    ]
    return df.drop(drop)


def json_rows(df: pl.DataFrame) -> pl.Series:
    """Each row as one JSON object, built by polars expressions. A field listed in the row's `RAW_JSON` is
    JSON text already and goes in verbatim (and not at all where it is null: the input row had no such
    key), so every field comes out with the JSON value and type it was read with."""
    raw_lists = df[RAW_JSON] if RAW_JSON in df.columns else None
    raw = set(raw_lists.explode().drop_nulls().unique()) if raw_lists is not None else set()
    parts = []
    for name in df.columns:
        if name == RAW_JSON:
            continue
        key = pl.lit(json.dumps(name, ensure_ascii=False) + ":")
        if name in raw:
            value = pl.when(pl.col(RAW_JSON).list.contains(name)).then(pl.col(name)).otherwise(json_text(pl.col(name)))
            parts.append(pl.when(value.is_not_null()).then(pl.concat_str(key, value)))
        else:
            parts.append(pl.concat_str(key, json_text(pl.col(name))))
    if not parts or df.height == 0:
        return pl.Series("json", ["{}"] * df.height, dtype=pl.String)
    body = pl.concat_str(parts, separator=",", ignore_nulls=True)
    return df.select(pl.concat_str(pl.lit("{"), body, pl.lit("}")).alias("json")).to_series()


def _as_json_text(df: pl.DataFrame, names: set[str]) -> pl.DataFrame:
    """Parquet holds one type per column: a field that is JSON text in some rows, or of another type in another
    shard, is JSON text in all."""
    exprs = []
    for name in names & set(df.columns):
        typed = json_text(pl.col(name))
        if RAW_JSON in df.columns:
            typed = pl.when(pl.col(RAW_JSON).list.contains(name)).then(pl.col(name)).otherwise(typed)
        exprs.append(typed.alias(name))
    return df.with_columns(exprs).drop(RAW_JSON, strict=False)


def write_rows(frames: Sequence[pl.DataFrame], path: Path) -> int:
    """Write the rows of `frames`, in order, to `path` (Parquet by extension, else JSONL); returns the row
    count. Frames are serialized one by one, never concatenated first, so no field is cast to another
    frame's type."""
    frames = [f for f in frames if f.width]
    with atomic_write(path) as tmp:
        if path.suffix == ".parquet":
            raw: set[str] = set()
            dtypes: dict[str, set[pl.DataType]] = defaultdict(set)
            for f in frames:
                if RAW_JSON in f.columns:
                    raw |= set(f[RAW_JSON].explode().drop_nulls().unique())
                for name, dtype in f.schema.items():
                    dtypes[name].add(dtype)
            raw |= {name for name, kinds in dtypes.items() if len(kinds) > 1 and name != RAW_JSON}
            out = [_as_json_text(f, raw) for f in frames]
            (pl.concat(out, how="diagonal_relaxed") if out else pl.DataFrame()).write_parquet(tmp, compression="zstd")
        else:
            with open(tmp, "wb") as fh:
                for f in frames:
                    if f.height and RAW_JSON in f.columns:
                        pl.DataFrame(json_rows(f)).write_csv(fh, include_header=False, quote_style="never")
                    elif f.height:  # no JSON-text field: polars' writer gives the same bytes, faster
                        f.write_ndjson(fh)
    return sum(f.height for f in frames)


@dataclass
class ExportReport:
    export_path: str
    rows: int
    per_partition: dict[str, dict[str, int]]
    per_op: dict[str, dict[str, int]]
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def funnel_markdown(self) -> str:
        """Rows left after each op that dropped any, in recipe order, from the input down to the export."""
        t = self.totals
        remaining = t.get("input", 0)
        rows = [("input", remaining, remaining)]
        for op, kinds in self.per_op.items():
            gone = sum(kinds.values())
            rows.append((op, remaining, remaining - gone))
            remaining -= gone
        return charts.funnel_markdown(rows)

    @property
    def reconciles(self) -> bool:
        return not self.mismatches

    @property
    def totals(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for counts in self.per_partition.values():
            for k, v in counts.items():
                out[k] += v
        return dict(out)

    def metadata(self) -> dict[str, Any]:
        t = self.totals
        table = dg.TableMetadataValue(
            records=[dg.TableRecord({"partition": k, **v}) for k, v in self.per_partition.items()],
            schema=dg.TableSchema(
                columns=[dg.TableColumn("partition", "string")]
                + [dg.TableColumn(c, "int") for c in ("input", "kept", *DROP_KINDS)]
            ),
        )
        return {
            "funnel": dg.MetadataValue.md(self.funnel_markdown()),
            "export_path": dg.MetadataValue.path(self.export_path),
            "dagster/row_count": self.rows,
            **{k: t.get(k, 0) for k in ("input", "kept", *DROP_KINDS)},
            "per_partition": table,
            "dropped_per_op": dg.MetadataValue.json(self.per_op),
        }


def export_recipe(
    recipe: Recipe,
    final: dict[str, pl.DataFrame],
    row_assets: Sequence[dg.AssetKey],
    store: CheckpointStore,
) -> ExportReport:
    keys = sorted(final, key=shard_order)
    kept_rows = write_rows([_public(final[k], recipe.keep_stats_in_res_ds) for k in keys], Path(recipe.export_path))

    shard_rows = {s.key: s.rows for s in discover_shards(recipe.dataset_path, recipe.partition)}
    per_partition: dict[str, dict[str, int]] = {}
    per_op: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    dropped_frames: list[pl.DataFrame] = []
    quarantine_frames: list[pl.DataFrame] = []
    for k in keys:
        counts = {"input": shard_rows.get(k, -1), "kept": final[k].height} | dict.fromkeys(DROP_KINDS, 0)
        for asset_key in row_assets:
            dropped = store.read_dropped(asset_key.path, k)
            if dropped is None or dropped.height == 0:
                continue
            for op_name, kind, n in dropped.group_by(DROP_OP, DROP_KIND, maintain_order=True).len().iter_rows():
                counts[kind] += n
                per_op[op_name][kind] += n
            (quarantine_frames if asset_key.path[-1] == "source" else dropped_frames).append(dropped)
        per_partition[k] = counts

    write_rows([_public_dropped(f) for f in dropped_frames], sidecar(recipe.export_path, "dropped"))
    write_rows([_public_dropped(f) for f in quarantine_frames], sidecar(recipe.export_path, "quarantine"))

    mismatches = [
        {"partition": k, **c}
        for k, c in per_partition.items()
        if c["input"] != c["kept"] + c[FILTERED] + c[DUPLICATE] + c[QUARANTINED]
    ]
    return ExportReport(
        export_path=str(recipe.export_path),
        rows=kept_rows,
        per_partition=per_partition,
        per_op={op: dict(per_op[op]) for op in _recipe_order(recipe, per_op)},
        mismatches=mismatches,
    )


# Dropped rows say where they came from and why, under plain names, before their own fields.
_PROVENANCE = {
    ROW_ID: "sluice_id",
    DROP_OP: "sluice_op",
    DROP_KIND: "sluice_drop",
    DROP_REASON: "sluice_reason",
    DUPLICATE_OF: "sluice_duplicate_of",
}


def _recipe_order(recipe: Recipe, per_op: dict[str, Any]) -> list[str]:
    order = ["source", *(op.name for op in recipe.process)]
    return sorted(per_op, key=lambda op: order.index(op) if op in order else len(order))


def _public_dropped(df: pl.DataFrame) -> pl.DataFrame:
    present = [c for c in _PROVENANCE if c in df.columns]
    rest = [c for c in df.columns if not c.startswith(INTERNAL_PREFIX) or c == RAW_JSON]
    return df.select(*[pl.col(c).alias(_PROVENANCE[c]) for c in present], *rest)
