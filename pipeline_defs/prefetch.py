"""The first phase's work on stale input shards, started by `sluice run` ahead of its Dagster steps.

Before the first step runs, `sluice run` spends about a second in Python that holds the GIL: opening (or
creating) the Dagster instance, planning, registering partitions, starting the first run; and each step then
spends a tenth of a second or so in Dagster (its events, its materializations, its checkpoint writes). The
source's parse and the ops are mostly polars (and numba) work that does not hold the GIL. So when the job's source
has stale shards, a thread does the first phase's work while the rest goes on, in the order the steps will ask
for it: it parses every shard, in input order, then runs the first row step's ops on each parsed shard, then the
next row step's on those outputs, and so on through the row steps of the first phase (`AheadStep`, in
`ahead_steps`: those before the first global stage, up to the first one with an op that takes a device or is
not Sluice's own).

Each step takes its shards' results from here instead of computing them: the source step a shard's rows
(`take`), provided the shard's bytes still hash to what was parsed; a row step a shard's kept and dropped rows and
per-op stats (`take_step`), provided the fingerprint the step computed from its upstream checkpoints is the one
the thread computed for what it ran on: the same op code on the same bytes, so the same rows. Nothing else
changes: the step checks its accounting, writes its checkpoint and records its materialization as before, with
`prefetched: true` (source) or `ran_ahead: true` (row step) and the work's own seconds in its metadata. Whatever
fails here (an op raising, a shard whose bytes changed) is left to the step, which computes it itself and reports
the error where it belongs.

Only for steps that run in this process (the in-process executor without shard workers, every stale shard in one
run); at most `budget_bytes` of results wait here at once, so a large input is parsed ahead by a few shards, not
read into memory. The row steps are worked ahead only while every stale shard's parsed frame fits in the budget
too (each waits here between two steps): a larger input is only parsed ahead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipeline_defs import fingerprints
from pipeline_defs.fingerprints import chain, row_code
from pipeline_defs.opchain import run_ops, spread
from pipeline_defs.planning import engine_settings
from pipeline_defs.recipe import OpSpec, Recipe, load_recipe
from pipeline_defs.shards import Shard, ShardRead, discover_shards, read_shard, shard_content_hash, shard_order
from pipeline_defs.steps import RowStep, plan_steps
from resources.checkpoint_files import CheckpointMeta, checkpoint_path
from resources.hardware import Hardware, usable_cpus
from resources.monitor import StepMonitor

BUDGET_BYTES = 512 << 20  # results waiting for their steps, at most


@dataclass
class Parsed:
    read: ShardRead
    content_hash: str
    seconds: float


@dataclass
class Computed:
    """A row step's ops on one shard, run ahead: what `run_ops` returned, and how it went."""

    fingerprint: str
    rows_in: int
    kept: pl.DataFrame
    dropped: list[pl.DataFrame]
    per_op: list[dict[str, Any]]
    seconds: float
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AheadStep:
    """A row step of the first phase: its name, its code (its fingerprint is `chain(code, upstream's)`, as its
    graph node's) and its ops' specs (the thread builds instances of its own: ops keep per-run state)."""

    name: str
    code: str
    specs: Sequence[OpSpec]


def ahead_steps(recipe: Recipe) -> list[AheadStep]:
    """The row steps the thread may work ahead: those before the recipe's first global stage, up to the first
    one with an op that takes a device or is not Sluice's own (a custom op may have side effects, which must
    happen in its step, under its retry policy)."""
    out = []
    for step in plan_steps(recipe):
        if not isinstance(step, RowStep) or step.dedup_head:
            break
        if any(s.op_class.accepts_placement or not s.op_class.__module__.startswith("ops_library.") for s in step.ops):
            break
        out.append(AheadStep(step.name, row_code(step), step.ops))
    return out


