"""Which runs of a recipe's job are refused before they are created, and the one line that says why.

Dagster's `dagster job execute --tags` checks neither the partition key nor that a partitioned job has one, and
has no hook before `create_run` but the instance's storage: Sluice's run storages (the embedded instance's,
`dagster_storage.PooledSqliteRunStorage`, and the production profile's, `postgres_storage`) call `check_run` in
`add_run`, so such a run is never stored. The first step of a run that got past another storage refuses it with
the same line (`pipeline_defs/graph.py`). No heavy imports here: the graph factory imports the messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

# Run tags of a recipe's partitioned job (set on the job, so every run of it carries them): the name of the
# dynamic partitions definition of its shards, the recipe file, and the job that runs every shard.
SHARDS_TAG = "sluice/shards"
SOURCE_TAG = "sluice/source"
ALL_JOB_TAG = "sluice/all_job"
_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


class RefusedRunError(click.ClickException):
    """A run of a recipe's job that could only fail. A `ClickException`, so Dagster's CLI (`dagster job
    execute`) prints it as one line (`Error: ...`), not a traceback."""


class UnknownShardError(RefusedRunError):
    """A run of a recipe's job names a partition that is not one of its registered shards."""


class NoPartitionError(RefusedRunError):
    """A run of the whole of a recipe's job without a partition (Dagster cannot run its chained partitioned
    assets without one)."""


def shown(keys: Sequence[str], n: int = 5) -> str:
    """The first `n` keys and how many more."""
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def unknown_shard_message(prefix: str, key: str, registered: Sequence[str], source: str | None) -> str:
    """The one line for a partition `key` that is not a shard (`registered`: the shards, in input order)."""
    hint = f"`sluice partitions {source}`" if source else "`sluice partitions RECIPE`"
    return (
        f"partition {key!r} is not a shard of {prefix} ({len(registered)} registered: "
        f"{shown(registered) or 'none'}); {hint} lists and registers them"
    )


def no_partition_message(job_name: str, registered: Sequence[str], all_job: str) -> str:
    """The one line for a run of the whole of a recipe's job without a partition."""
    first = registered[0] if registered else "<shard>"
    return (
        f'{job_name} runs one shard or a range (--tags \'{{"dagster/partition": "{first}"}}\'); '
        f"for every shard run: dagster job execute -m pipeline_defs -j {all_job}"
    )


def check_run(run: Any, registered: Any) -> None:
    """Refuse a run of a recipe's job that could only fail: its `dagster/partition` tag, or either end of its
    range, is not a registered shard (`registered(partitions_def_name)` lists them), or it is the whole job
    (no asset selection) without a partition. Nothing for a run of another job, and the shards are read only
    where a run names some or names none. (The first step of such a run refuses it too, with the same line,
    where the storage is Dagster's stock one.)"""
    tags = run.tags
    name = tags.get(SHARDS_TAG)
    if not name:
        return
    asked = [tags[t] for t in ("dagster/partition", *_RANGE_TAGS) if t in tags]
    if not asked and (run.asset_selection is not None or not tags.get(ALL_JOB_TAG)):
        return  # a global stage's run (it selects its assets) or another job's
    keys = sorted(registered(name), key=lambda k: k.rpartition("@")[::2])  # path order, zero-padded index
    if not asked:
        raise NoPartitionError(no_partition_message(run.job_name, keys, tags[ALL_JOB_TAG]) + ". No run was created.")
    known = set(keys)
    unknown = [k for k in asked if k not in known]
    if unknown:
        message = unknown_shard_message(name.removesuffix("_shards"), unknown[0], keys, tags.get(SOURCE_TAG))
        raise UnknownShardError(message + ". No run was created.")


class CheckedRunStorage:
    """Mixed into a run storage (before it): `add_run` refuses what `check_run` refuses. `registered` is set by
    the instance's storage to its event log storage's `get_dynamic_partitions`."""

    registered: Any = None

    def add_run(self, dagster_run: Any) -> Any:
        if self.registered is not None:
            check_run(dagster_run, self.registered)
        return super().add_run(dagster_run)  # type: ignore[misc]
