"""`sluice run` / `sluice resume`: register the recipe's shards as partitions, then materialize its asset graph
phase by phase on the local Dagster instance (`$SLUICE_HOME/dagster_home`), the way an asset backfill would:
partitioned phases once per shard, global phases (dedup index, export) once.

Before each run the runner checks the checkpoints it would recompute: a (step, shard) whose checkpoint is
intact and whose fingerprint matches the current recipe and input is not run again; a shard's run selects
only the steps from its first invalid one onward. So a re-run, a resume after a crash, or a changed threshold
recomputes exactly what changed. Every run is a normal Dagster run, visible in the UI.
"""

from __future__ import annotations

import json
import multiprocessing
import secrets
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from pipeline_defs.assets import RecipeGraph, build_recipe_graph, step_summary
from pipeline_defs.corpus_source import ensure_dataset
from pipeline_defs.joblog import JobLog, find_job, write_json
from pipeline_defs.planning import engine_settings, plan_for, save_plan, step_pools
from pipeline_defs.recipe import Recipe, RecipeError, load_recipe
from pipeline_defs.shards import Shard, discover_shards, shard_content_hash, shard_order
from pipeline_defs.steps import chain
from resources.analyzer import ResourceUsageAnalyzer
from resources.monitor import ResourceMonitor
from resources.planner import Plan
from resources.pools import apply_pool_limits
from resources.pressure import PressureThresholds, ResourceManager
from resources.settings import sluice_home
from resources.storage import CheckpointMeta, CorruptCheckpointError, MissingCheckpointError

Executor = Literal["in_process", "multiprocess"]
PRESSURE_TIMEOUT_S = 120.0


class RunFailedError(RuntimeError):
    pass


@dataclass
class StepStat:
    steps: int = 0
    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0


@dataclass
class RunReport:
    job_id: str
    recipe: Recipe
    partitions: int
    runs: int
    steps: int
    skipped: int
    wall_seconds: float
    step_seconds: float
    funnel: dict[str, StepStat] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    job_dir: Path | None = None

    @property
    def overhead_per_step(self) -> float:
        return (self.wall_seconds - self.step_seconds) / self.steps if self.steps else 0.0

    def render(self) -> str:
        lines = [
            f"job {self.job_id}: {self.recipe.source}, {self.partitions} partitions, {self.runs} Dagster runs, "
            f"{self.steps} steps run, {self.skipped} skipped (valid checkpoints) in {self.wall_seconds:.1f} s "
            f"(op work {self.step_seconds:.1f} s, {self.overhead_per_step * 1000:.0f} ms overhead per step)",
            "",
            f"{'op':<42}{'rows in':>10}{'rows out':>10}{'dropped':>10}{'seconds':>9}",
        ]
        for name, s in self.funnel.items():
            lines.append(f"{name:<42}{s.rows_in:>10}{s.rows_out:>10}{s.rows_in - s.rows_out:>10}{s.seconds:>9.2f}")
        if not self.funnel:
            lines.append("(every step's checkpoint was valid: nothing recomputed)")
        e = self.export
        if e:
            lines += [
                "",
                f"input {e.get('input')} = kept {e.get('kept')} + filtered {e.get('filtered')} + duplicates "
                f"{e.get('duplicate')} + quarantined {e.get('quarantined')}",
                f"output: {self.recipe.export_path}",
            ]
        if self.job_dir:
            lines.append(f"job log: {self.job_dir}")
        return "\n".join(lines)


def plan_with_history(recipe: Recipe, instance: dg.DagsterInstance) -> Plan:
    """The recipe's plan on this machine, with memory per worker predicted from past runs where there are any."""
    analyzer = ResourceUsageAnalyzer(instance)
    predictions = analyzer.memory_gb_predictions(recipe.partition.size)
    return plan_for(recipe, predictions=predictions or None)


def new_job_id(recipe: Recipe) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S")
    return f"{stamp}_{recipe.project_name}_{secrets.token_hex(3)}"


def sync_partitions(instance: dg.DagsterInstance, graph: RecipeGraph) -> list[Shard]:
    """Make the registered partitions equal the input's shards (new ones added, vanished ones removed)."""
    recipe = graph.recipe
    ensure_dataset(recipe)
    shards = discover_shards(recipe.dataset_path, recipe.partition.size)
    keys = [s.key for s in shards]
    name = graph.partitions_def.name
    assert name is not None
    known = set(instance.get_dynamic_partitions(name))
    if new := [k for k in keys if k not in known]:
        instance.add_dynamic_partitions(name, new)
    for stale in known - set(keys):
        instance.delete_dynamic_partition(name, stale)
    return shards


