"""`sluice run` / `sluice resume`: materialize a recipe's asset graph the way a Dagster asset backfill does.

One run per phase (partitioned steps over a range of shards, then each global stage), each a normal Dagster run
of the recipe's job with the range tags a backfill uses (`dagster/asset_partition_range_start/end`), tagged
`sluice/job_id` so the UI groups them. With `engine.max_partitions_per_run: N` (BackfillPolicy.multi_run(N)) a
phase is ⌈shards / N⌉ runs, `engine.max_parallel_runs` of them at once.

Before each phase the planner compares every checkpoint with the fingerprint the current recipe and input give
(pipeline_defs/fingerprints.py): a phase whose checkpoints are all current is not run; otherwise its run covers
the smallest range of shards holding every stale one, and inside the run each step reuses the shards that are
current. So a re-run, a resume after a crash, or a changed threshold recomputes exactly what changed.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import dagster as dg

from pipeline_defs import console, export_ahead, prefetch
from pipeline_defs.export import export_is_current, last_report
from pipeline_defs.fingerprints import Fingerprints
from pipeline_defs.graph import (
    RecipeGraph,
    build_recipe_graph,
    input_shards,
    registered_shards,
    start_forkserver,
    sync_shards,
)
from pipeline_defs.joblog import JobLog, find_job
from pipeline_defs.planning import engine_settings, load_plan, plan_for, save_plan, step_pools
from pipeline_defs.progress import progress_for
from pipeline_defs.recipe import Recipe, RecipeError, load_recipe
from pipeline_defs.report import RunReport, collect, latest_export, new_funnel, write_summary
from pipeline_defs.retention import drop_intermediates
from pipeline_defs.shards import shard_content_hash, shard_for_key, shard_order
from pipeline_defs.step import checkpoint_problem, is_current
from resources.analyzer import ResourceUsageAnalyzer
from resources.monitor import ResourceMonitor
from resources.planner import Plan
from resources.pools import apply_pool_limits
from resources.pressure import PressureThresholds, ResourceManager
from resources.settings import sluice_home
from resources.storage import FRAMES

Executor = Literal["in_process", "multiprocess", "celery"]
PRESSURE_TIMEOUT_S = 120.0
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


class RunFailedError(RuntimeError):
    pass


class JobInterrupted(RuntimeError):
    pass


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock held for the block (released by the OS if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_INSTANCE: tuple[tuple[object, ...], dg.DagsterInstance] | None = None


def process_instance() -> dg.DagsterInstance:
    """`DagsterInstance.get()`, made once per process for the same DAGSTER_HOME and dagster.yaml (opening one
    reads the YAML and its storages: ~0.1 s, and a job asked for it once per run)."""
    global _INSTANCE
    home = os.environ.get("DAGSTER_HOME", "")
    config = Path(home, "dagster.yaml")
    key = (os.getpid(), home, config.stat().st_mtime_ns if config.exists() else None)
    if _INSTANCE is None or _INSTANCE[0] != key:
        _INSTANCE = (key, dg.DagsterInstance.get())
        console.settle()  # the storage modules it imported: frozen, in the `sluice` command's process
    return _INSTANCE[1]


def instance_ready() -> dg.DagsterInstance:
    """The local instance, created and migrated under a lock, so concurrent first runs cannot race on its
    schema (alembic heads) or its pool rows."""
    home = sluice_home()
    home.ensure_dagster_home()
    with file_lock(home.root / "locks" / "instance.lock"):
        return process_instance()


def plan_with_history(recipe: Recipe, instance: dg.DagsterInstance) -> Plan:
    """The recipe's plan on this machine, with memory per worker predicted from past runs where there are any."""
    analyzer = ResourceUsageAnalyzer(instance)
    # rows per shard: given, or estimated from the shard's bytes at ~1 KB per document
    rows = recipe.partition.size or max(1, (recipe.partition.shard_bytes or 0) // 1024)
    predictions = analyzer.memory_gb_predictions(rows)
    return plan_for(recipe, predictions=predictions or None)


def new_job_id(recipe: Recipe) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S")
    return f"{stamp}_{recipe.project_name}_{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunRequest:
    recipe_path: str
    job_id: str
    assets: tuple[tuple[str, ...], ...]
    executor: str
    shard_range: tuple[str, str] | None = None
    phase: int = 0


def _job_args(recipe_path: str, executor: str) -> tuple[str, str, str]:
    """`loader.job_for_recipe`'s arguments for a run's job: what a step process rebuilds it from, and what a
    forkserver builds ahead for it. The home travels with the job: a Celery worker rebuilds it under this run's
    home, not its own."""
    return recipe_path, executor, str(sluice_home().root)


def execute_run(req: RunRequest) -> tuple[str, bool, str]:
    """One Dagster run of some assets over a range of shards (or unpartitioned, for a global stage): (run id,
    success, failure message). Module-level, so a process pool can call it."""
    instance = process_instance()
    recon = dg.build_reconstructable_job(
        "pipeline_defs.loader", "job_for_recipe", reconstructable_args=_job_args(req.recipe_path, req.executor)
    )
    run_config: dict = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    tags = {"sluice/job_id": req.job_id, "sluice/phase": str(req.phase)}
    if req.shard_range:
        tags |= {RANGE_START: req.shard_range[0], RANGE_END: req.shard_range[1]}
    result = dg.execute_job(
        recon, instance, run_config=run_config, tags=tags, asset_selection=[dg.AssetKey(list(a)) for a in req.assets]
    )
    detail = "" if result.success else failure_detail(result.all_events)
    return result.run_id, result.success, detail.splitlines()[0] if detail else detail


def failure_detail(events: Sequence[dg.DagsterEvent]) -> str:
    """Why a run failed, in one line: a failed blocking check's description, else the first failed step's error,
    else the run's own error (an interrupt that reached a step process before its step started leaves no step
    failure: the run fails with DagsterExecutionInterruptedError, and `sluice run` must still see an interrupt)."""
    check = next(
        (
            e
            for e in events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and not e.event_specific_data.passed
        ),
        None,
    )
    failure = next((e for e in events if e.is_step_failure), None)
    run_failure = next((e for e in events if e.event_type == dg.DagsterEventType.RUN_FAILURE), None)
    if failure is not None:
        detail = _failure_line(failure.step_failure_data.error)
    elif run_failure is not None and getattr(run_failure.event_specific_data, "error", None) is not None:
        detail = _failure_line(run_failure.event_specific_data.error)
    else:
        detail = "see the run in the UI"
    if check is not None:
        detail = check.event_specific_data.description or detail
    return detail


def _failure_line(error: object) -> str:
    """The step's failure in one line, with its root cause (a step that used up its retries says only
    "Exceeded max_retries"; the error that made it retry is in the cause chain)."""
    if error is None:
        return "see the run in the UI"
    top = (getattr(error, "message", "") or "").strip().splitlines()[0]
    root = error
    while getattr(root, "cause", None) is not None:
        root = root.cause
    if root is error:
        return top
    cause = (getattr(root, "message", "") or "").strip().splitlines()[0]
    return f"{top}: {cause}" if cause else top


def _partitions_held(instance: dg.DagsterInstance | None) -> AbstractContextManager[None]:
    """The job's runs in this process read the registered shards once (`PooledSqliteEventLogStorage.
    partitions_held`): they were registered before the first run, under the instance lock."""
    if instance is None:
        return nullcontext()
    from resources.dagster_storage import partitions_held  # imported with the instance already (dagster.yaml)

    return partitions_held(instance)


def _ranges(todo: Sequence[str], order: Sequence[str], per_run: int | None) -> list[tuple[str, str]]:
    """Contiguous ranges (in the instance's partition order) covering `todo`, at most `per_run` shards each."""
    positions = sorted(order.index(k) for k in todo)
    first, last = positions[0], positions[-1]
    span = list(order[first : last + 1])
    size = per_run or len(span)
    return [(chunk[0], chunk[-1]) for chunk in (span[i : i + size] for i in range(0, len(span), size))]


class _Planner:
    """Which checkpoints of a phase are stale, by the one fingerprint implementation."""

    def __init__(self, graph: RecipeGraph, shards: Sequence[str]):
        recipe = graph.recipe
        self.graph = graph
        self.store = graph.store()
        self.shards = list(shards)
        self.fps = Fingerprints(
            graph.nodes,
            self.shards,
            lambda k: shard_content_hash(shard_for_key(recipe.dataset_path, recipe.partition, k)),
        )

    def _stale(self, keys: Sequence[dg.AssetKey]) -> Iterator[tuple[str, str, str]]:
        """(shard, first stale step, why) for each shard with a checkpoint of `keys` that cannot be reused, lazily."""
        for k in self.shards:
            for a in keys:
                why = checkpoint_problem(self.store, a.path, k, self.fps.expected(a, k))
                if why is not None:
                    yield k, a.path[-1], why
                    break

    def stale_shards(self, keys: Sequence[dg.AssetKey]) -> dict[str, tuple[str, str]]:
        """Shard -> (first stale step, why) for every shard with a checkpoint of `keys` that cannot be reused."""
        return {k: (step, why) for k, step, why in self._stale(keys)}

    def global_current(self, key: dg.AssetKey) -> bool:
        expected = self.fps.expected(key, None)
        if self.graph.nodes[key].kind == "export":
            return export_is_current(self.store, key.path, expected) and Path(self.graph.recipe.export_path).exists()
        return is_current(self.store, key.path, None, expected)

    def all_current(self) -> bool:
        """Whether every checkpoint of the recipe, the export's included, can be reused: the job runs nothing.
        Stops at the first that cannot (on a first run: the first shard's source, one shard hashed)."""
        return all(
            next(self._stale(p.keys), None) is None if p.partitioned else all(self.global_current(k) for k in p.keys)
            for p in self.graph.phases
        )


class _Signals:
    """SIGTERM and SIGINT stop the job: the signal is noted and passed to Dagster as SIGINT, which interrupts the
    run in flight (its steps stop at once and are not retried); the job then ends as interrupted."""

    def __init__(self) -> None:
        self.received: int | None = None

    @contextmanager
    def watch(self) -> Iterator[_Signals]:
        def on_signal(signum: int, frame: object) -> None:
            self.received = signum
            if signum == signal.SIGTERM:
                os.kill(os.getpid(), signal.SIGINT)  # Dagster's own interrupt handling takes it from here
            else:
                raise KeyboardInterrupt

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def check(self) -> None:
        if self.received is not None:
            raise KeyboardInterrupt


def run_recipe(
    path: str | Path,
    executor: Executor = "in_process",
    echo: Callable[[str], None] = print,
    job_id: str | None = None,
) -> RunReport:
    t0 = time.perf_counter()
    path = Path(path).resolve()
    recipe = load_recipe(path)
    home = sluice_home()
    # The same recipe started twice at once runs once: the second waits, then finds its checkpoints current.
    with file_lock(home.root / "locks" / f"{recipe.project_name}.lock"):
        try:
            return _run_locked(path, recipe, executor, echo, job_id, t0)
        finally:
            prefetch.stop()  # what the source step did not take is dropped with the job
            export_ahead.stop()  # and the dropped rows rendered ahead that the export did not take


def _unchanged(graph: RecipeGraph, executor: Executor, path: Path) -> _Planner | None:
    """The planner over the input's shards when every checkpoint is current (an unchanged recipe on unchanged
    input), told from the checkpoints alone; None when something must run. The Dagster instance is not needed
    to know it, and opening it (its storage imports, its databases) was most of an unchanged re-run's time.
    When something must run, the source's stale shards start parsing here (`prefetch`), and the forkserver starts
    where the job forks (`graph.start_forkserver`), while the instance opens."""
    recipe = graph.recipe
    planner = _Planner(graph, sorted(input_shards(recipe), key=shard_order))
    if planner.all_current():
        return planner
    source = next(k for k, n in graph.nodes.items() if n.kind == "source")
    stale = sorted(planner.stale_shards([source]), key=shard_order)
    prefetch.start_for(recipe, [shard_for_key(recipe.dataset_path, recipe.partition, k) for k in stale], executor)
    if engine_settings(recipe).forks_here(executor):
        start_forkserver([_job_args(str(path), executor)])
    return None


def _run_locked(
    path: Path,
    recipe: Recipe,
    executor: Executor,
    echo: Callable[[str], None],
    job_id: str | None,
    t0: float,
) -> RunReport:
    home = sluice_home()
    graph = build_recipe_graph(recipe)
    resumed = job_id is not None
    # A resume always goes through the instance: it looks the job's runs up there.
    current = None if resumed else _unchanged(graph, executor, path)
    instance = None if current is not None else instance_ready()
    job = JobLog(recipe.jobs_root, job_id or new_job_id(recipe))
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
    if instance is None:  # nothing runs: the last run's plan and limits hold; the shards are the input's
        assert current is not None
        plan = load_plan(recipe)
        limits, keys = step_pools(recipe, plan), current.shards
        order, planner = keys, current
    else:
        plan = plan_with_history(recipe, instance)  # PlanError: nothing has run yet
        save_plan(recipe, plan)
        with file_lock(home.root / "locks" / "instance.lock"):
            limits = apply_pool_limits(instance, step_pools(recipe, plan))
            sync_shards(instance, recipe, graph.partitions_def)
        keys = registered_shards(instance, graph.partitions_def)
        assert graph.partitions_def.name is not None
        order = list(instance.get_dynamic_partitions(graph.partitions_def.name))
        planner = _Planner(graph, keys)
    settings = engine_settings(recipe)
    executor = settings.executor or executor  # the recipe's `engine.executor` (e.g. celery) wins over the default
    job.emit(
        "job_start",
        message=f"{len(keys)} partitions of {recipe.dataset_path}",
        metadata={"resumed": resumed, "pool_limits": limits, "plan": [p.metadata() for p in plan.ops]},
    )
    echo(f"job {job.job_id}: {len(keys)} shards of {recipe.dataset_path}, Dagster home {home.dagster_home}")

    funnel = new_funnel()
    export: dict = {}
    runs = computed = reused = 0
    step_seconds = 0.0
    status, error = "failed", None
    monitor = ResourceMonitor(interval=settings.monitor_interval_s, gpus=True).start()
    # Only memory and GPU memory pressure (from anything on the machine) hold the next run back.
    guard = ResourceManager(
        monitor, PressureThresholds(cpu_percent=100.0), on_event=lambda kind, message: job.emit(kind, message=message)
    )
    parallel = settings.max_parallel_runs or plan.hardware.cpus
    pool: ProcessPoolExecutor | None = None
    # The export step runs in this process: each phase's dropped rows are rendered for it while the later
    # phases run (pipeline_defs/export_ahead.py).
    ahead = instance is not None and settings.steps_in_process(executor)
    if ahead:
        export_ahead.start(planner.store)
    row_assets, order_keys = set(graph.row_assets), sorted(keys, key=shard_order)

    def render_ahead(i: int) -> None:
        # Not the phase just before the export: the export starts at once and would wait for the thread.
        phase = graph.phases[i]
        if ahead and phase.partitioned and i + 2 < len(graph.phases):
            mine = [key for key in phase.keys if key in row_assets]
            export_ahead.submit(planner.store.path(key.path, k, "dropped") for k in order_keys for key in mine)

    try:
        shown = progress_for(instance, job.job_id, graph.phases, len(keys), echo) if instance else nullcontext()
        with _Signals().watch() as signals, shown, _partitions_held(instance):
            for i, phase in enumerate(graph.phases):
                names = ",".join(k.path[-1] for k in phase.keys)
                assets = tuple(tuple(k.path) for k in phase.keys)
                if phase.partitioned:
                    todo = planner.stale_shards(phase.keys)
                    if not todo:
                        job.emit("checkpoint_valid", operation_name=names, message=f"all {len(keys)} shards current")
                        reused += len(keys) * len(phase.keys)
                        render_ahead(i)
                        continue
                    for k, (step, why) in todo.items():
                        if why != "no checkpoint":
                            job.emit("checkpoint_invalid", partition_id=k, operation_name=step, message=why)
                        if why.startswith("corrupt"):
                            echo(f"{recipe.project_name}/{step} [{k}]: {why}; recomputing")
                        if resumed:
                            job.emit("partition_resume", partition_id=k, operation_name=step)
                    # the run starts at the earliest stale step: steps before it are current for every shard
                    first = min(names.split(",").index(step) for step, _ in todo.values())
                    assets = assets[first:]
                    ranges = _ranges(list(todo), order, settings.max_partitions_per_run)
                    requests = [RunRequest(str(path), job.job_id, assets, executor, r, i) for r in ranges]
                    echo(f"phase {i + 1}/{len(graph.phases)}: {names} — {len(todo)} of {len(keys)} shards to compute")
                else:
                    if all(planner.global_current(k) for k in phase.keys):
                        job.emit("checkpoint_valid", operation_name=names)
                        reused += len(phase.keys)
                        continue
                    requests = [RunRequest(str(path), job.job_id, assets, executor, None, i)]
                    echo(f"phase {i + 1}/{len(graph.phases)}: {names}")
                if instance is None:  # the input or a checkpoint changed since `_unchanged` looked
                    raise RunFailedError(f"{names}: checkpoints changed while the job started; run it again")
                guard.wait_for_capacity(timeout=PRESSURE_TIMEOUT_S)
                if len(requests) > 1 and parallel > 1:
                    pool = pool or ProcessPoolExecutor(
                        min(parallel, len(requests)), mp_context=multiprocessing.get_context("spawn")
                    )
                    outcomes = list(zip(requests, pool.map(execute_run, requests), strict=True))
                else:
                    outcomes = [(req, execute_run(req)) for req in requests]
                for req, (run_id, success, detail) in outcomes:
                    if not success and ("Interrupt" in detail or signals.received is not None):
                        signals.received = signals.received or signal.SIGINT
                    signals.check()
                    runs += 1
                    logs = instance.all_logs(run_id)  # read once: the job log and the report both walk it
                    job.record_run(logs, run_id, None, recipe.project_name)
                    n, r, secs, exp = collect(logs, funnel)
                    computed, reused, step_seconds = computed + n, reused + r, step_seconds + secs
                    export = exp or export
                    if not success:
                        where = f"shards {req.shard_range[0]}…{req.shard_range[1]}" if req.shard_range else "all shards"
                        raise RunFailedError(
                            f"run {run_id} ({names}, {where}) failed: {detail}\nresume with: sluice resume {job.job_id}"
                        )
                render_ahead(i)
        if not export:  # the export was reused: its report is kept with its checkpoint
            export = (
                latest_export(instance, graph.export_key)
                if instance
                else last_report(planner.store, graph.export_key.path)
            )
        if export.get("input") is None:
            raise RunFailedError(f"the export was not written; resume with: sluice resume {job.job_id}")
        status = "completed"
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by a signal"
        raise JobInterrupted(f"job {job.job_id} interrupted; resume with: sluice resume {job.job_id}") from None
    except RunFailedError as exc:
        error = str(exc).splitlines()[0]
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        FRAMES.clear()  # the job's frames: a long-lived process must not hold them after it
        monitor.stop()
        wall = time.perf_counter() - t0
        kind = {"completed": "job_complete", "interrupted": "job_interrupted"}.get(status, "job_failed")
        job.emit(kind, status=status, duration=round(wall, 3), error_message=error)
        write_summary(job, recipe, status, wall, export, funnel, runs, reused, error)
    if recipe.checkpoint.strategy == "disabled":
        drop_intermediates(graph)
    return RunReport(
        job_id=job.job_id,
        recipe=recipe,
        partitions=len(keys),
        runs=runs,
        steps=computed,
        skipped=reused,
        wall_seconds=time.perf_counter() - t0,
        step_seconds=step_seconds,
        status=status,
        funnel=dict(funnel),
        export=export,
        job_dir=job.dir,
    )


def resume_job(job_or_run_id: str, executor: Executor = "in_process", echo: Callable[[str], None] = print) -> RunReport:
    """Re-run a job's recipe under the same job id: only failed or missing (step, shard) pairs execute."""
    home = sluice_home()
    job = find_job(home.root / "jobs", job_or_run_id, instance_ready())
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
