"""What a step process forked from the forkserver starts with: `--executor multiprocess` runs each step in a
process of its own, and Dagster's default start method (`spawn`) makes each one import Dagster, its storage,
polars, numba and Sluice again (~1 s a step on 2 cores). The multiprocess executor here forks them from a
server that imported this module once per `sluice run` process (and `engine.shard_workers`' processes come
from the same server): Dagster's executor first (as Dagster's own preload list has it), the instance's storage
(SQLAlchemy, alembic), the job a step reconstructs, the step runtime, every op, and numba with the compiled
kernels' modules. The code-point kernels (every text filter's) are loaded from numba's cache here too, with
numba's CPU target and their class tables (`codepoints.warm_kernels`: ~0.4 s each step process paid at its
first op); they are not `parallel`, so loading and calling them starts no thread. Nothing else runs: calling
MinHash's `parallel` kernels or computing anything with polars would start a pool's threads, and a process
forked after that cannot use the pool."""

from __future__ import annotations

import dagster._core.executor.multiprocess  # noqa: F401

import pipeline_defs.loader  # noqa: F401  (and the step runtime, pipeline_defs.graph, with it)
import resources.compute_logs
import resources.dagster_storage  # noqa: F401  (and Dagster's SQLite storage under it)
from ops_library import codepoints, minhash  # noqa: F401
from ops_library.registry import load_all

load_all()
codepoints.warm_kernels()  # False without numba: the op library runs without it (slower), so may a step