class CheckpointValidator:
    """Which checkpoints are intact and match the fingerprint the current recipe and input would give."""

    def __init__(self, graph: RecipeGraph, shards: list[Shard]):
        self.graph = graph
        self.store = graph.store()
        self.keys = sorted((s.key for s in shards), key=shard_order)
        self._shards = {s.key: s for s in shards}
        self._hashes: dict[str, str] = {}
        self._expected: dict[tuple[dg.AssetKey, str | None], str] = {}

    def content_hash(self, partition: str) -> str:
        if partition not in self._hashes:
            self._hashes[partition] = shard_content_hash(self._shards[partition])
        return self._hashes[partition]

    def expected(self, key: dg.AssetKey, partition: str | None) -> str:
        memo = (key, partition)
        if memo not in self._expected:
            node = self.graph.nodes[key]
            if node.kind == "source":
                assert partition is not None
                fp = chain(node.code, self.content_hash(partition))
            elif node.partitioned:
                ups = [self.expected(u, partition if self.graph.nodes[u].partitioned else None) for u in node.upstream]
                fp = chain(node.code, *ups)
            else:  # a global stage: every shard of its upstream, in input order
                (up,) = node.upstream
                fp = chain(node.code, *(f"{k}={self.expected(up, k)}" for k in self.keys))
            self._expected[memo] = fp
        return self._expected[memo]

    def check(self, key: dg.AssetKey, partition: str | None) -> str | None:
        """None when the checkpoint can be reused, else why not."""
        path = self.store.path(key.path, partition)
        meta = CheckpointMeta.load(path)
        if meta is None or not path.exists():
            return "no checkpoint"
        if meta.fingerprint != self.expected(key, partition):
            return "recipe or input changed since it was written"
        try:
            self.store.verify(path)
            dropped = self.store.path(key.path, partition, "dropped")
            if dropped.exists():
                self.store.verify(dropped)
        except (CorruptCheckpointError, MissingCheckpointError) as exc:
            return f"corrupt: {exc}"
        if self.graph.nodes[key].kind == "export" and not Path(self.graph.recipe.export_path).exists():
            return "export file missing"
        return None


