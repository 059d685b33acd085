"""The asset factory: a recipe becomes a chain of partitioned Dagster assets.

    source ─▶ op00_<mapper> ─▶ op01_<dedup>__hashes ─▶ op01_<dedup>__index ─▶ op01_<dedup> ─▶ … ─▶ export
    (partitioned)                 (partitioned)          (global: all shards)   (partitioned)       (global)

With the default checkpoint strategy (`every_op`) each op is one asset; other strategies fuse consecutive ops
into one asset (pipeline_defs/steps.py). A global op (a Deduplicator) is three stages: per-shard hashes, one
index over every shard in input order, and a per-shard filter that reads only its own slice of the index.
Global ops in a row share their runs: every hashes stage reads the same upstream, the indexes follow one
another (a later one leaves out the rows the earlier ones drop), then the filters (`steps.chained_globals`).

Every partitioned asset has a `BackfillPolicy`: `single_run()` (default) or `multi_run(N)` with
`engine.max_partitions_per_run: N`, so one run materializes many shards and the asset body iterates over them
(pipeline_defs/step.py). One body serves every way a step is started: one partition (`--tags
dagster/partition`) or a range (a backfill, `sluice run`, a schedule tick); without a partition the first step
stops the run, naming `<recipe>_all_job`. A global stage is never keyed by a partition; when some
shard has not reached it yet it waits (yields nothing, so the steps after it are skipped, and says which
shards it waits for). A partitioned step after a global stage also brings up to date every other shard whose
checkpoint the new global stage made stale, so per-partition runs in any order end with a correct export.

`phases` lists the stages in the order a runner executes them (one run each); `nodes` says how each
checkpoint's fingerprint is derived (pipeline_defs/fingerprints.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import dagster as dg
import polars as pl

from ops_library.base import Deduplicator, Op
from ops_library.columns import ROW_ID
from pipeline_defs import export as export_mod
from pipeline_defs import export_ahead, prefetch
from pipeline_defs.fingerprints import code_hash, digest, node_fingerprint, row_code, source_code
from pipeline_defs.opchain import AccountingError, concat_dropped, run_ops, spread
from pipeline_defs.planning import engine_settings, load_plan, plan_for, step_request
from pipeline_defs.recipe import OpSpec, Recipe
from pipeline_defs.shards import (
    discover_shards,
    read_shard,
    shard_content_hash,
    shard_for_key,
    shard_order,
    shard_reference,
)
from pipeline_defs.step import (
    PARTITION_COL,
    Deadline,
    ShardResult,
    cached_first,
    classified,
    dedup_first,
    global_fingerprint,
    index_slice,
    is_current,
    retry_policy,
    stat_histograms,
    step_metadata,
    upstream_fingerprints,
)
from pipeline_defs.steps import GlobalStage, RowStep, chained_globals, plan_steps
from resources.hardware import Hardware, usable_cpus
from resources.monitor import StepMonitor
from resources.planner import OpPlan, Plan, PlanError, pool_name
from resources.pools import Allocation, ComputePool, GpuPool
from resources.run_checks import no_partition_message, shown, unknown_shard_message
from resources.storage import FRAMES, CheckpointStore, StepOutput

# BackfillPolicy on assets is beta in Dagster 1.13; it is the documented way to get range runs.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

NodeKind = Literal["source", "row", "hashes", "index", "export"]
IN_PROCESS = dg.in_process_executor.name  # the executor whose steps all run in the run's own process
# Set while a step's shards run in this process under the in-process executor, where the next steps read them from
# `FRAMES`: only then does the source store its rows as a reference to the input (`shards.shard_reference`).
_INPUT_REFERENCES: contextvars.ContextVar[bool] = contextvars.ContextVar("sluice_input_references", default=False)


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
    # Index of the phase the node runs in; partitioned nodes after a global stage have phase > 0.
    phase: int = 0


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
    checks: list[dg.AssetChecksDefinition] = field(default_factory=list)
    shard_fns: dict[dg.AssetKey, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.recipe.project_name

    @property
    def io_manager_key(self) -> str:
        return io_manager_key(self.recipe)

    @property
    def store_key(self) -> str:
        return store_key(self.recipe)

    @property
    def pool_key(self) -> str:
        return pool_key(self.recipe)

    def store(self) -> CheckpointStore:
        return checkpoint_store(self.recipe)


def io_manager_key(recipe: Recipe) -> str:
    return f"{recipe.project_name}_io_manager"


def store_key(recipe: Recipe) -> str:
    return f"{recipe.project_name}_checkpoints"


def pool_key(recipe: Recipe) -> str:
    return f"{recipe.project_name}_compute_pool"


def checkpoint_store(recipe: Recipe) -> CheckpointStore:
    s = recipe.storage
    return CheckpointStore(base_dir=str(recipe.checkpoint_root), format=s.format, compression=s.compression)


def compute_pool(recipe: Recipe) -> ComputePool:
    """The recipe's pool, configured from its `engine:` section (SLUICE_* variables override it)."""
    return GpuPool.from_settings(engine_settings(recipe))