class Prefetch:
    """A thread working ahead in the order the steps take: position `s * len(shards) + i` is step `s` (0: the
    source's parse) on shard `i`. `take`/`take_step` hand each result over once; a position the steps went past
    without taking is let go (and a shard whose chain broke is not worked further)."""

    def __init__(
        self,
        shards: Sequence[Shard],
        text_key: str,
        steps: Sequence[AheadStep] = (),
        *,
        source_code: str | None = None,
        chunks: int = 1,
        monitor_interval_s: float = 0.5,
        budget_bytes: int = BUDGET_BYTES,
        current: Callable[[Shard, str], bool] | None = None,
    ) -> None:
        self.text_key = text_key
        self.budget_bytes = budget_bytes
        self._shards = list(shards)
        self._steps = list(steps) if source_code is not None else []
        self._source_code = source_code  # the source step's code: its fingerprint starts every shard's chain
        self._chunks = chunks
        self._interval = monitor_interval_s
        self._current = current  # (shard, content hash) -> its source checkpoint is current: not parsed
        self._index = {s.key: i for i, s in enumerate(self._shards)}
        self._step_index = {st.name: n + 1 for n, st in enumerate(self._steps)}
        self._ops: dict[str, list] = {}  # each step's op instances, built by the thread
        self._done: dict[int, Parsed | Computed | None] = {}  # None: failed (the step computes it itself)
        self._next = 0  # positions before this one are taken or let go: not worked, not held
        self._held = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._chained = bool(self._steps)  # False once the row steps are no longer worked ahead
        self._thread = threading.Thread(target=self._run, name="sluice-prefetch", daemon=True)
        self._thread.start()

    # --- the thread ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        n = len(self._shards)
        frames: list[pl.DataFrame | None] = [None] * n  # each shard's latest output, the next step's input
        fps: list[str | None] = [None] * n
        chain_bytes = 0  # the parsed frames the row steps will start from
        for s in range(len(self._steps) + 1):
            for i, shard in enumerate(self._shards):
                pos = s * n + i
                with self._cond:
                    # Wait while the results already worked (and not yet taken) fill the budget.
                    self._cond.wait_for(lambda: self._stopped or self._held < self.budget_bytes)
                    if self._stopped:
                        return
                    if pos < self._next:  # the steps went past it: the chain of this shard is broken
                        frames[i] = None
                        continue
                result: Parsed | Computed | None = None
                if s == 0:
                    result = self._parse(shard)
                elif frames[i] is not None:
                    result = self._work(self._steps[s - 1], shard, frames[i], fps[i])
                if isinstance(result, Parsed) and self._steps:
                    frames[i] = result.read.kept
                    fps[i] = chain(self._source_code or "", result.content_hash)
                    chain_bytes += int(result.read.kept.estimated_size())
                elif isinstance(result, Computed):
                    frames[i], fps[i] = result.kept, result.fingerprint
                else:
                    frames[i] = None
                if s == len(self._steps):
                    frames[i] = None  # nothing reads it any more
                if chain_bytes > self.budget_bytes:
                    # Every shard's frame waits here between two steps: an input this large is only parsed
                    # ahead (the row steps run their ops themselves), so memory stays within the budget.
                    frames = [None] * n
                    self._chained = False
                with self._cond:
                    if pos < self._next or self._stopped:
                        continue
                    self._done[pos] = result  # None too: a step waiting for it computes it at once
                    self._held += _size(result)
                    self._cond.notify_all()

    def _parse(self, shard: Shard) -> Parsed | None:
        t0 = time.perf_counter()
        try:
            before = shard_content_hash(shard)
            if self._current is not None and self._current(shard, before):
                return None  # the source step reuses its checkpoint
            read = read_shard(shard, self.text_key)
            if shard_content_hash(shard) != before:  # the file changed while it was read
                return None
            return Parsed(read, before, time.perf_counter() - t0)
        except Exception:  # the step parses the shard again and reports the error itself
            return None

    def _work(self, step: AheadStep, shard: Shard, df: pl.DataFrame | None, upstream_fp: str | None) -> Computed | None:
        assert df is not None and upstream_fp is not None
        t0 = time.perf_counter()
        try:
            ops = self._ops.get(step.name) or self._ops.setdefault(step.name, [(s, s.build()) for s in step.specs])
            with StepMonitor(interval=self._interval) as usage:
                kept, dropped, per_op = run_ops(ops, spread(df, self._chunks), shard.key)
        except Exception:  # the step runs the ops itself and reports the error on its shard
            return None
        fp = chain(step.code, upstream_fp)
        return Computed(fp, df.height, kept, dropped, per_op, time.perf_counter() - t0, usage.metadata())

    # --- the steps ----------------------------------------------------------------------------------------------

    def _take(self, pos: int) -> Parsed | Computed | None:
        with self._cond:
            if pos < self._next:
                return None
            # The steps take in position order: the positions before this one not taken, they never will.
            for gone in range(self._next, pos):
                self._held -= _size(self._done.pop(gone, None))
            self._next = pos
            self._cond.notify_all()
            self._cond.wait_for(lambda: pos in self._done or self._stopped or not self._thread.is_alive())
            self._next = pos + 1
            result = self._done.pop(pos, None)
            self._held -= _size(result)
            self._cond.notify_all()
        return result

    def take(self, shard: Shard, content_hash: str) -> Parsed | None:
        """The parse of `shard` (waiting for it if it is under way), or None: not prefetched, failed, or its bytes
        do not hash to `content_hash` (the step then parses the shard itself)."""
        i = self._index.get(shard.key)
        parsed = None if i is None else self._take(i)
        if not isinstance(parsed, Parsed) or parsed.content_hash != content_hash:
            return None
        return parsed

    def take_step(self, step: str, shard: str, fingerprint: str) -> Computed | None:
        """Row step `step`'s result on `shard` (waiting for it if it is under way), or None: not worked ahead,
        failed, or computed from other input than the step's (`fingerprint`: the step then runs its ops)."""
        s, i = self._step_index.get(step), self._index.get(shard)
        computed = None if s is None or i is None else self._take(s * len(self._shards) + i)
        if not isinstance(computed, Computed) or computed.fingerprint != fingerprint:
            return None
        return computed

    def works_ahead(self, step: str) -> bool:
        """Whether row step `step`'s results may still come from here (a step asking for its shards out of
        input order would let go of those it passed)."""
        with self._cond:
            return self._chained and not self._stopped and step in self._step_index

    def serves(
        self, shards: Sequence[Shard], text_key: str, steps: Sequence[AheadStep], source_code: str | None
    ) -> bool:
        """Whether this prefetch, untouched so far, works what a prefetch of these arguments would (its shards
        may be more: the steps let go of those they do not take)."""
        with self._cond:
            if self._stopped or self._next or text_key != self.text_key or source_code != self._source_code:
                return False
        mine = [(st.name, st.code) for st in self._steps]
        if mine != [(st.name, st.code) for st in (steps if source_code is not None else [])]:
            return False
        order = [self._index.get(s.key) for s in shards]
        return None not in order and order == sorted(order)  # type: ignore[type-var]

    def stop(self) -> None:
        """No more work; what is held is dropped."""
        with self._cond:
            self._stopped = True
            self._done.clear()
            self._held = 0
            self._cond.notify_all()


