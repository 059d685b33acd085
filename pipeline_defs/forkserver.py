"""What a step process forked from the forkserver starts with: `--executor multiprocess` runs each step in a
process of its own, and Dagster's default start method (`spawn`) makes each one import Dagster, its storage,
polars, numba and Sluice again (~1 s a step on 2 cores). The multiprocess executor here forks them from a
server that imported this module once per `sluice run` process (and `engine.shard_workers`' processes come
from the same server): Dagster's executor first (as Dagster's own preload list has it), the instance's storage
(SQLAlchemy, alembic), the job a step process reconstructs, the step runtime, every op, and numba with the
compiled kernels' modules. Importing them starts no thread that matters; calling a kernel or computing anything
with polars would (a process forked after a pool's threads started cannot use that pool), so nothing here runs."""

from __future__ import annotations

import contextlib

import dagster._core.executor.multiprocess  # noqa: F401

import pipeline_defs.loader  # noqa: F401  (and the step runtime, pipeline_defs.graph, with it)
import resources.compute_logs
import resources.dagster_storage  # noqa: F401  (and Dagster's SQLite storage under it)
from ops_library import minhash  # noqa: F401
from ops_library.registry import load_all

load_all()
with contextlib.suppress(ImportError):  # the op library runs without numba (slower), so may a step
    from ops_library import codepoint_kernels  # noqa: F401