def _collect(
    instance: dg.DagsterInstance, run_id: str, funnel: dict[str, StepStat]
) -> tuple[int, float, dict[str, Any]]:
    """Steps, op seconds and export metadata of one run, read back from the instance's event log."""
    steps, seconds, export = 0, 0.0, {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        mat = entry.asset_materialization
        if mat is None:
            continue
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        steps += 1
        seconds += float(meta.get("seconds") or 0.0)
        if mat.asset_key.path[-1] == "export":
            export = meta
            continue
        for op in step_summary(meta):
            s = funnel[op["op"]]
            s.steps += 1
            s.rows_in += int(op["rows_in"])
            s.rows_out += int(op["rows_out"])
            s.seconds += float(op["seconds"])
    return steps, seconds, export


def _one_by_one(requests: list[RunRequest], guard: ResourceManager):
    for req in requests:
        guard.wait_for_capacity(timeout=PRESSURE_TIMEOUT_S)
        yield req, execute_run(req)


@dataclass(frozen=True)
class RunRequest:
    recipe_path: str
    job_id: str
    partition: str | None
    assets: tuple[tuple[str, ...], ...]
    executor: str


def execute_run(req: RunRequest) -> tuple[str, bool, str]:
    """One Dagster run of some assets for one partition (or for all, for a global stage): (run id, success,
    failure message). Module-level, so a process pool can call it."""
    instance = dg.DagsterInstance.get()
    recon = dg.build_reconstructable_job(
        "pipeline_defs.loader", "job_for_recipe", reconstructable_args=(req.recipe_path, req.executor)
    )
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    tags = {"sluice/job_id": req.job_id} | ({"dagster/partition": req.partition} if req.partition else {})
    result = dg.execute_job(
        recon, instance, run_config=run_config, tags=tags, asset_selection=[dg.AssetKey(list(a)) for a in req.assets]
    )
    detail = ""
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        detail = failure.step_failure_data.error.message.strip() if failure else "see the run in the UI"
    return result.run_id, result.success, detail


def _latest_export(instance: dg.DagsterInstance, graph: RecipeGraph) -> dict[str, Any]:
    records = instance.fetch_materializations(graph.export_key, limit=1).records
    if not records or records[0].asset_materialization is None:
        return {}
    return {k: getattr(v, "value", v) for k, v in records[0].asset_materialization.metadata.items()}


def run_recipe(
    path: str | Path,
    executor: Executor = "in_process",
    echo: Callable[[str], None] = print,
    job_id: str | None = None,
) -> RunReport:
    t0 = time.perf_counter()
    home = sluice_home()
    home.ensure_dagster_home()
    path = Path(path).resolve()
    recipe = load_recipe(path)
    graph = build_recipe_graph(recipe)
    job = JobLog(recipe.jobs_root, job_id or new_job_id(recipe))
    resumed = job_id is not None
    job.start(
        {
            "job_id": job.job_id,
            "recipe": str(path),
            "recipe_fingerprint": recipe.fingerprint,
            "project_name": recipe.project_name,
            "created": datetime.now(timezone.utc).isoformat(),
            "dagster_home": str(home.dagster_home),
            "sluice_home": str(home.root),
        }
    )
    instance = dg.DagsterInstance.get()
    plan = plan_with_history(recipe, instance)  # PlanError: nothing has run yet
    save_plan(recipe, plan)
    limits = apply_pool_limits(instance, step_pools(recipe, plan))
    shards = sync_partitions(instance, graph)
    validator = CheckpointValidator(graph, shards)
    keys = validator.keys
    job.emit(
        "job_start",
        message=f"{len(keys)} partitions of {recipe.dataset_path}",
        metadata={"resumed": resumed, "pool_limits": limits, "plan": [p.metadata() for p in plan.ops]},
    )
    echo(f"job {job.job_id}: {len(keys)} partitions of {recipe.dataset_path}, Dagster home {home.dagster_home}")

    funnel: dict[str, StepStat] = defaultdict(StepStat)
    export: dict[str, Any] = {}
    runs = steps = skipped = 0
    step_seconds = 0.0
    status = "failed"
    # Runs are launched one after another, so our own CPU load is no reason to wait: only memory and GPU
    # memory pressure (from anything on the machine) hold the next run back.
    monitor = ResourceMonitor(interval=1.0, gpus=True).start()
    guard = ResourceManager(
        monitor,
        PressureThresholds(cpu_percent=100.0),
        on_event=lambda kind, message: job.emit(kind, message=message),
    )
    parallel = max(1, engine_settings(recipe).max_parallel_runs or 1)
    pool = ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) if parallel > 1 else None
    try:
        for phase in graph.phases:
            requests: list[RunRequest] = []
            for key in keys if phase.partitioned else [None]:
                todo: list[dg.AssetKey] = []
                for i, asset_key in enumerate(phase.keys):
                    why = validator.check(asset_key, key)
                    if why is None:
                        continue
                    todo = phase.keys[i:]
                    skipped += i
                    if why != "no checkpoint":
                        job.emit("checkpoint_invalid", partition_id=key, operation_name=asset_key.path[-1], message=why)
                        if why.startswith("corrupt"):
                            echo(f"{asset_key.to_user_string()} [{key or 'all'}]: {why}; recomputing")
                    break
                if not todo:
                    skipped += len(phase.keys)
                    job.emit(
                        "checkpoint_valid", partition_id=key, operation_name=",".join(k.path[-1] for k in phase.keys)
                    )
                    continue
                if resumed and todo != phase.keys:
                    job.emit("partition_resume", partition_id=key, operation_name=todo[0].path[-1])
                assets = tuple(tuple(k.path) for k in todo)
                requests.append(RunRequest(str(path), job.job_id, key, assets, executor))
            # Runs of one phase are independent (one per shard); the next phase waits for all of them.
            if pool is None:
                outcomes = _one_by_one(requests, guard)
            else:
                guard.wait_for_capacity(timeout=PRESSURE_TIMEOUT_S)
                outcomes = zip(requests, pool.map(execute_run, requests), strict=True)
            for req, (run_id, success, detail) in outcomes:
                runs += 1
                job.record_run(instance, run_id, req.partition, recipe.project_name)
                if not success:
                    raise RunFailedError(
                        f"run {run_id} ({req.partition or 'all partitions'}) failed: {detail}\n"
                        f"resume with: sluice resume {job.job_id}"
                    )
                n, secs, exp = _collect(instance, run_id, funnel)
                steps, step_seconds = steps + n, step_seconds + secs
                export = exp or export
        status = "completed"
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        monitor.stop()
        export = export or _latest_export(instance, graph)
        wall = time.perf_counter() - t0
        job.emit(f"job_{'complete' if status == 'completed' else 'failed'}", status=status, duration=round(wall, 3))
        _write_summary(job, recipe, status, wall, export, funnel, runs, skipped)
    if recipe.checkpoint.strategy == "disabled":
        _drop_intermediates(graph)
    return RunReport(
        job_id=job.job_id,
        recipe=recipe,
        partitions=len(keys),
        runs=runs,
        steps=steps,
        skipped=skipped,
        wall_seconds=time.perf_counter() - t0,
        step_seconds=step_seconds,
        funnel=dict(funnel),
        export=export,
        job_dir=job.dir,
    )