def _size(result: Parsed | Computed | None) -> int:
    if isinstance(result, Parsed):
        return int(result.read.kept.estimated_size()) + int(result.read.quarantined.estimated_size())
    if isinstance(result, Computed):
        return int(result.kept.estimated_size()) + sum(int(d.estimated_size()) for d in result.dropped)
    return 0


_current: Prefetch | None = None
_lock = threading.Lock()


def start(shards: Sequence[Shard], text_key: str, steps: Sequence[AheadStep] = (), **kwargs: Any) -> Prefetch | None:
    """Start working ahead on `shards` for this process's next steps: the prefetch `start_early` began when it
    works the same (`Prefetch.serves`), else a new one replacing it."""
    global _current
    with _lock:
        if _current is not None and _current.serves(shards, text_key, steps, kwargs.get("source_code")):
            return _current
        if _current is not None:
            _current.stop()
        _current = Prefetch(shards, text_key, steps, **kwargs) if shards else None
        return _current


def start_for(
    recipe: Recipe, shards: Sequence[Shard], executor: str, current: Callable[[Shard, str], bool] | None = None
) -> Prefetch | None:
    """`start` for a recipe's stale `shards`, where its first phase runs in this process (the in-process
    executor, no shard workers): the first phase's row steps too where one run holds every shard (its steps take
    in shard order, step by step), each shard cut into the chunks of the CPUs the recipe's `np` grants."""
    settings = engine_settings(recipe)
    if not settings.steps_in_process(executor):
        return None
    per_run = settings.max_partitions_per_run
    return start(
        shards,
        recipe.text_key,
        ahead_steps(recipe) if not per_run or per_run >= len(shards) else (),
        source_code=fingerprints.source_code(recipe),
        chunks=max(1, min(settings.usable(Hardware(cpus=usable_cpus(), memory_gb=0.0)).cpus, recipe.np)),
        monitor_interval_s=settings.monitor_interval_s,
        current=current,
    )


def start_early(recipe_path: str, executor: str = "in_process") -> Prefetch | None:
    """`sluice run RECIPE` before it imports Dagster (pipeline_defs/console.py): the same prefetch `sluice run`
    starts once it has planned (`execute._unchanged`), over every input shard whose source checkpoint is not
    current, so its thread works while the imports (about a second, one core) run. `sluice run` keeps it when
    it asks for the same work, and replaces it otherwise. Never fails: `sluice run` reports what is wrong."""
    try:
        recipe = load_recipe(recipe_path)
        shards = sorted(discover_shards(recipe.dataset_path, recipe.partition), key=lambda s: shard_order(s.key))
        store, code = recipe.storage, fingerprints.source_code(recipe)

        def current(shard: Shard, content_hash: str) -> bool:
            path = checkpoint_path(
                str(recipe.checkpoint_root), store.format, store.compression, [recipe.project_name, "source"], shard.key
            )
            meta = CheckpointMeta.load(path)
            return meta is not None and meta.fingerprint == chain(code, content_hash)

        return start_for(recipe, shards, executor, current)
    except Exception:
        return None


def take(shard: Shard, content_hash: str) -> Parsed | None:
    """The prefetched parse of `shard`, if `sluice run` started one in this process and it matches."""
    current = _current
    return None if current is None else current.take(shard, content_hash)


def take_step(step: str, shard: str, fingerprint: str) -> Computed | None:
    """Row step `step`'s result on `shard`, if `sluice run` worked it ahead in this process and it matches."""
    current = _current
    return None if current is None else current.take_step(step, shard, fingerprint)


def works_ahead(step: str) -> bool:
    """Whether `sluice run` may still hand row step `step` results it worked ahead (`Prefetch.works_ahead`)."""
    current = _current
    return current is not None and current.works_ahead(step)


def stop() -> None:
    global _current
    with _lock:
        if _current is not None:
            _current.stop()
        _current = None
