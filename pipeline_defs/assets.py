"""The asset factory: a recipe becomes a chain of partitioned Dagster assets.

    source ─▶ op00_<mapper> ─▶ op01_<dedup>__hashes ─▶ op01_<dedup>__index ─▶ op01_<dedup> ─▶ … ─▶ export
    (partitioned: a step per shard)    (partitioned)     (unpartitioned: all)   (partitioned)       (all)

With the default checkpoint strategy (`every_op`) each op is one asset; other strategies fuse consecutive
ops into one asset (pipeline_defs/steps.py). A global op (a Deduplicator) is three stages: per-partition
hashes, one index over every partition in input order, and a per-partition filter that reads only its own
slice of the index. `phases` lists the stages in the order a runner must execute them: partitioned phases
run once per shard, unpartitioned ones once. `nodes` tells the runner how each checkpoint's fingerprint is
derived, so it can skip the ones still valid.
"""

import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dagster as dg
import polars as pl

from ops_library.base import INF, Deduplicator, Filter, Op, OpOutput
from ops_library.columns import DROP_REASON, DUPLICATE_OF, ROW_ID, STATS
from pipeline_defs import charts
from pipeline_defs import export as export_mod
from pipeline_defs.planning import load_plan, plan_for, step_request
from pipeline_defs.recipe import OpSpec, Recipe, RetrySpec
from pipeline_defs.shards import DatasetError, read_shard, shard_content_hash, shard_for_key, shard_order
from pipeline_defs.steps import GlobalStage, RowStep, chain, code_hash, digest, plan_steps
from resources.monitor import StepMonitor
from resources.planner import Plan, PlanError, pool_name
from resources.pools import ComputePool
from resources.storage import (
    LOAD_ALL_PARTITIONS,
    CheckpointStore,
    CorruptCheckpointError,
    MissingCheckpointError,
    StepOutput,
)

PARTITION_COL = "__sluice_partition__"
MONITOR_INTERVAL_S = 0.5
NodeKind = Literal["source", "row", "hashes", "index", "export"]


class AccountingError(RuntimeError):
    """A step lost or invented rows: rows in != kept + dropped."""


# Errors a retry cannot fix: bad data or config, broken accounting, a checkpoint that must be recomputed.
DETERMINISTIC_ERRORS: tuple[type[BaseException], ...] = (
    DatasetError,
    AccountingError,
    MissingCheckpointError,
    CorruptCheckpointError,
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    NotImplementedError,
    pl.exceptions.PolarsError,
)


def retry_policy(spec: RetrySpec) -> dg.RetryPolicy:
    backoff = {"exponential": dg.Backoff.EXPONENTIAL, "linear": dg.Backoff.LINEAR, "fixed": None}[spec.backoff]
    jitter = {"none": None, "full": dg.Jitter.FULL, "plus_minus": dg.Jitter.PLUS_MINUS}[spec.jitter]
    return dg.RetryPolicy(max_retries=spec.max_retries, delay=spec.delay, backoff=backoff, jitter=jitter)