def registered_shards(instance: dg.DagsterInstance, partitions_def: dg.DynamicPartitionsDefinition) -> list[str]:
    assert partitions_def.name is not None
    return sorted(instance.get_dynamic_partitions(partitions_def.name), key=shard_order)


class _Factory:
    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.prefix = recipe.project_name
        self.partitions_def = dg.DynamicPartitionsDefinition(name=f"{self.prefix}_shards")
        self.assets: list[dg.AssetsDefinition] = []
        self.phases: list[Phase] = [Phase(partitioned=True)]
        self.nodes: dict[dg.AssetKey, Node] = {}
        self.row_assets: list[dg.AssetKey] = []
        self.checks: list[dg.AssetChecksDefinition] = []
        # asset -> fn(store, alloc, shard, upstream fps, retries): one shard of the step (also in a worker)
        self.shard_fns: dict[dg.AssetKey, Any] = {}
        self.gpu_nodes: set[dg.AssetKey] = set()  # steps whose ops take a device: never in worker processes
        self.io_key = io_manager_key(recipe)
        self.store_key = store_key(recipe)
        self.pool_key = pool_key(recipe)
        self.settings = engine_settings(recipe)
        n = self.settings.max_partitions_per_run
        self.backfill_policy = dg.BackfillPolicy.multi_run(n) if n else dg.BackfillPolicy.single_run()
        try:  # shown in the UI; `sluice run` validates the plan and fails before any step when it cannot fit
            self.plan: Plan | None = plan_for(recipe)
        except PlanError:
            self.plan = None

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.prefix, name])

    def on_gpu(self, node: Node) -> bool:
        return node.key in self.gpu_nodes

    def _add(self, asset: dg.AssetsDefinition, node: Node) -> dg.AssetKey:
        if self.phases[-1].partitioned != node.partitioned:
            self.phases.append(Phase(partitioned=node.partitioned))
        node = Node(**{**node.__dict__, "phase": len(self.phases) - 1})
        self.assets.append(asset)
        self.nodes[asset.key] = node
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
            **{"backfill_policy": dg.BackfillPolicy.single_run()} | extra,
        )

    def _partitioned(self, name: str, specs: Sequence[OpSpec], **extra: Any) -> dict[str, Any]:
        retry = next((s.retry for s in specs if s.retry is not None), self.recipe.retry)
        kwargs = self._common(
            name,
            specs,
            partitions_def=self.partitions_def,
            backfill_policy=self.backfill_policy,
            pool=pool_name(self.prefix, name),
            retry_policy=retry_policy(retry),
            **extra,
        )
        if specs and self.plan is not None:
            kwargs["metadata"]["sluice/plan"] = dg.MetadataValue.json(
                step_request(self.recipe, self.plan, tuple(specs), name).metadata()
            )
        return kwargs

    # --- the loop every partitioned body shares ------------------------------------------------------------

    def _shards(self, context: dg.AssetExecutionContext, node: Node) -> tuple[list[str], set[str]]:
        """(shards this step computes, in input order; the ones its run targets). A step after a global stage adds
        every shard whose checkpoint that stage made stale."""
        registered = registered_shards(context.instance, self.partitions_def)
        if context.has_partition_key or context.has_partition_key_range:
            if context.has_partition_key:
                targeted = {context.partition_key}
            else:
                bounds = context.partition_key_range
                try:
                    targeted = set(context.partition_keys)
                except Exception:  # Dagster refuses a range whose ends are not partitions
                    targeted = {bounds.start, bounds.end}
            unknown = sorted(targeted - set(registered), key=shard_order)
            if unknown:  # (Sluice's run storages refuse it before the run exists: `check_run`)
                raise dg.Failure(
                    description=unknown_shard_message(self.prefix, unknown[0], registered, self.recipe.source),
                    allow_retries=False,
                )
        else:
            # Dagster cannot run chained partitioned assets without a partition (it fails before their bodies),
            # so the first step stops the run with the command that runs every shard.
            raise dg.Failure(
                description=no_partition_message(self.recipe.job_name, registered, self.recipe.all_job_name),
                allow_retries=False,
            )
        keys = set(targeted)
        if node.phase > 0 and targeted and "sluice/job_id" not in context.run.tags:
            # A global stage before this step changed, so every shard's output here may be stale: `sluice run`
            # plans that itself (its ranges cover every stale shard); a run for some partitions brings the
            # others up to date too, or the export would mix old and new dedup decisions.
            keys |= self._stale_after_global(node, registered)
        return sorted(keys, key=shard_order), targeted

    def _stale_after_global(self, node: Node, registered: Sequence[str]) -> set[str]:
        store = checkpoint_store(self.recipe)
        ups = [(u.path, self.nodes[u].partitioned) for u in node.upstream]
        stale = set()
        for k in registered:
            fps = upstream_fingerprints(store, ups, k)
            if fps is not None and not is_current(store, node.key.path, k, node_fingerprint(node, fps)):
                stale.add(k)
        return stale

    def _record(
        self, context: dg.AssetExecutionContext, key: dg.AssetKey, results: list[ShardResult], targeted: set[str]
    ) -> dict[str, Any]:
        """Per-shard metadata on each shard's materialization; shards outside the run's partitions get their
        own AssetMaterialization event. Returns the step's summary metadata."""
        computed = [r for r in results if not r.reused]
        for r in results:
            meta = r.metadata | {"reused_checkpoint": r.reused}
            if r.shard in targeted:
                context.add_asset_metadata(meta, partition_key=r.shard)
            else:
                context.log_event(dg.AssetMaterialization(asset_key=key, partition=r.shard, metadata=meta))
        return {
            "step/shards": len(results),
            "step/shards_computed": len(computed),
            "step/shards_reused": len(results) - len(computed),
            "step/seconds": round(sum(float(r.metadata.get("seconds", 0.0)) for r in computed), 4),
        }

    def _partitioned_body(
        self, node: Node, upstream: Sequence[tuple[Sequence[str], bool]], slot: Callable[[], OpPlan] | None = None
    ):
        """The body of a partitioned asset: each shard is reused when current, else computed and checkpointed by
        the node's shard function. `slot`: the plan of steps that hold one of their pool's worker slots."""
        factory = self
        settings = self.settings

        @classified
        def body(context: dg.AssetExecutionContext):
            keys, targeted = factory._shards(context, factory.nodes[node.key])  # with its phase, set by _add
            store: CheckpointStore = getattr(context.resources, factory.store_key)
            deadline = Deadline(node.key.path[-1], settings.step_timeout_s)
            results: dict[str, ShardResult] = {}
            todo: list[tuple[str, list[str] | None]] = []
            for k in keys:
                if node.kind == "source":
                    todo.append((k, None))  # its input hash is read inside the shard's own work
                    continue
                fps = upstream_fingerprints(store, upstream, k)
                if fps is None:
                    raise dg.Failure(
                        description=f"{node.key.to_user_string()} [{k}]: an upstream checkpoint is "
                        "missing; materialize the assets before it for this shard first",
                        allow_retries=False,
                    )
                fp = node_fingerprint(node, fps)
                if is_current(store, node.key.path, k, fp):
                    results[k] = ShardResult(k, {"fingerprint": fp}, reused=True)
                else:
                    todo.append((k, fps))
            if node.kind == "row" and not prefetch.works_ahead(node.key.path[-1]):  # it takes them in order
                todo = cached_first(todo, lambda k: FRAMES.holds(store.path(upstream[0][0], k)))
            workers = min(settings.shard_workers, len(todo))
            run_shard = factory.shard_fns[node.key]
            with factory._allocation(context, slot, keys, max(1, workers)) as alloc:
                if workers > 1 and not factory.on_gpu(node):
                    tasks = [
                        ShardTask(
                            factory.recipe.source,
                            shard_env(),
                            tuple(node.key.path),
                            k,
                            fps,
                            alloc,
                            context.retry_number,
                        )
                        for k, fps in todo
                    ]
                    for result in run_in_workers(tasks, workers):
                        results[result.shard] = result
                        deadline.check(result.shard)
                else:
                    # The source keeps its rows as a reference to the input only where the next steps read them
                    # from this process's memory: another process would parse the input again to read them.
                    in_process = context.job_def.executor_def.name == IN_PROCESS
                    if not in_process:  # the next step runs in another process and reads the files
                        FRAMES.max_bytes = 0  # so frames kept here would only add to this one's memory
                    token = _INPUT_REFERENCES.set(in_process)
                    try:
                        with store.deferred(alloc.chunks):  # shard k is written while shard k+1 computes
                            for k, fps in todo:
                                deadline.check(k)
                                results[k] = run_shard(store, alloc, k, fps, context.retry_number)
                                deadline.check(k)
                    finally:
                        _INPUT_REFERENCES.reset(token)
            ordered = [results[k] for k in keys]
            summary = factory._record(context, node.key, ordered, targeted)
            return dg.MaterializeResult(metadata=summary) if targeted else None

        return body

    @contextlib.contextmanager
    def _allocation(
        self, context: dg.AssetExecutionContext, slot: Callable[[], OpPlan] | None, keys: list[str], workers: int
    ) -> Iterator[Allocation]:
        """One worker slot of the step's pool held for the whole step, and its allocation. The step's CPUs are
        its op's `num_proc` x `num_cpus` (the recipe's `np` for the source and for the hashes of dedups that take
        no device, which hold no slot), shared by the `workers` processes that run its shards; each cuts a shard
        into that many chunks."""
        cpus = self.settings.usable(Hardware(cpus=usable_cpus(), memory_gb=0.0)).cpus
        if slot is None:
            share = max(1, min(cpus, self.recipe.np) // workers)
            yield Allocation("cpu", share, None, None, 0, chunks=share)
            return
        request = slot()
        pool: ComputePool = getattr(context.resources, self.pool_key)
        with pool.hold(request, key=keys[0] if keys else "") as alloc:
            granted = min(cpus, request.num_proc * alloc.threads) if not alloc.on_gpu else 1
            yield replace(alloc, chunks=max(1, granted // workers))

    # --- stages --------------------------------------------------------------------------------------------

    def source(self) -> dg.AssetKey:
        recipe, factory = self.recipe, self
        node = Node(self.key("source"), "source", source_code(recipe), (), True)

        @dg.asset(
            description=f"Rows of one input shard of {recipe.dataset_path}; malformed rows are quarantined.",
            required_resource_keys={self.store_key},
            **self._partitioned("source", []),
        )
        def source(context):
            return body(context)

        self.shard_fns[node.key] = lambda store, _alloc, k, _fps, _retries: factory._source_shard(node, store, k)
        body = self._partitioned_body(node, [])
        key = self._add(source, node)
        self.row_assets.append(key)
        return key

    def _source_shard(self, node: Node, store: CheckpointStore, k: str) -> ShardResult:
        recipe = self.recipe
        t0 = time.perf_counter()
        shard = shard_for_key(recipe.dataset_path, recipe.partition, k)
        content_hash = shard_content_hash(shard)
        fp = node_fingerprint(node, [content_hash])
        path = store.path(node.key.path, k)
        if is_current(store, node.key.path, k, fp):
            return ShardResult(k, {"fingerprint": fp}, reused=True)
        with StepMonitor(interval=self.settings.monitor_interval_s) as usage:
            prefetched = prefetch.take(shard, content_hash)  # parsed while `sluice run` started its runs
            read = prefetched.read if prefetched is not None else read_shard(shard, recipe.text_key)
        kept, quarantined = read.kept, read.quarantined
        if shard.rows is not None and shard.rows != kept.height + quarantined.height:
            raise AccountingError(
                f"source {shard.key}: {shard.rows} rows but {kept.height} read + {quarantined.height} quarantined"
            )
        # the kept rows are the input's: stored as a reference to the shard (read again, hash checked, if needed)
        ref = shard_reference(shard, recipe.text_key, content_hash) if _INPUT_REFERENCES.get() else None
        out = StepOutput(kept, quarantined if quarantined.height else None, fp, input=ref)
        store.write_step(node.key.path, k, out)
        seconds = time.perf_counter() - t0
        rows = kept.height + quarantined.height
        per_op = [
            {
                "op": "source",
                "rows_in": rows,
                "rows_out": kept.height,
                "dropped": quarantined.height,
                # the step's own seconds: a parse that ran ahead of it (`prefetched`) overlapped other work and,
                # slowed by that work, would overstate the op's; it is `parse_seconds` in the metadata
                "seconds": round(seconds, 4),
            }
        ]
        meta = step_metadata(rows, out, seconds, per_op) | usage.metadata()
        meta |= {"file": str(shard.file.path), "checkpoint_path": str(path), "input_reference": ref is not None}
        if shard.members:  # a pack: `file` is its first
            meta["files"] = dg.MetadataValue.json([str(m.file.path) for m in shard.members])
        if prefetched is not None:
            meta |= {"prefetched": True, "parse_seconds": round(prefetched.seconds, 4)}
        meta["quarantined"] = meta.pop("dropped")
        if read.duplicate_key_rows:
            meta["duplicate_key_rows"] = read.duplicate_key_rows
        return ShardResult(k, meta)

    def row_step(self, step: RowStep, upstream: dg.AssetKey, index_key: dg.AssetKey | None) -> dg.AssetKey:
        recipe, factory = self.recipe, self
        ops: list[tuple[OpSpec, Op]] = [(spec, spec.build()) for spec in step.ops]
        code = row_code(step)
        deps = (upstream,) if index_key is None else (upstream, index_key)
        node = Node(self.key(step.name), "row", code, deps, True, tuple(s.step_name for s in step.ops))
        ups = [(upstream.path, True)] + ([(index_key.path, False)] if index_key is not None else [])
        summaries = "; ".join(f"{s.name}: {s.op_class.summary()}" for s in step.ops)

        @dg.asset(
            description=summaries,
            deps=list(deps),
            required_resource_keys={self.store_key, self.pool_key},
            **self._partitioned(step.name, step.ops),
        )
        def row_asset(context):
            return body(context)

        self.shard_fns[node.key] = lambda store, alloc, k, fps, retries: factory._row_shard(
            node, ops, store, alloc, k, fps, upstream, index_key, retries
        )
        self.gpu_nodes |= {node.key} if any(s.op_class.accepts_placement for s in step.ops) else set()
        body = self._partitioned_body(node, ups, lambda: step_request(recipe, load_plan(recipe), step.ops, step.name))
        key = self._add(row_asset, node)
        self.row_assets.append(key)
        return key

    def _row_shard(self, node, ops, store, alloc, k, fps, upstream, index_key, retries) -> ShardResult:
        t0 = time.perf_counter()
        base = store.read_base(store.path(upstream.path, k), take=True)  # no later step reads it
        fp = node_fingerprint(node, fps)
        # worked while `sluice run` started its runs and ran the steps before this one (pipeline_defs/prefetch.py)
        ahead = prefetch.take_step(node.key.path[-1], k, fp) if index_key is None and retries == 0 else None
        if ahead is not None and ahead.rows_in == base.frame.height:
            df, (kept, dropped, per_op), usage = base.frame, (ahead.kept, ahead.dropped, ahead.per_op), ahead.usage
        else:
            ahead, df = None, spread(base.frame, alloc.chunks)
            first = dedup_first(index_slice(store, index_key.path, k)) if index_key is not None else None
            with StepMonitor(self.settings.monitor_interval_s) as monitor:
                kept, dropped, per_op = run_ops(ops, df, k, first, alloc.run_kwargs())
            usage = monitor.metadata()
        # Rows a filter keeps or drops are stored as a selection of the checkpoint they came from.
        out = StepOutput(kept, concat_dropped(dropped), fp, base)
        store.write_step(node.key.path, k, out)
        # the step's own seconds, and the work done ahead of it (slowed by what it overlapped: an upper bound)
        seconds = time.perf_counter() - t0 + (ahead.seconds if ahead is not None else 0.0)
        meta = step_metadata(df.height, out, seconds, per_op) | usage
        if ahead is not None:
            meta |= {"ran_ahead": True, "ahead_seconds": round(ahead.seconds, 4)}
        meta |= stat_histograms(ops, out.kept, out.dropped)
        in_mb = df.estimated_size("mb")
        meta |= {
            "input_mb": round(in_mb, 3),
            "mb_per_s": round(in_mb / seconds, 2) if seconds > 0 else 0.0,
            "retries": retries,
            "device": alloc.device,
            "batch_size": alloc.batch_size,
            "allocation": dg.MetadataValue.json(alloc.metadata()),
            "checkpoint_path": str(store.path(node.key.path, k)),
        }
        return ShardResult(k, meta)

    def dedup_hashes(self, stage: GlobalStage, upstream_key: dg.AssetKey, beside: Sequence[OpSpec] = ()) -> dg.AssetKey:
        """Stage 1 of a global op: every shard's dedup keys. `beside`: the global ops before it whose filters alone
        run between (`chained_globals`): it hashes the rows they hash, in their run."""
        spec = stage.spec
        op = spec.build()
        assert isinstance(op, Deduplicator)
        hashes_name = f"{spec.step_name}__hashes"
        hashes_node = Node(self.key(hashes_name), "hashes", code_hash("hashes", [spec]), (upstream_key,), True)
        # A dedup that takes a device (MinHash) holds a slot of its hashes pool, whose allocation follows the op's
        # plan: a share of a GPU where the plan and the pool grant one, else the CPUs of its workers.
        placed = op.accepts_placement
        shared = (
            f" Hashed from {upstream_key.path[-1]} beside {', '.join(s.name for s in beside)}, whose dropped rows "
            "its index leaves out."
            if beside
            else ""
        )

        @dg.asset(
            description=f"{spec.name}, stage 1 of 3: the dedup key of every row of one shard.{shared}",
            deps=[upstream_key],
            required_resource_keys={self.store_key, self.pool_key} if placed else {self.store_key},
            **self._partitioned(hashes_name, [spec]),
        )
        def hashes(context):
            return hashes_body(context)

        def hashes_shard(store: CheckpointStore, alloc: Allocation, k: str, fps: list[str], _retries: int):
            t0 = time.perf_counter()
            threads = alloc.threads if alloc.on_gpu else alloc.chunks  # the CPUs each of the step's processes has
            where = alloc.run_kwargs() if placed else {}
            frame = spread(store.read(store.path(upstream_key.path, k)), alloc.chunks)
            frame = op.hashes(frame, threads=threads, **where)
            out = StepOutput(frame, None, node_fingerprint(hashes_node, fps))
            store.write_step(hashes_node.key.path, k, out)
            seconds = round(time.perf_counter() - t0, 4)
            meta = {
                "rows": out.kept.height,
                "seconds": seconds,
                "fingerprint": out.fingerprint,
                "threads": threads,
                "device": alloc.device,
                "allocation": dg.MetadataValue.json(alloc.metadata()),
            }
            return ShardResult(k, meta | (getattr(op, "last_run_info", None) or {}))

        self.shard_fns[hashes_node.key] = hashes_shard
        slot = (lambda: step_request(self.recipe, load_plan(self.recipe), (spec,), hashes_name)) if placed else None
        self.gpu_nodes |= {hashes_node.key} if placed else set()
        hashes_body = self._partitioned_body(hashes_node, [(upstream_key.path, True)], slot)
        return self._add(hashes, hashes_node)

    def dedup_index(
        self, stage: GlobalStage, hashes_key: dg.AssetKey, after: Sequence[tuple[OpSpec, dg.AssetKey]] = ()
    ) -> dg.AssetKey:
        """Stage 2 of a global op: one index over every shard's keys. `after`: (op, index) of the global ops
        chained before it (`chained_globals`), whose dropped rows it leaves out, as when it runs after their
        filters."""
        spec, factory = stage.spec, self
        op = spec.build()
        assert isinstance(op, Deduplicator)
        index_name = f"{spec.step_name}__index"
        before = [key for _, key in after]
        index_node = Node(self.key(index_name), "index", code_hash("index", [spec]), (hashes_key, *before), False)
        left_out = (
            f" The rows {', '.join(s.name for s, _ in after)} drops are left out, as after its filter." if after else ""
        )

        @dg.asset(
            description=f"{spec.name}, stage 2 of 3: over all shards in input order, every row that repeats "
            f"an earlier one and the id of the row it duplicates.{left_out}",
            deps=[hashes_key, *before],
            required_resource_keys={self.store_key},
            output_required=False,
            **self._common(index_name, [spec], retry_policy=retry_policy(spec.retry or self.recipe.retry)),
        )
        @classified
        def index(context):
            t0 = time.perf_counter()
            store: CheckpointStore = getattr(context.resources, factory.store_key)
            keys = registered_shards(context.instance, factory.partitions_def)
            before_fps = [store.fingerprint(b.path, None) for b in before]
            fp, missing = global_fingerprint(index_node, store, hashes_key.path, keys, before_fps)
            if missing:
                context.log.warning(factory._waiting(index_name, missing, len(keys)))
                return
            absent = [b.to_user_string() for b, b_fp in zip(before, before_fps, strict=True) if not b_fp]
            if absent:
                raise dg.Failure(
                    description=f"{index_name} leaves out the rows {absent[0]} drops: materialize it first",
                    allow_retries=False,
                )
            if is_current(store, index_node.key.path, None, fp):
                yield dg.MaterializeResult(metadata={"reused_checkpoint": True, "fingerprint": fp})
                return
            frames = [store.read(store.path(hashes_key.path, k)) for k in keys]
            earlier = 0
            if before:  # the rows the chained global ops before it drop: gone before its filter in the recipe
                gone = pl.concat([store.read(store.path(b.path, None)).select(ROW_ID) for b in before])[ROW_ID]
                earlier = gone.len()
                frames = [f.filter(~pl.col(ROW_ID).is_in(gone.implode())) for f in frames]
            dups = op.index(frames)
            if ROW_ID in dups.columns:  # rows to drop: each apply step reads only its own shard's slice
                where = pl.concat(
                    [
                        f.select(ROW_ID).with_columns(pl.lit(k).alias(PARTITION_COL))
                        for k, f in zip(keys, frames, strict=True)
                    ]
                    or [pl.DataFrame(schema={ROW_ID: pl.String, PARTITION_COL: pl.String})]
                )
                dups = dups.join(where, on=ROW_ID, how="left", maintain_order="left")
            meta = store.write_step(index_node.key.path, None, StepOutput(dups, None, fp))
            assert meta is not None  # not deferred: the index is written by this thread, outside any step loop
            rows = sum(f.height for f in frames)
            stats = op.index_stats(dups, rows, meta.bytes)
            yield dg.MaterializeResult(
                metadata={
                    "partitions": len(keys),
                    "rows_indexed": rows,
                    "duplicates": dups.height,
                    "seconds": round(time.perf_counter() - t0, 4),
                    "fingerprint": fp,
                    "reused_checkpoint": False,
                    **({"rows_left_out": earlier} if before else {}),
                    **{f"index/{k}": _metadata_value(v) for k, v in stats.items()},
                }
            )

        return self._add(index, index_node)

    def _waiting(self, stage: str, missing: Sequence[str], total: int) -> str:
        return (
            f"{self.prefix}/{stage} waits for {len(missing)} of {total} shards ({shown(list(missing))}): it sees "
            f"every shard. Run them (dagster job execute -m pipeline_defs -j {self.recipe.job_name} --tags "
            f'\'{{"dagster/partition": "{missing[0]}"}}\' for each, or the whole recipe with '
            f"dagster job execute -m pipeline_defs -j {self.recipe.all_job_name}, or sluice run {self.recipe.source})"
        )

    def export(self, upstream: dg.AssetKey) -> dg.AssetKey:
        recipe, row_assets, factory = self.recipe, list(self.row_assets), self
        export_key = self.key("export")
        node = Node(
            export_key,
            "export",
            digest("export", recipe.export_path, str(recipe.keep_stats_in_res_ds)),
            (upstream,),
            False,
        )

        @dg.asset(
            description=f"Writes the kept rows of every shard, in input order, to {recipe.export_path}; "
            "dropped and quarantined rows beside it.",
            deps=[upstream],
            required_resource_keys={self.store_key},
            output_required=False,
            **self._common("export", []),
        )
        @classified
        def export(context):
            store: CheckpointStore = getattr(context.resources, factory.store_key)
            keys = registered_shards(context.instance, factory.partitions_def)
            fp, missing = global_fingerprint(node, store, upstream.path, keys)
            if missing:
                context.log.warning(factory._waiting("export", missing, len(keys)))
                return
            if export_mod.export_is_current(store, export_key.path, fp):
                meta = export_mod.last_report(store, export_key.path)
                yield dg.MaterializeResult(metadata={"reused_checkpoint": True, "fingerprint": fp, **meta})
                return
            final = {k: store.read(store.path(upstream.path, k)) for k in keys}
            report = export_mod.export_recipe(recipe, final, row_assets, store, export_ahead.finish())
            export_mod.record_export(store, export_key.path, recipe, report, fp)
            yield dg.MaterializeResult(metadata={**report.metadata(), "fingerprint": fp, "reused_checkpoint": False})

        @dg.asset_check(
            asset=export,
            name="rows_reconcile",
            blocking=True,
            required_resource_keys={self.store_key},
            description="Per shard: input rows = kept + filtered + duplicates + quarantined. Blocking: a mismatch "
            "fails the run, with the counts.",
        )
        def rows_reconcile(context) -> dg.AssetCheckResult:
            store: CheckpointStore = getattr(context.resources, factory.store_key)
            mismatches = export_mod.mismatches(export_mod.last_report(store, export_key.path))
            return dg.AssetCheckResult(
                passed=not mismatches,
                metadata={"mismatched_partitions": dg.MetadataValue.json(mismatches)},
                description=export_mod.mismatch_line(mismatches) if mismatches else None,
            )

        self.checks.append(rows_reconcile)
        return self._add(export, node)


# --- shards of one step in worker processes (engine.shard_workers) -------------------------------------------


@dataclass(frozen=True)
class ShardTask:
    recipe_source: str
    env: tuple[tuple[str, str], ...]
    asset_path: tuple[str, ...]
    shard: str
    fps: list[str] | None
    alloc: Any
    retries: int


def shard_env() -> tuple[tuple[str, str], ...]:
    """What a worker needs of this process's environment to read the same recipe into the same home."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("SLUICE_", "DAGSTER_"))))


@functools.lru_cache(maxsize=8)
def _worker_graph(source: str, env: tuple[tuple[str, str], ...]) -> RecipeGraph:
    from pipeline_defs.recipe import load_recipe

    return build_recipe_graph(load_recipe(source))


def compute_shard(task: ShardTask) -> ShardResult:
    """One shard of one step in a worker process: the same function the step runs in its own process."""
    os.environ.update(dict(task.env))
    FRAMES.max_bytes = 0  # the parent reads what a worker writes from disk: nothing to keep here
    graph = _worker_graph(task.recipe_source, task.env)
    fn = graph.shard_fns[dg.AssetKey(list(task.asset_path))]
    result = fn(graph.store(), task.alloc, task.shard, task.fps, task.retries)
    result.metadata["worker_pid"] = os.getpid()
    return result


_POOLS: dict[int, Any] = {}
FORKSERVER_PRELOAD = ["dagster._core.executor.multiprocess", "pipeline_defs.forkserver"]
"""What the forkserver imports before it forks a process: `pipeline_defs/forkserver.py`. One server per process
serves both the shard workers and the multiprocess executor's step processes, whichever starts it first."""
FORKSERVER_JOBS = "SLUICE_FORKSERVER_JOBS"  # the jobs a starting forkserver builds (`start_forkserver`)


def start_forkserver(jobs: Sequence[tuple[str, str, str]] = ()) -> Any:
    """Start the forkserver now, with its preload, and return its multiprocessing context: the server's imports
    (~1.5 s) then run in a process of their own while this one opens the instance and starts the job, instead of
    when the first step or shard worker forks. `jobs`: the (recipe path, executor, Sluice home) of the runs about
    to fork steps, whose definitions the server builds once (`pipeline_defs.forkserver`), passed in its
    environment. A running server is left as it is."""
    import multiprocessing
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    if jobs:
        os.environ[FORKSERVER_JOBS] = json.dumps([list(j) for j in jobs])
    try:
        forkserver.ensure_running()
    finally:
        os.environ.pop(FORKSERVER_JOBS, None)
    return ctx


def run_in_workers(tasks: Sequence[ShardTask], workers: int) -> Iterator[ShardResult]:
    """Results of `tasks` as they finish, on `workers` processes forked from a server that preloaded Sluice (so a
    worker starts in milliseconds and never inherits a parent's polars threads)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if workers not in _POOLS:
        _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=start_forkserver())
    futures = [_POOLS[workers].submit(compute_shard, t) for t in tasks]
    for future in as_completed(futures):
        yield future.result()


def _metadata_value(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) or value is None else dg.MetadataValue.json(value)


def input_shards(recipe: Recipe) -> list[str]:
    """The keys of the input's shards (the demo corpus built first where the recipe builds its input)."""
    from pipeline_defs.corpus_source import ensure_dataset

    ensure_dataset(recipe)
    return [s.key for s in discover_shards(recipe.dataset_path, recipe.partition)]


def sync_shards(
    instance: dg.DagsterInstance, recipe: Recipe, partitions_def: dg.DynamicPartitionsDefinition
) -> list[str]:
    """Make the registered partitions equal the input's shards (new ones added, vanished ones removed)."""
    keys = input_shards(recipe)
    name = partitions_def.name
    assert name is not None
    known = set(instance.get_dynamic_partitions(name))
    if new := [k for k in keys if k not in known]:
        instance.add_dynamic_partitions(name, new)
    for stale in known - set(keys):
        instance.delete_dynamic_partition(name, stale)
    return keys


def build_recipe_graph(recipe: Recipe) -> RecipeGraph:
    factory = _Factory(recipe)
    upstream = factory.source()
    index_key: dg.AssetKey | None = None
    plan, i = plan_steps(recipe), 0
    while i < len(plan):
        step = plan[i]
        if isinstance(step, GlobalStage):
            # Global ops in a row: every hashes stage, then every index, then the filters but the last one's
            # (the next step, or the first op of it), so each kind of stage shares one run.
            n = chained_globals(plan, i)
            stages = [s for s in plan[i : i + 2 * n : 2] if isinstance(s, GlobalStage)]
            hashes = [factory.dedup_hashes(s, upstream, [t.spec for t in stages[:j]]) for j, s in enumerate(stages)]
            indexes: list[tuple[OpSpec, dg.AssetKey]] = []
            for s, h in zip(stages, hashes, strict=True):
                indexes.append((s.spec, factory.dedup_index(s, h, tuple(indexes))))
            for j in range(n - 1):
                head = plan[i + 2 * j + 1]
                assert isinstance(head, RowStep)
                upstream = factory.row_step(head, upstream, indexes[j][1])
            index_key = indexes[-1][1]
            i += 2 * n - 1
        else:
            upstream = factory.row_step(step, upstream, index_key if step.dedup_head else None)
            index_key = None
            i += 1
    export_key = factory.export(upstream)
    return RecipeGraph(
        recipe=recipe,
        partitions_def=factory.partitions_def,
        assets=factory.assets,
        phases=factory.phases,
        nodes=factory.nodes,
        export_key=export_key,
        row_assets=factory.row_assets,
        checks=factory.checks,
        shard_fns=factory.shard_fns,
    )