def _drop_intermediates(graph: RecipeGraph) -> None:
    """checkpoint strategy `disabled`: intermediates were scratch space for this job only."""
    store = graph.store()
    for key, node in graph.nodes.items():
        if node.kind != "export":
            shutil.rmtree(store.path(key.path, None).parent, ignore_errors=True)


def _write_summary(
    job: JobLog,
    recipe: Recipe,
    status: str,
    wall: float,
    export: dict[str, Any],
    funnel: dict[str, StepStat],
    runs: int,
    skipped: int,
) -> None:
    table = export.get("per_partition")
    per_partition = {r.data["partition"]: r.data for r in getattr(table, "records", [])} if table else {}
    counts = {
        "input": export.get("input"),
        "kept": export.get("kept"),
        "filtered": export.get("filtered"),
        "duplicates": export.get("duplicate"),
        "quarantined": export.get("quarantined"),
    }
    write_json(
        job.summary_path,
        {
            "job_id": job.job_id,
            "status": status,
            "recipe": recipe.source,
            "recipe_fingerprint": recipe.fingerprint,
            "export_path": recipe.export_path,
            "counts": counts,
            "per_partition": {
                k: {
                    "input": v["input"],
                    "kept": v["kept"],
                    "filtered": v["filtered"],
                    "duplicates": v["duplicate"],
                    "quarantined": v["quarantined"],
                }
                for k, v in per_partition.items()
            },
            "per_op": export.get("dropped_per_op") or {},
            "computed_this_run": {k: vars(v) for k, v in funnel.items()},
            "timings": {"wall_seconds": round(wall, 3), "finished": datetime.now(timezone.utc).isoformat()},
            "dagster_runs": runs,
            "steps_skipped_valid_checkpoint": skipped,
            "resume_command": f"sluice resume {job.job_id}",
        },
    )


def resume_job(job_or_run_id: str, executor: Executor = "in_process", echo: Callable[[str], None] = print) -> RunReport:
    """Re-run a job's recipe under the same job id: only failed or missing (step, shard) pairs execute."""
    home = sluice_home()
    home.ensure_dagster_home()
    job = find_job(home.root / "jobs", job_or_run_id, dg.DagsterInstance.get())
    info = job.info()
    recipe = load_recipe(info["recipe"])
    if recipe.fingerprint != info["recipe_fingerprint"]:
        raise RecipeError(
            info["recipe"],
            [
                f"changed since job {job.job_id} started; `sluice run {info['recipe']}` starts a new job that "
                "reuses every checkpoint still valid"
            ],
        )
    return run_recipe(info["recipe"], executor=executor, echo=echo, job_id=job.job_id)


def gc(recipe_path: str | Path, echo: Callable[[str], None] = print) -> list[Path]:
    """Apply the recipe's retention policy to its checkpoints and job directories."""
    recipe = load_recipe(recipe_path)
    policy = recipe.storage
    removed: list[Path] = []
    jobs = sorted(
        (p for p in recipe.jobs_root.glob(f"*_{recipe.project_name}_*") if (p / "job.json").exists()),
        key=lambda p: p.name,
    )
    summaries = {p: _read_summary(p) for p in jobs}
    if policy.max_retention_days is not None:
        cutoff = time.time() - policy.max_retention_days * 86400
        for p in jobs:
            if p.stat().st_mtime < cutoff:
                shutil.rmtree(p)
                removed.append(p)
    latest_status = summaries[jobs[-1]].get("status") if jobs else None
    ckpt = recipe.checkpoint_root / recipe.project_name
    drop_checkpoints = policy.retention == "cleanup_all" or (
        policy.retention == "keep_failed_only" and latest_status == "completed"
    )
    if drop_checkpoints and ckpt.exists():
        shutil.rmtree(ckpt)
        removed.append(ckpt)
    for p in removed:
        echo(f"removed {p}")
    return removed


def _read_summary(job_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((job_dir / "job_summary.json").read_text())
    except (OSError, ValueError):
        return {}
