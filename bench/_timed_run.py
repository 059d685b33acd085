"""`sluice run RECIPE` in this process with timers around the pieces of its wall (bench/overhead_breakdown.py runs it).

    python bench/_timed_run.py OUT.json RECIPE

Each timer adds up the wall seconds its function spends on the main thread (calls made on other threads, such as
the background checkpoint writers, are added up apart, under `background`). Nested timers are not subtracted from
each other here; overhead_breakdown.py does that. Written to OUT.json: the timers, the seconds before this script
started (the interpreter's own start), the import of the `sluice` command (with the prefetch the script starts
before it, `console._prefetch_early`), and the whole script. The prefetch thread's ops are not timed (they are
bound before the timers are set), so "ops" counts the ops left on the main thread.

Beside the timers, `ThreadCpu` samples every thread's CPU seconds (user + system, from /proc) every 50 ms and
groups them by what the thread is (`thread_group`); written under `cpu`, with the whole process's from
`os.times()` (a thread that ended between two samples shows only in the difference, `unsampled`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _thread_groups import thread_group

STARTED = time.time()
# The interpreter's own start: since bench/harness.py's `measure` launched this process (it passes the second
# in harness.LAUNCHED_ENV; harness is not imported here: its imports would add to the untimed seconds).
BEFORE_SCRIPT = STARTED - float(os.environ["SLUICE_BENCH_LAUNCHED"])

CPU_SAMPLE_SECONDS = 0.05


class ThreadCpu:
    """CPU seconds per thread of this process, sampled from /proc/self/task until `stop`."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.last: dict[int, tuple[str, float]] = {}  # tid -> (group, CPU seconds at its last sample)
        self.names: dict[int, str] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="bench-thread-cpu")

    def _sample(self) -> None:
        for t in threading.enumerate():
            if t.native_id is not None:
                self.names[t.native_id] = t.name
        for task in Path("/proc/self/task").iterdir():
            tid = int(task.name)
            if tid == self.thread.native_id:
                continue
            try:
                comm = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            seconds = (int(fields[11]) + int(fields[12])) / self.tick
            self.last[tid] = (thread_group(self.names.get(tid, comm)), seconds)

    def _loop(self) -> None:
        while not self.done.is_set():
            self._sample()
            self.done.wait(CPU_SAMPLE_SECONDS)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> dict[str, float]:
        self.done.set()
        self.thread.join()
        self._sample()
        groups: dict[str, float] = defaultdict(float)
        for group, seconds in self.last.values():
            groups[group] += seconds
        times = os.times()
        process = times.user + times.system
        groups["unsampled"] = process - sum(groups.values())
        return {"process": round(process, 3), **{k: round(v, 3) for k, v in groups.items()}}


main_seconds: dict[str, float] = defaultdict(float)
background_seconds: dict[str, float] = defaultdict(float)
calls: Counter[str] = Counter()
in_body = [0]  # step bodies open on the main thread


@contextlib.contextmanager
def span(label: str) -> Iterator[None]:
    """Adds the block's wall seconds to `label` (main thread) or to `background` (any other thread); time spent
    outside every step body is also added to `outside:<label>`, to check that the pieces nest as assumed."""
    on_main = threading.current_thread() is threading.main_thread()
    outside = on_main and in_body[0] == 0 and label != "step_bodies"
    in_body[0] += on_main and label == "step_bodies"
    t0 = time.perf_counter()
    try:
        yield
    finally:
        took = time.perf_counter() - t0
        (main_seconds if on_main else background_seconds)[label] += took
        if outside:
            main_seconds["outside:" + label] += took
        in_body[0] -= on_main and label == "step_bodies"
        calls[label] += 1


def timed(owner: Any, attr: str, label: str) -> None:
    fn = getattr(owner, attr)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with span(label):
            return fn(*args, **kwargs)

    setattr(owner, attr, wrapper)


def timed_body(body: Callable[..., Any]) -> Callable[..., Any]:
    """A step body, timed while it runs and, for a body that yields, while it is iterated."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with span("step_bodies"):
            result = body(*args, **kwargs)
        if not inspect.isgenerator(result):
            return result
        return _timed_iteration(result)

    return wrapper


def _timed_iteration(gen: Iterator[Any]) -> Iterator[Any]:
    while True:
        with span("step_bodies"):
            try:
                item = next(gen)
            except StopIteration:
                return
        yield item


def instrument() -> None:
    from ops_library.base import Deduplicator
    from ops_library.registry import load_all
    from pipeline_defs import execute, export, graph
    from resources import monitor, storage

    timed(execute, "run_recipe", "run_recipe")
    timed(execute, "instance_ready", "instance")
    timed(execute, "execute_run", "dagster_runs")
    # A Sluice step body: each asset's function, wrapped as the graph is built (all of them go through
    # `classified`); a body that yields is timed while it is iterated too.
    classified = graph.classified
    graph.classified = lambda fn: timed_body(classified(fn))
    timed(graph, "run_ops", "ops")
    timed(graph, "read_shard", "source_parse")
    timed(export, "export_recipe", "export_write")
    timed(export, "record_export", "export_record")
    timed(storage.CheckpointStore, "write_step", "checkpoint_write")
    timed(storage._Background, "drain", "checkpoint_wait")
    timed(monitor.StepMonitor, "__enter__", "monitor")
    timed(monitor.StepMonitor, "__exit__", "monitor")
    timed(graph._Factory, "_record", "recording")
    # A deduplicator's hashes and index steps call these outside run_ops; its apply step runs inside it. Every
    # registered subclass that overrides them gets its own timer, so nothing is counted twice.
    load_all()
    wrapped: set[tuple[type, str]] = set()
    for cls in [Deduplicator, *_subclasses(Deduplicator)]:
        for name in ("hashes", "index"):
            if name in vars(cls) and (cls, name) not in wrapped:
                timed(cls, name, "ops")
                wrapped.add((cls, name))


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def main() -> int:
    out, recipe = Path(sys.argv[1]), sys.argv[2]
    cpu = ThreadCpu()
    cpu.start()
    t0 = time.perf_counter()
    from pipeline_defs import console  # as the `sluice` script: collector tuned around the imports and the exit

    console.start()
    console._prefetch_early(["run", recipe])  # as the script does for `sluice run RECIPE`, before the imports
    import pipeline_defs.cli  # noqa: F401  (the command's imports, timed)

    console.ready()
    imports = time.perf_counter() - t0
    instrument()
    from pipeline_defs import cli

    rc = cli.main(["run", recipe])
    threads_cpu = cpu.stop()
    out.write_text(
        json.dumps(
            {
                "rc": rc,
                "before_script_s": round(BEFORE_SCRIPT, 4),
                "imports_s": round(imports, 4),
                "script_s": round(time.time() - STARTED, 4),
                "main": {k: round(v, 4) for k, v in main_seconds.items()},
                "background": {k: round(v, 4) for k, v in background_seconds.items()},
                "calls": dict(calls),
                "cpu": threads_cpu,
            },
            indent=1,
        )
    )
    return rc


if __name__ == "__main__":
    from pipeline_defs import console

    console.finish(main())
