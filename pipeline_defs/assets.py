"""The asset factory: a recipe becomes a chain of partitioned Dagster assets, one per op.

    source ─▶ op00_<mapper> ─▶ op01_<dedup>__hashes ─▶ op01_<dedup>__index ─▶ op01_<dedup> ─▶ … ─▶ export
    (partitioned: a step per shard)    (partitioned)     (unpartitioned: all)   (partitioned)       (all)

A global op (a Deduplicator) is three stages: per-partition hashes, one index over every partition in input
order, and a per-partition filter that reads only its own slice of the index. `phases` lists the stages in
the order a runner must execute them: partitioned phases run once per shard, unpartitioned ones once.
"""

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl

from ops_library.base import Deduplicator, OpOutput
from ops_library.columns import DROP_REASON, DUPLICATE_OF, ROW_ID
from pipeline_defs import export as export_mod
from pipeline_defs.recipe import OpSpec, Recipe
from pipeline_defs.shards import DatasetError, read_shard, shard_for_key, shard_order
from resources.storage import LOAD_ALL_PARTITIONS, CheckpointStore

PARTITION_COL = "__sluice_partition__"
CPU_POOL = "sluice_cpu"
DEFAULT_RETRY = dg.RetryPolicy(max_retries=2, delay=1, backoff=dg.Backoff.EXPONENTIAL)


class AccountingError(RuntimeError):
    """An op lost or invented rows: rows in != kept + dropped."""


@dataclass
class Phase:
    partitioned: bool
    keys: list[dg.AssetKey] = field(default_factory=list)


@dataclass
class RecipeGraph:
    recipe: Recipe
    partitions_def: dg.DynamicPartitionsDefinition
    assets: list[dg.AssetsDefinition]
    phases: list[Phase]
    export_key: dg.AssetKey
    # Data assets whose dropped rows count in the accounting, in recipe order: (asset key, op name).
    row_assets: list[tuple[dg.AssetKey, str]]

    @property
    def group(self) -> str:
        return self.recipe.project_name


