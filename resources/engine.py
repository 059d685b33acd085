"""Settings of the local engine: parallelism, timeouts, monitoring, safety factors, batch sizes.

Precedence, highest first: `SLUICE_*` environment variables, the recipe's `engine:` mapping, the defaults
below. The environment wins so that an operator can rein in a recipe on one machine without editing it
(`SLUICE_MAX_PARALLEL_RUNS=1 sluice run recipes/x.yaml`). docs/pools.md has the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from resources.hardware import Hardware


class EngineSettings(BaseSettings):
    """The recipe's `engine:` section, each key overridable by `SLUICE_<KEY>` (e.g. `SLUICE_STEP_TIMEOUT_S`)."""

    model_config = SettingsConfigDict(env_prefix="SLUICE_", extra="forbid", frozen=True)

    executor: Literal["in_process", "multiprocess", "celery"] | None = Field(
        None,
        description="Dagster executor of the recipe's job: `celery` sends each step to Celery workers (broker "
        "`SLUICE_CELERY_BROKER`, default redis://127.0.0.1:6379/0; checkpoints must be on storage every worker "
        "reaches); unset: `sluice run --executor` (in_process) and the code location's default.",
    )
    max_partitions_per_run: int | None = Field(
        None,
        gt=0,
        description="Shards one run materializes (BackfillPolicy.multi_run(N)); unset: all in one run "
        "(BackfillPolicy.single_run()).",
    )
    max_parallel_runs: int | None = Field(
        None, gt=0, description="Runs of one phase in flight at once (with max_partitions_per_run); unset: usable CPUs."
    )
    shard_workers: int = Field(
        1, gt=0, description="Processes one step spreads its shards over (1: the step's own process). CPU ops only."
    )
    step_timeout_s: float | None = Field(None, gt=0, description="Fail a step that runs longer; unset: no limit.")
    monitor_interval_s: float = Field(1.0, gt=0, description="Seconds between resource-usage samples of a step.")
    memory_safety_factor: float = Field(
        0.8, gt=0, le=1, description="Share of a step's memory budget its batches may fill."
    )
    cpu_safety_factor: float = Field(1.0, gt=0, le=1, description="Share of the usable CPUs the planner hands out.")
    adaptive_batch_size: bool = Field(True, description="Shrink batches to fit the memory budget; halve on CUDA OOM.")
    max_batch_size: int | None = Field(None, gt=0, description="Upper bound on every op's batch size; unset: none.")
    min_batch_size: int = Field(1, gt=0, description="Lower bound when batches shrink.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment before the recipe (init kwargs): pydantic-settings' default is the other way round.
        return env_settings, init_settings

    @classmethod
    def from_recipe(cls, engine: Mapping[str, Any] | None = None) -> EngineSettings:
        """Settings from a recipe's `engine:` mapping, `SLUICE_*` variables overriding it."""
        return cls(**dict(engine or {}))

    def steps_in_process(self, executor: str) -> bool:
        """Whether the steps run in the process that starts their runs (the in-process executor, `executor` being
        `sluice run`'s, and no shard workers): where work done beside the runs can hand its results to them."""
        return (self.executor or executor) == "in_process" and self.shard_workers <= 1

    def forks_here(self, executor: str) -> bool:
        """Whether the process that starts the runs forks processes for them from the forkserver: a step each
        (the multiprocess executor), or the shard workers of its in-process steps."""
        chosen = self.executor or executor
        return chosen == "multiprocess" or (chosen == "in_process" and self.shard_workers > 1)

    def usable(self, hardware: Hardware) -> Hardware:
        """The hardware the planner may hand out: `cpu_safety_factor` of the CPUs (at least one)."""
        cpus = max(1, math.floor(hardware.cpus * self.cpu_safety_factor + 1e-9))
        return Hardware(cpus=cpus, memory_gb=hardware.memory_gb, gpus=hardware.gpus)

    @classmethod
    def table(cls) -> str:
        """The settings as a Markdown table (docs/pools.md)."""
        rows = ["| recipe key (`engine:`) | environment | default | meaning |", "|---|---|---|---|"]
        for name, f in cls.model_fields.items():
            default = "unset" if f.default is None else f"`{f.default}`"
            rows.append(f"| `{name}` | `SLUICE_{name.upper()}` | {default} | {f.description} |")
        return "\n".join(rows)
