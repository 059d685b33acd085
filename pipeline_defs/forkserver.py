"""What a step process forked from the forkserver starts with: `--executor multiprocess` runs each step in a
process of its own, and Dagster's default start method (`spawn`) makes each one import Dagster, its storage,
polars, numba and Sluice again (~1 s a step on 2 cores). The multiprocess executor here forks them from a
server that imported this module once per `sluice run` process (and `engine.shard_workers`' processes come
from the same server): Dagster's executor first (as Dagster's own preload list has it), the instance's storage
(SQLAlchemy, alembic), the job a step reconstructs, the step runtime, every op, and numba (the kernels of the
dedups' other hash modes and tokenizations). Sluice's C library and the class tables its code-point kernels read
are loaded here too (`codepoints.warm_kernels`; the `alnum` table alone takes ~0.1 s); loading them starts no
thread. So are Dagster's migration
scripts (`dagster_storage.warm_migrations`) and the jobs `sluice run` is about to run (`_build_jobs`), which
each step process parsed and built again. Nothing else runs: calling MinHash's `parallel` kernels or computing
anything with polars would start a pool's threads, and a process forked after that cannot use the pool."""

from __future__ import annotations

import contextlib
import json
import os

import dagster._core.executor.multiprocess  # noqa: F401
import pyarrow.compute  # noqa: F401  (polars' `from_arrow` and the kernels' text buffers import it)
from upath import UPath  # noqa: F401  (the instance's state storage imports it lazily)

import pipeline_defs.loader
import resources.compute_logs
import resources.dagster_storage
from ops_library import codepoints, minhash  # noqa: F401
from ops_library.registry import load_all
from pipeline_defs.graph import FORKSERVER_JOBS

with contextlib.suppress(ImportError):  # numba: without it the op library runs its numpy forms
    import ops_library.numba_loader  # noqa: F401
with contextlib.suppress(ImportError):  # the hardware probe of each step's plan; without it, no NVIDIA GPUs
    import pynvml  # noqa: F401

load_all()
codepoints.warm_kernels()  # False without the C library: the op library runs without it (slower), so may a step
resources.dagster_storage.warm_migrations()


def _build_jobs() -> None:
    """The jobs `graph.start_forkserver` named, built once here: a step process finds its job's definitions in
    `loader`'s cache instead of building them (~0.1 s). Building one computes nothing (no polars, no input read);
    a job that fails to build here is built, and its error reported, by the step."""
    for path, executor, home in json.loads(os.environ.pop(FORKSERVER_JOBS, None) or "[]"):
        with contextlib.suppress(Exception):
            pipeline_defs.loader.job_for_recipe(path, executor, home)


_build_jobs()