def _deterministic(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Data and config errors fail the step without retries: rerunning cannot fix them."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (DatasetError, AccountingError) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc

    return wrapped


def _step_metadata(rows_in: int, out: OpOutput, seconds: float) -> dict[str, Any]:
    rows_out = out.kept.height
    meta: dict[str, Any] = {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "dropped": out.dropped_count,
        "drop_ratio": round(out.dropped_count / rows_in, 4) if rows_in else 0.0,
        "seconds": round(seconds, 4),
        "rows_per_s": round(rows_in / seconds, 1) if seconds > 0 else 0.0,
        "dagster/row_count": rows_out,
    }
    if out.changed is not None:
        meta["changed_rows"] = out.changed
    if out.dropped is not None and out.dropped.height:
        sample = out.dropped.head(5).select(ROW_ID, DROP_REASON)
        meta["dropped_sample"] = dg.MetadataValue.md(
            "| row | reason |\n|---|---|\n" + "\n".join(f"| `{r}` | {why} |" for r, why in sample.iter_rows())
        )
    return meta


def _check_rows(name: str, rows_in: int, out: OpOutput) -> None:
    if rows_in != out.kept.height + out.dropped_count:
        raise AccountingError(f"{name}: {rows_in} rows in but {out.kept.height} kept + {out.dropped_count} dropped")


class _Factory:
    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.prefix = recipe.project_name
        self.partitions_def = dg.DynamicPartitionsDefinition(name=f"{self.prefix}_shards")
        self.assets: list[dg.AssetsDefinition] = []
        self.phases: list[Phase] = [Phase(partitioned=True)]
        self.row_assets: list[tuple[dg.AssetKey, str]] = []

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.prefix, name])

    def _add(self, asset: dg.AssetsDefinition, partitioned: bool) -> dg.AssetKey:
        self.assets.append(asset)
        if self.phases[-1].partitioned != partitioned:
            self.phases.append(Phase(partitioned=partitioned))
        self.phases[-1].keys.append(asset.key)
        return asset.key

    def _common(self, name: str, spec: OpSpec | None, **extra: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {"sluice/recipe": self.recipe.source}
        tags = {"sluice/recipe": self.prefix}
        if spec is not None:
            op_class = spec.op_class
            meta |= {
                "sluice/op": spec.name,
                "sluice/kind": op_class.kind,
                "params": dg.MetadataValue.json(spec.params.model_dump(mode="json")),
                "resources": dg.MetadataValue.json(
                    {**vars(op_class.needs), **spec.resources.model_dump(exclude_none=True)}
                ),
            }
            tags |= {"sluice/op": spec.name, "sluice/kind": op_class.kind}
        return dict(
            name=name,
            key_prefix=[self.prefix],
            group_name=self.prefix,
            metadata=meta,
            tags=tags,
            kinds={"polars"},
            **extra,
        )

    def _partitioned(self, name: str, spec: OpSpec | None, **extra: Any) -> dict[str, Any]:
        return self._common(
            name,
            spec,
            partitions_def=self.partitions_def,
            pool=CPU_POOL,
            retry_policy=DEFAULT_RETRY,
            **extra,
        )

    # --- stages --------------------------------------------------------------------------------------------

    def source(self) -> dg.AssetKey:
        recipe = self.recipe

        @dg.asset(
            description=f"Rows of one input shard of {recipe.dataset_path}; malformed rows are quarantined.",
            **self._partitioned("source", None),
        )
        @_deterministic
        def source(context: dg.AssetExecutionContext) -> dg.Output[OpOutput]:
            t0 = time.perf_counter()
            shard = shard_for_key(recipe.dataset_path, recipe.partition.size, context.partition_key)
            kept, quarantined = read_shard(shard, recipe.text_key)
            out = OpOutput(kept, quarantined)
            _check_rows(f"source {shard.key}", shard.rows, out)
            meta = _step_metadata(shard.rows, out, time.perf_counter() - t0)
            meta |= {"file": str(shard.file.path), "first_row": shard.start + 1, "last_row": shard.stop}
            meta["quarantined"] = meta.pop("dropped")
            return dg.Output(out, metadata=meta)

        key = self._add(source, partitioned=True)
        self.row_assets.append((key, "source"))
        return key

    def row_op(self, spec: OpSpec, upstream: dg.AssetKey) -> dg.AssetKey:
        op = spec.build()

        @dg.asset(
            description=spec.op_class.summary(),
            ins={"upstream": dg.AssetIn(key=upstream)},
            **self._partitioned(spec.step_name, spec),
        )
        @_deterministic
        def row_asset(context: dg.AssetExecutionContext, upstream: pl.DataFrame) -> dg.Output[OpOutput]:
            t0 = time.perf_counter()
            out = op.run(upstream)
            _check_rows(f"{spec.step_name} {context.partition_key}", upstream.height, out)
            return dg.Output(out, metadata=_step_metadata(upstream.height, out, time.perf_counter() - t0))

        key = self._add(row_asset, partitioned=True)
        self.row_assets.append((key, spec.name))
        return key

    def global_op(self, spec: OpSpec, upstream: dg.AssetKey) -> dg.AssetKey:
        op = spec.build()
        assert isinstance(op, Deduplicator)
        hashes_name, index_name = f"{spec.step_name}__hashes", f"{spec.step_name}__index"

        @dg.asset(
            description=f"{spec.name}, stage 1 of 3: the dedup key of every row of one shard.",
            ins={"upstream": dg.AssetIn(key=upstream)},
            **self._partitioned(hashes_name, spec),
        )
        def hashes(context: dg.AssetExecutionContext, upstream: pl.DataFrame) -> dg.Output[pl.DataFrame]:
            t0 = time.perf_counter()
            out = op.hashes(upstream)
            return dg.Output(out, metadata={"rows": out.height, "seconds": round(time.perf_counter() - t0, 4)})

        hashes_key = self._add(hashes, partitioned=True)

        @dg.asset(
            description=f"{spec.name}, stage 2 of 3: over all shards in input order, every row that repeats "
            "an earlier one and the id of the row it duplicates.",
            ins={"hashes": dg.AssetIn(key=hashes_key, metadata={LOAD_ALL_PARTITIONS: True})},
            **self._common(index_name, spec, retry_policy=DEFAULT_RETRY),
        )
        def index(context: dg.AssetExecutionContext, hashes: dict[str, pl.DataFrame]) -> dg.Output[pl.DataFrame]:
            t0 = time.perf_counter()
            keys = sorted(hashes, key=shard_order)
            dups = op.index([hashes[k] for k in keys])
            where = pl.concat(
                [hashes[k].select(ROW_ID).with_columns(pl.lit(k).alias(PARTITION_COL)) for k in keys]
                or [pl.DataFrame(schema={ROW_ID: pl.String, PARTITION_COL: pl.String})]
            )
            out = dups.join(where, on=ROW_ID, how="left", maintain_order="left")
            total = sum(h.height for h in hashes.values())
            return dg.Output(
                out,
                metadata={
                    "partitions": len(keys),
                    "rows_indexed": total,
                    "duplicates": out.height,
                    "seconds": round(time.perf_counter() - t0, 4),
                },
            )

        index_key = self._add(index, partitioned=False)

        @dg.asset(
            description=f"{spec.name}, stage 3 of 3: {spec.op_class.summary()}",
            ins={"upstream": dg.AssetIn(key=upstream)},
            deps=[index_key],
            required_resource_keys={"checkpoints"},
            **self._partitioned(spec.step_name, spec),
        )
        @_deterministic
        def dedup(context: dg.AssetExecutionContext, upstream: pl.DataFrame) -> dg.Output[OpOutput]:
            t0 = time.perf_counter()
            store: CheckpointStore = context.resources.checkpoints
            mine = store.read(store.path(index_key.path, None), where=pl.col(PARTITION_COL) == context.partition_key)
            out = op.apply(upstream, mine.select(ROW_ID, DUPLICATE_OF))
            _check_rows(f"{spec.step_name} {context.partition_key}", upstream.height, out)
            return dg.Output(out, metadata=_step_metadata(upstream.height, out, time.perf_counter() - t0))

        key = self._add(dedup, partitioned=True)
        self.row_assets.append((key, spec.name))
        return key

    def export(self, upstream: dg.AssetKey) -> dg.AssetKey:
        recipe, row_assets = self.recipe, list(self.row_assets)
        export_key = self.key("export")
        check = dg.AssetCheckSpec(
            "rows_reconcile",
            asset=export_key,
            description="Per shard: input rows = kept + filtered + duplicates + quarantined.",
        )

        @dg.asset(
            description=f"Writes the kept rows of every shard, in input order, to {recipe.export_path}; "
            "dropped and quarantined rows beside it.",
            ins={"final": dg.AssetIn(key=upstream, metadata={LOAD_ALL_PARTITIONS: True})},
            required_resource_keys={"checkpoints"},
            check_specs=[check],
            **self._common("export", None),
        )
        @_deterministic
        def export(context: dg.AssetExecutionContext, final: dict[str, pl.DataFrame]) -> dg.MaterializeResult:
            report = export_mod.export_recipe(recipe, final, row_assets, context.resources.checkpoints)
            return dg.MaterializeResult(
                metadata=report.metadata(),
                check_results=[
                    dg.AssetCheckResult(
                        check_name="rows_reconcile",
                        passed=report.reconciles,
                        metadata={"mismatched_partitions": dg.MetadataValue.json(report.mismatches)},
                    )
                ],
            )

        return self._add(export, partitioned=False)


def build_recipe_graph(recipe: Recipe) -> RecipeGraph:
    factory = _Factory(recipe)
    upstream = factory.source()
    for spec in recipe.process:
        add = factory.global_op if spec.op_class.is_global else factory.row_op
        upstream = add(spec, upstream)
    export_key = factory.export(upstream)
    return RecipeGraph(
        recipe=recipe,
        partitions_def=factory.partitions_def,
        assets=factory.assets,
        phases=factory.phases,
        export_key=export_key,
        row_assets=factory.row_assets,
    )