def _classified(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Transient failures (I/O, memory, timeouts, anything unknown) propagate and are retried by the step's
    RetryPolicy; deterministic ones fail the step at once with a clear message."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except dg.Failure:
            raise
        except DETERMINISTIC_ERRORS as exc:
            raise dg.Failure(
                description=f"{type(exc).__name__}: {exc} (not retried: rerunning cannot fix it)",
                allow_retries=False,
            ) from exc

    return wrapped


@dataclass
class Phase:
    partitioned: bool
    keys: list[dg.AssetKey] = field(default_factory=list)


@dataclass(frozen=True)
class Node:
    """How an asset's checkpoint fingerprint is derived: chain(code, fingerprints of `upstream`)."""

    key: dg.AssetKey
    kind: NodeKind
    code: str
    upstream: tuple[dg.AssetKey, ...]
    partitioned: bool
    ops: tuple[str, ...] = ()


@dataclass
class RecipeGraph:
    recipe: Recipe
    partitions_def: dg.DynamicPartitionsDefinition
    assets: list[dg.AssetsDefinition]
    phases: list[Phase]
    nodes: dict[dg.AssetKey, Node]
    export_key: dg.AssetKey
    # Assets whose dropped rows count in the accounting, in recipe order.
    row_assets: list[dg.AssetKey]

    @property
    def group(self) -> str:
        return self.recipe.project_name

    @property
    def io_manager_key(self) -> str:
        return io_manager_key(self.recipe)

    @property
    def store_key(self) -> str:
        return store_key(self.recipe)

    def store(self) -> CheckpointStore:
        return checkpoint_store(self.recipe)


def io_manager_key(recipe: Recipe) -> str:
    return f"{recipe.project_name}_io_manager"


def store_key(recipe: Recipe) -> str:
    return f"{recipe.project_name}_checkpoints"


def checkpoint_store(recipe: Recipe) -> CheckpointStore:
    s = recipe.storage
    return CheckpointStore(base_dir=str(recipe.checkpoint_root), format=s.format, compression=s.compression)


def _run_ops(
    ops: Sequence[tuple[OpSpec, Op]],
    df: pl.DataFrame,
    partition: str,
    first: Callable | None = None,
    placement: dict[str, Any] | None = None,
):
    """Run ops in order on one frame; returns (kept, dropped frames, per-op stats). Each op's rows must
    reconcile: rows in = kept + dropped. Ops that take a placement get the step's device and batch size."""
    per_op: list[dict[str, Any]] = []
    dropped: list[pl.DataFrame] = []
    for i, (spec, op) in enumerate(ops):
        t0 = time.perf_counter()
        if i == 0 and first is not None:
            out: OpOutput = first(op, df)
        elif op.accepts_placement and placement:
            out = op.run(df, **placement)  # type: ignore[call-arg]
        else:
            out = op.run(df)
        seconds = time.perf_counter() - t0
        if df.height != out.kept.height + out.dropped_count:
            raise AccountingError(
                f"{spec.step_name} on {partition}: {df.height} rows in but {out.kept.height} kept + "
                f"{out.dropped_count} dropped"
            )
        per_op.append(
            {
                "op": spec.step_name,
                "rows_in": df.height,
                "rows_out": out.kept.height,
                "dropped": out.dropped_count,
                "changed": out.changed,
                "seconds": round(seconds, 4),
                **(getattr(op, "last_run_info", None) or {}),
            }
        )
        if out.dropped is not None and out.dropped.height:
            dropped.append(out.dropped)
        df = out.kept
    return df, dropped, per_op


def _concat_dropped(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def _stat_histograms(ops: Sequence[tuple[OpSpec, Op]], kept: pl.DataFrame, dropped: pl.DataFrame | None):
    """A Markdown histogram per single-stat filter of the step, over every row it saw (kept and dropped)."""
    frames = [f for f in (kept, dropped) if f is not None and STATS in f.columns]
    if not frames:
        return {}
    stats = pl.concat([f.select(STATS) for f in frames], how="diagonal_relaxed").unnest(STATS)
    out = {}
    for spec, op in ops:
        if isinstance(op, Filter) and op.stat and op.stat in stats.columns:
            lo, hi = (getattr(op.params, b) for b in op.bounds)
            hi = None if hi is not None and hi >= INF else hi
            out[f"histogram/{op.stat}"] = dg.MetadataValue.md(
                f"**{spec.name}**: `{op.stat}`, keep range [{lo}, {hi if hi is not None else '∞'}]\n\n"
                + charts.histogram_markdown(stats[op.stat], lo, hi)
            )
    return out


def _step_metadata(rows_in: int, out: StepOutput, seconds: float, per_op: list[dict[str, Any]]) -> dict[str, Any]:
    rows_out = out.kept.height
    n_dropped = 0 if out.dropped is None else out.dropped.height
    meta: dict[str, Any] = {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "dropped": n_dropped,
        "drop_ratio": round(n_dropped / rows_in, 4) if rows_in else 0.0,
        "seconds": round(seconds, 4),
        "rows_per_s": round(rows_in / seconds, 1) if seconds > 0 else 0.0,
        "dagster/row_count": rows_out,
        "fingerprint": out.fingerprint,
        "per_op": dg.MetadataValue.json(per_op),
    }
    changed = [p["changed"] for p in per_op if p.get("changed") is not None]
    if changed:
        meta["changed_rows"] = sum(changed)
    if out.dropped is not None and out.dropped.height:
        sample = out.dropped.head(5).select(ROW_ID, DROP_REASON)
        meta["dropped_sample"] = dg.MetadataValue.md(
            "| row | reason |\n|---|---|\n" + "\n".join(f"| `{r}` | {why} |" for r, why in sample.iter_rows())
        )
    return meta


class _Factory:
    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.prefix = recipe.project_name
        self.partitions_def = dg.DynamicPartitionsDefinition(name=f"{self.prefix}_shards")
        self.assets: list[dg.AssetsDefinition] = []
        self.phases: list[Phase] = [Phase(partitioned=True)]
        self.nodes: dict[dg.AssetKey, Node] = {}
        self.row_assets: list[dg.AssetKey] = []
        self.io_key = io_manager_key(recipe)
        self.store_key = store_key(recipe)
        try:  # shown in the UI; `sluice run` validates the plan and fails before any step when it cannot fit
            self.plan: Plan | None = plan_for(recipe)
        except PlanError:
            self.plan = None

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.prefix, name])

    def _add(self, asset: dg.AssetsDefinition, node: Node) -> dg.AssetKey:
        self.assets.append(asset)
        self.nodes[asset.key] = node
        if self.phases[-1].partitioned != node.partitioned:
            self.phases.append(Phase(partitioned=node.partitioned))
        self.phases[-1].keys.append(asset.key)
        return asset.key

    def _common(self, name: str, specs: Sequence[OpSpec], **extra: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {"sluice/recipe": self.recipe.source}
        tags = {"sluice/recipe": self.prefix}
        if specs:
            names = [s.name for s in specs]
            meta |= {
                "sluice/op": names[0] if len(names) == 1 else ", ".join(names),
                "sluice/kind": ", ".join(dict.fromkeys(s.op_class.kind for s in specs)),
                "params": dg.MetadataValue.json({s.step_name: s.params.model_dump(mode="json") for s in specs}),
                "resources": dg.MetadataValue.json(
                    {
                        s.step_name: {**vars(s.op_class.needs), **s.resources.model_dump(exclude_none=True)}
                        for s in specs
                    }
                ),
            }
            tags |= {"sluice/op": names[0] if len(names) == 1 else "fused", "sluice/kind": specs[0].op_class.kind}
        return dict(
            name=name,
            key_prefix=[self.prefix],
            group_name=self.prefix,
            metadata=meta,
            tags=tags,
            kinds={"polars"},
            io_manager_key=self.io_key,
            **extra,
        )

    def _partitioned(self, name: str, specs: Sequence[OpSpec], **extra: Any) -> dict[str, Any]:
        retry = next((s.retry for s in specs if s.retry is not None), self.recipe.retry)
        kwargs = self._common(
            name,
            specs,
            partitions_def=self.partitions_def,
            pool=pool_name(self.prefix, name),
            retry_policy=retry_policy(retry),
            **extra,
        )
        if specs and self.plan is not None:
            kwargs["metadata"]["sluice/plan"] = dg.MetadataValue.json(
                step_request(self.recipe, self.plan, tuple(specs), name).metadata()
            )
        return kwargs

    # --- stages --------------------------------------------------------------------------------------------

    def source(self) -> dg.AssetKey:
        recipe, store_key = self.recipe, self.store_key
        code = digest("source", recipe.text_key, str(recipe.partition.size))

        @dg.asset(
            description=f"Rows of one input shard of {recipe.dataset_path}; malformed rows are quarantined.",
            required_resource_keys={store_key},
            **self._partitioned("source", []),
        )
        @_classified
        def source(context: dg.AssetExecutionContext) -> dg.Output[StepOutput]:
            t0 = time.perf_counter()
            shard = shard_for_key(recipe.dataset_path, recipe.partition.size, context.partition_key)
            with StepMonitor(interval=MONITOR_INTERVAL_S) as usage:
                kept, quarantined = read_shard(shard, recipe.text_key)
            if shard.rows != kept.height + quarantined.height:
                raise AccountingError(
                    f"source {shard.key}: {shard.rows} rows but {kept.height} read + {quarantined.height} quarantined"
                )
            fp = chain(code, shard_content_hash(shard))
            out = StepOutput(kept, quarantined if quarantined.height else None, fp)
            seconds = time.perf_counter() - t0
            per_op = [
                {
                    "op": "source",
                    "rows_in": shard.rows,
                    "rows_out": kept.height,
                    "dropped": quarantined.height,
                    "seconds": round(seconds, 4),
                }
            ]
            meta = _step_metadata(shard.rows, out, seconds, per_op) | usage.metadata()
            meta |= {"file": str(shard.file.path), "first_row": shard.start + 1, "last_row": shard.stop}
            meta["checkpoint_path"] = str(getattr(context.resources, store_key).path(context.asset_key.path, shard.key))
            meta["quarantined"] = meta.pop("dropped")
            return dg.Output(out, metadata=meta)

        key = self._add(source, Node(self.key("source"), "source", code, (), True))
        self.row_assets.append(key)
        return key

    def row_step(self, step: RowStep, upstream: dg.AssetKey, index_key: dg.AssetKey | None) -> dg.AssetKey:
        ops = [(spec, spec.build()) for spec in step.ops]
        store_key = self.store_key
        code = code_hash("row", step.ops, "dedup_head" if step.dedup_head else "")
        deps = (upstream,) if index_key is None else (upstream, index_key)
        # (checkpoint path, partitioned?) of each input whose fingerprint this step's chains from
        fp_inputs = [(upstream.path, True)] + ([(index_key.path, False)] if index_key is not None else [])
        summaries = "; ".join(f"{s.name}: {s.op_class.summary()}" for s in step.ops)

        def apply_index(context: dg.AssetExecutionContext) -> Callable[[Op, pl.DataFrame], OpOutput] | None:
            if index_key is None:
                return None
            store: CheckpointStore = getattr(context.resources, store_key)
            mine = store.read(store.path(index_key.path, None), where=pl.col(PARTITION_COL) == context.partition_key)

            def first(op: Op, df: pl.DataFrame) -> OpOutput:
                assert isinstance(op, Deduplicator)
                return op.apply(df, mine.select(ROW_ID, DUPLICATE_OF))

            return first

        recipe = self.recipe

        @dg.asset(
            description=summaries,
            ins={"upstream": dg.AssetIn(key=upstream)},
            deps=[index_key] if index_key is not None else None,
            required_resource_keys={store_key, "compute_pool"},
            **self._partitioned(step.name, step.ops),
        )
        @_classified
        def row_asset(context: dg.AssetExecutionContext, upstream: pl.DataFrame) -> dg.Output[StepOutput]:
            t0 = time.perf_counter()
            store: CheckpointStore = getattr(context.resources, store_key)
            partition = context.partition_key
            pool: ComputePool = context.resources.compute_pool
            request = step_request(recipe, load_plan(recipe), step.ops, step.name)
            with pool.hold(request, key=partition) as alloc, StepMonitor(interval=MONITOR_INTERVAL_S) as usage:
                kept, dropped, per_op = _run_ops(ops, upstream, partition, apply_index(context), alloc.run_kwargs())
            fp = chain(code, *(store.fingerprint(path, partition if part else None) for path, part in fp_inputs))
            out = StepOutput(kept, _concat_dropped(dropped), fp)
            seconds = time.perf_counter() - t0
            meta = _step_metadata(upstream.height, out, seconds, per_op) | usage.metadata()
            meta |= _stat_histograms(ops, out.kept, out.dropped)
            in_mb = upstream.estimated_size("mb")
            meta |= {
                "input_mb": round(in_mb, 3),
                "mb_per_s": round(in_mb / seconds, 2) if seconds > 0 else 0.0,
                "retries": context.retry_number,
                "device": alloc.device,
                "batch_size": alloc.batch_size,
                "allocation": dg.MetadataValue.json(alloc.metadata()),
                "checkpoint_path": str(store.path(context.asset_key.path, partition)),
            }
            return dg.Output(out, metadata=meta)

        node = Node(self.key(step.name), "row", code, deps, True, tuple(s.step_name for s in step.ops))
        key = self._add(row_asset, node)
        self.row_assets.append(key)
        return key

    def global_stage(self, stage: GlobalStage, upstream_key: dg.AssetKey) -> dg.AssetKey:
        spec = stage.spec
        op = spec.build()
        assert isinstance(op, Deduplicator)
        store_key = self.store_key
        hashes_name, index_name = f"{spec.step_name}__hashes", f"{spec.step_name}__index"
        hashes_code = code_hash("hashes", [spec])
        index_code = code_hash("index", [spec])

        @dg.asset(
            description=f"{spec.name}, stage 1 of 3: the dedup key of every row of one shard.",
            ins={"upstream": dg.AssetIn(key=upstream_key)},
            required_resource_keys={store_key},
            **self._partitioned(hashes_name, [spec]),
        )
        @_classified
        def hashes(context: dg.AssetExecutionContext, upstream: pl.DataFrame) -> dg.Output[StepOutput]:
            t0 = time.perf_counter()
            store: CheckpointStore = getattr(context.resources, store_key)
            fp = chain(hashes_code, store.fingerprint(upstream_key.path, context.partition_key))
            out = StepOutput(op.hashes(upstream), None, fp)
            return dg.Output(
                out,
                metadata={"rows": out.kept.height, "seconds": round(time.perf_counter() - t0, 4), "fingerprint": fp},
            )

        hashes_key = self._add(hashes, Node(self.key(hashes_name), "hashes", hashes_code, (upstream_key,), True))

        @dg.asset(
            description=f"{spec.name}, stage 2 of 3: over all shards in input order, every row that repeats "
            "an earlier one and the id of the row it duplicates.",
            ins={"hashes": dg.AssetIn(key=hashes_key, metadata={LOAD_ALL_PARTITIONS: True})},
            required_resource_keys={store_key},
            **self._common(index_name, [spec], retry_policy=retry_policy(spec.retry or self.recipe.retry)),
        )
        @_classified
        def index(context: dg.AssetExecutionContext, hashes: dict[str, pl.DataFrame]) -> dg.Output[StepOutput]:
            t0 = time.perf_counter()
            store: CheckpointStore = getattr(context.resources, store_key)
            keys = sorted(hashes, key=shard_order)
            dups = op.index([hashes[k] for k in keys])
            where = pl.concat(
                [hashes[k].select(ROW_ID).with_columns(pl.lit(k).alias(PARTITION_COL)) for k in keys]
                or [pl.DataFrame(schema={ROW_ID: pl.String, PARTITION_COL: pl.String})]
            )
            found = dups.join(where, on=ROW_ID, how="left", maintain_order="left")
            fp = chain(index_code, *(f"{k}={store.fingerprint(hashes_key.path, k)}" for k in keys))
            return dg.Output(
                StepOutput(found, None, fp),
                metadata={
                    "partitions": len(keys),
                    "rows_indexed": sum(h.height for h in hashes.values()),
                    "duplicates": found.height,
                    "seconds": round(time.perf_counter() - t0, 4),
                    "fingerprint": fp,
                },
            )

        return self._add(index, Node(self.key(index_name), "index", index_code, (hashes_key,), False))

    def export(self, upstream: dg.AssetKey) -> dg.AssetKey:
        recipe, row_assets, store_key = self.recipe, list(self.row_assets), self.store_key
        export_key = self.key("export")
        code = digest("export", recipe.export_path, str(recipe.keep_stats_in_res_ds))
        check = dg.AssetCheckSpec(
            "rows_reconcile",
            asset=export_key,
            description="Per shard: input rows = kept + filtered + duplicates + quarantined.",
        )

        @dg.asset(
            description=f"Writes the kept rows of every shard, in input order, to {recipe.export_path}; "
            "dropped and quarantined rows beside it.",
            ins={"final": dg.AssetIn(key=upstream, metadata={LOAD_ALL_PARTITIONS: True})},
            required_resource_keys={store_key},
            check_specs=[check],
            **self._common("export", []),
        )
        @_classified
        def export(context: dg.AssetExecutionContext, final: dict[str, pl.DataFrame]) -> dg.MaterializeResult:
            store: CheckpointStore = getattr(context.resources, store_key)
            report = export_mod.export_recipe(recipe, final, row_assets, store)
            fp = chain(code, *(f"{k}={store.fingerprint(upstream.path, k)}" for k in sorted(final, key=shard_order)))
            store.write(pl.DataFrame({"export_path": [recipe.export_path]}), store.path(export_key.path, None), fp)
            return dg.MaterializeResult(
                metadata={**report.metadata(), "fingerprint": fp},
                check_results=[
                    dg.AssetCheckResult(
                        check_name="rows_reconcile",
                        passed=report.reconciles,
                        metadata={"mismatched_partitions": dg.MetadataValue.json(report.mismatches)},
                    )
                ],
            )

        return self._add(export, Node(export_key, "export", code, (upstream,), False))


def build_recipe_graph(recipe: Recipe) -> RecipeGraph:
    factory = _Factory(recipe)
    upstream = factory.source()
    index_key: dg.AssetKey | None = None
    for step in plan_steps(recipe):
        if isinstance(step, GlobalStage):
            index_key = factory.global_stage(step, upstream)
        else:
            upstream = factory.row_step(step, upstream, index_key if step.dedup_head else None)
            index_key = None
    export_key = factory.export(upstream)
    return RecipeGraph(
        recipe=recipe,
        partitions_def=factory.partitions_def,
        assets=factory.assets,
        phases=factory.phases,
        nodes=factory.nodes,
        export_key=export_key,
        row_assets=factory.row_assets,
    )


def step_summary(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-op stats a step recorded (fused steps report each op)."""
    raw = meta.get("per_op")
    value = getattr(raw, "value", raw)
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or [])
