"""The `sluice` console script (and `python -m pipeline_defs`): `cli.main` in a process tuned to be short-lived.

A `sluice run` imports Dagster, polars and SQLAlchemy, about 250k long-lived objects, and Python's cyclic
collector keeps walking them: on the demo, its full collections and the interpreter's exit (which collects
and tears down every module) took about 0.8 s of a 3.9 s run. So the script:

* collects nothing while it imports the command, then freezes what the imports made (`gc.freeze`: later
  collections skip it);
* freezes again once the Dagster instance is open (`settle`): its storage modules (SQLAlchemy, alembic, Dagster's
  storages and daemon) are imported only by commands that open it, and made the objects the three full
  collections of a `sluice run` of the 10-op bench recipe walked: 0.18 s of its 0.29 s of collections, against
  0.05 s once frozen;
* freezes everything again before it exits, so the exit does not walk the heap once more. Threads, atexit
  handlers (logging's flush among them) and module teardown still run; what the exit skips is the last
  collection, so an object left in a reference cycle is not finalized (Python does not promise that at exit
  anyway, and Sluice closes every file it writes before its command returns).

Python's collection thresholds stay as they are: raising them (to 5k-50k allocations) changed no wall time
beyond the machine's spread and kept cyclic garbage longer (bench5's peak RSS 705 MB -> 880 MB at 20k).

Only this process is tuned: `cli.main` called from another program (the tests, a notebook) leaves the
collector as it found it.
"""

from __future__ import annotations

import gc
import sys
from typing import NoReturn

_tuned = False


def start() -> None:
    """Before the command's imports."""
    global _tuned
    _tuned = True
    gc.disable()


def ready() -> None:
    """After the command's imports: what they made is frozen, and the collector runs again (on the rest)."""
    gc.freeze()
    gc.enable()


def settle() -> None:
    """After a later import of many long-lived objects (the instance's storage): frozen too, in this process only."""
    if _tuned:
        gc.freeze()


def finish(code: int) -> NoReturn:
    """Exit with `code`, the heap frozen first so the interpreter's exit does not walk it."""
    gc.freeze()
    sys.exit(code)


def _prefetch_early(argv: list[str]) -> None:
    """`sluice run RECIPE [--executor E]`: the prefetch starts before the command imports Dagster."""
    if not argv or argv[0] != "run":
        return
    args, executor = [], "in_process"
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--executor":
            executor = next(rest, executor)
        elif arg.startswith("--executor="):
            executor = arg.split("=", 1)[1]
        elif not arg.startswith("-"):
            args.append(arg)
    if len(args) == 1:
        from pipeline_defs import prefetch

        prefetch.start_early(args[0], executor)


def main() -> NoReturn:
    start()
    _prefetch_early(sys.argv[1:])
    from pipeline_defs.cli import main as cli_main

    ready()
    finish(cli_main())
