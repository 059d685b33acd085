"""Data-Juicer recipes (YAML) parsed into typed models.

The Data-Juicer keys keep their names and meaning (`project_name`, `dataset_path`, `export_path`,
`export_type`, `text_keys`, `np`, `auto_op_parallelism`, `keep_stats_in_res_ds`, `executor_type: default`,
`custom_operator_paths`, `checkpoint_dir`, `event_log_dir`, `partition.size`, `checkpoint`,
`process: [{op_name: {params}}]`). Every other top-level key of Data-Juicer 1.6.1's `config_all.yaml` is
accepted and listed in `Recipe.ignored_keys` with the reason it has no effect here (`sluice validate` prints
them). Sluice's own settings live in named sections (`partition`, `checkpoint`, `storage`, `retry`, `engine`,
`dataset_builder`). Unknown keys are errors with a did-you-mean, never silently ignored.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ops_library.base import Op, OpParams
from ops_library.registry import CLOSE_CUTOFF, UnknownOpError, get_op

# Per-op keys Data-Juicer accepts on every op, beside the op's own params.
COMMON_OP_KEYS = {
    "text_key",
    "num_proc",
    "batch_size",
    "num_cpus",
    "num_gpus",
    "memory",
    "accelerator",
    "auto_op_parallelism",
}


class RecipeError(ValueError):
    """A recipe that cannot run. The message names the file, the key (and op) and a suggestion."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid recipe\n" + "\n".join(f"  - {p}" for p in problems))


def _did_you_mean(word: str, choices: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=2, cutoff=CLOSE_CUTOFF)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


# --- Data-Juicer's global keys that have no effect in Sluice -----------------------------------------------------

_RAY = "a setting of Data-Juicer's Ray executors; Sluice runs every recipe on Dagster on this machine"
_TRACER = "Sluice writes every dropped row with its op and reason to <export>.dropped.jsonl instead of a sampled trace"
_TEXT_ONLY = "Sluice processes text only"
_ANALYSIS = "a setting of Data-Juicer's analyzer; Sluice shows stat histograms as step metadata in the Dagster UI"
_FUSION = "Sluice groups ops into steps by checkpoint.strategy and never reorders them"
_HF_CACHE = "Hugging Face datasets cache; Sluice checkpoints every step instead (storage:, checkpoint:)"

IGNORED_KEYS: dict[str, str] = {
    "dataset": "dataset mixtures are not read; Sluice reads dataset_path",
    "validators": "Sluice checks every row as it reads it and quarantines rows without a string text field",
    "export_shard_size": "Sluice writes one export file",
    "export_in_parallel": "the export is written by one Dagster step",
    "keep_hashes_in_res_ds": "dedup hashes stay in the dedup step's checkpoint, never in the export",
    "export_extra_args": "the export format follows export_path's suffix (.jsonl or .parquet) with fixed options",
    "load_dataset_kwargs": "Sluice's reader takes no options",
    "load_jsonl_lenient": "Sluice always reads JSONL leniently: malformed lines are quarantined with the reason",
    "elastic_juicer_adaptive_batching": _RAY,
    "elastic_juicer_profile_seed": _RAY,
    "suffixes": "Sluice reads the .jsonl, .json, .jsonl.gz, .json.gz and .parquet files of dataset_path",
    "turbo": "a single-sample speed mode of Data-Juicer; Sluice's ops work on whole shards",
    "skip_op_error": "Sluice never skips rows an op fails on: the step fails, and is retried when the error is "
    "transient; malformed input rows are quarantined on read",
    "use_cache": _HF_CACHE,
    "ds_cache_dir": _HF_CACHE,
    "cache_compress": _HF_CACHE,
    "open_monitor": "Sluice always monitors steps (resource usage is metadata of every op step)",
    "use_checkpoint": "Sluice always checkpoints (checkpoint.strategy)",
    "temp_dir": "Sluice writes temporary files beside their destination",
    "open_tracer": _TRACER,
    "op_list_to_trace": _TRACER,
    "trace_num": _TRACER,
    "trace_keys": _TRACER,
    "op_fusion": _FUSION,
    "fusion_strategy": _FUSION,
    "mapper_fusion": _FUSION,
    "mapper_fusion_vram_limit": _FUSION,
    "adaptive_batch_size": "batch sizes come from each op's batch_size and the GPU pool",
    "encryption_key_path": "Sluice does not encrypt or decrypt datasets",
    "decrypt_after_reading": "Sluice does not decrypt input (true is refused)",
    "encrypt_before_export": "Sluice does not encrypt the export (true is refused)",
    "image_key": _TEXT_ONLY,
    "image_bytes_key": _TEXT_ONLY,
    "image_special_token": _TEXT_ONLY,
    "audio_key": _TEXT_ONLY,
    "audio_special_token": _TEXT_ONLY,
    "video_key": _TEXT_ONLY,
    "video_special_token": _TEXT_ONLY,
    "eoc_special_token": "used by Data-Juicer's multimodal chunks; " + _TEXT_ONLY.lower(),
    "use_dag": _RAY,
    "read_options": _RAY,
    "ray_address": _RAY,
    "override_num_blocks": _RAY,
    "partition_dir": _RAY,
    "min_common_dep_num_to_combine": _RAY,
    "conflict_resolve_strategy": _RAY,
    "percentiles": _ANALYSIS,
    "export_original_dataset": _ANALYSIS,
    "save_stats_in_one_file": _ANALYSIS,
    "auto_num": _ANALYSIS,
    "data_probe_algo": "a setting of Data-Juicer's sandbox",
    "data_probe_ratio": "a setting of Data-Juicer's sandbox",
    "hpo_config": "Data-Juicer's hyper-parameter search is not part of Sluice",
    "open_insight_mining": "Data-Juicer's insight mining is not part of Sluice",
    "op_list_to_mine": "Data-Juicer's insight mining is not part of Sluice",
    "work_dir": "Sluice keeps its state under $SLUICE_HOME (storage.checkpoint_dir, storage.event_log_dir)",
    "job_id": "Sluice names each job itself (sluice run prints it)",
    "resume": "resume a job with `sluice resume JOB`",
    "strict_preflight": "Sluice always validates the whole recipe before a run",
    "event_logging": "Sluice always writes a job event log (storage.event_log_dir)",
    "generated_dataset_config": "Sluice reads the files of dataset_path; generated datasets are not supported",
    "export_aws_credentials": "Sluice exports to a local path only",
    "debug": "Sluice's log level is Dagster's (python_logs in dagster.yaml)",
}
"""Every top-level key of Data-Juicer 1.6.1's `config_all.yaml` that has no effect here, with why."""

# partition: keys of Data-Juicer's ray_partitioned executor; Sluice's own is `size` (rows per shard).
IGNORED_PARTITION_KEYS = (
    "mode",
    "num_of_partitions",
    "partitions_per_node",
    "max_concurrent_partitions",
    "max_gpu_workers_per_device",
    "max_concurrent_gpu_probes",
    "gpu_preflight_enabled",
    "gpu_probe_timeout_seconds",
    "gpu_probe_warmup_batches",
    "gpu_probe_steady_batches",
    "gpu_probe_sample_offset",
    "gpu_probe_sample_shuffle",
    "gpu_probe_sample_seed",
    "execution_group_size",
    "max_initialization_overhead_ratio",
    "target_size_mb",
)
_EXPORT_TYPES = {"jsonl": "jsonl", "json": "jsonl", "parquet": "parquet"}
_RAY_EXECUTORS = ("ray", "ray_partitioned")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_SHARD_BYTES = 64 * 10**6
_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_byte_size(value: object) -> object:
    """`64MB`, `1.5 GB`, `512KiB`, `1000` -> bytes (KB/MB/GB are powers of 10, KiB/MiB/GiB of 2); others as given."""
    if not isinstance(value, str):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _BYTE_UNITS:
        raise ValueError(f"{value!r} is not a byte size (e.g. 64MB, 512KiB, 1GB)")
    return int(float(match.group(1)) * _BYTE_UNITS[unit])


class PartitionSpec(_Section):
    """How input is split into Dagster partitions. A shard is part of one input file: the JSONL lines that
    start in a `bytes`-long byte range (default 64MB; a .jsonl.gz file is one shard, since it cannot be
    seeked; Parquet: consecutive row groups of about `bytes`), or `size` rows. Give one of the two. By bytes,
    consecutive JSONL files smaller than `bytes` (a .jsonl.gz file: decompressed), or consecutive Parquet files of
    one schema smaller than it, are packed into one shard of at most `bytes` (`pack`)."""

    bytes: int | None = Field(None, gt=0, description="Input bytes per shard: an int or a string like 64MB, 1GiB.")
    size: int | None = Field(None, gt=0, description="Rows per shard instead of bytes (also splits .jsonl.gz).")
    pack: bool = Field(
        True,
        description="By bytes: consecutive JSONL files (plain or .gz), or Parquet files of one schema, smaller than "
        "`bytes` share a shard of at most `bytes` (false: one shard per file at least).",
    )

    @field_validator("bytes", mode="before")
    @classmethod
    def _parse_bytes(cls, value: object) -> object:
        return parse_byte_size(value)

    @model_validator(mode="after")
    def _one_of(self) -> PartitionSpec:
        if self.bytes is not None and self.size is not None:
            raise ValueError("give partition.bytes or partition.size, not both")
        return self

    @property
    def shard_bytes(self) -> int | None:
        """Bytes per shard, or None when shards are counted in rows."""
        return None if self.size is not None else (self.bytes or DEFAULT_SHARD_BYTES)


CheckpointStrategy = Literal["every_op", "every_n_ops", "manual", "every_partition", "disabled"]


class CheckpointSpec(_Section):
    """Which ops end a step, i.e. whose output is persisted (Data-Juicer's checkpoint strategies).

    `every_op` (default): each op its own asset. `every_n_ops`: a step ends after every n-th op of the recipe.
    `manual`: after the ops named in `op_names`. `every_partition`: the whole chain of a shard in one step.
    `disabled`: as `every_partition`, and the intermediate checkpoints are deleted when the job ends (nothing
    to resume from). A global op (dedup) always splits the chain: it must see every shard first.
    """

    strategy: CheckpointStrategy = "every_op"
    n_ops: int | None = Field(None, gt=0, description="every_n_ops: ops per step.")
    op_names: list[str] = Field(default_factory=list, description="manual: ops after which to checkpoint.")

    @model_validator(mode="after")
    def _needs(self) -> CheckpointSpec:
        if self.strategy == "every_n_ops" and self.n_ops is None:
            raise ValueError("strategy every_n_ops needs n_ops")
        if self.strategy == "manual" and not self.op_names:
            raise ValueError("strategy manual needs op_names")
        return self


class RetrySpec(_Section):
    """Retries of transient failures (I/O, memory, timeouts), mapped onto a Dagster RetryPolicy. Data and
    config errors are never retried."""

    max_retries: int = Field(2, ge=0)
    delay: float = Field(1.0, ge=0, description="Seconds before the first retry.")
    backoff: Literal["exponential", "linear", "fixed"] = "exponential"
    jitter: Literal["none", "full", "plus_minus"] = "none"


_COMPRESSIONS = {
    "parquet": {"zstd", "snappy", "gzip", "none"},
    "arrow": {"zstd", "none"},
    "jsonl": {"gzip", "none"},
}


class StorageSpec(_Section):
    """Where and how intermediate checkpoints and job logs are kept (seed 004's storage keys)."""

    format: Literal["parquet", "arrow", "jsonl"] = "parquet"
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    checkpoint_dir: str | None = Field(None, description="Default: $SLUICE_HOME/checkpoints.")
    event_log_dir: str | None = Field(None, description="Job directories with event logs; default $SLUICE_HOME/jobs.")
    retention: Literal["keep_all", "keep_failed_only", "cleanup_all"] = "keep_all"
    max_retention_days: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _compression_fits_format(self) -> StorageSpec:
        if self.compression not in _COMPRESSIONS[self.format]:
            raise ValueError(
                f"compression {self.compression!r} does not apply to format {self.format!r} "
                f"(use one of {', '.join(sorted(_COMPRESSIONS[self.format]))})"
            )
        return self


class ScheduleSpec(_Section):
    """A Dagster schedule for the recipe: each tick registers new shards and launches one run of the recipe's job
    over the shards that are missing or failed (then the global stages); nothing when all are current."""

    cron: str = Field(description="Cron expression, e.g. '0 2 * * *'.")
    timezone: str = Field("UTC", description="IANA time zone the cron expression is read in.")
    enabled: bool = Field(False, description="Start the schedule running (default: stopped until turned on).")

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(v):
            raise ValueError(f"{v!r} is not a valid cron expression")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a known time zone") from None
        return v


class SensorSpec(_Section):
    """The recipe's shard sensor: registers new input shards as partitions, and optionally runs them."""

    enabled: bool = Field(True, description="Sensor running by default (it only registers shards unless told).")
    request_runs: bool = Field(False, description="Also request a run of the recipe's job for each new shard.")
    minimum_interval_s: int = Field(60, gt=0, description="Seconds between sensor evaluations.")


class DatasetBuilderSpec(_Section):
    """Builds `dataset_path` on first use when it does not exist (the bundled demo corpus)."""

    name: Literal["demo_corpus"] = "demo_corpus"
    path: str | None = Field(None, description="Directory to build into (default: dataset_path).")
    min_docs: int = Field(10_000, gt=0)
    max_docs: int = Field(30_000, gt=0)


class OpResourcesSpec(_Section):
    """Data-Juicer's per-op resource keys (read by the pools; recorded as op metadata)."""

    num_proc: int | None = None
    batch_size: int | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: float | str | None = None
    accelerator: Literal["cpu", "cuda"] | None = None
    auto_op_parallelism: bool | None = None


class OpSpec(BaseModel):
    """One entry of `process`: the op class, its validated params and its common keys."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    index: int
    name: str
    params: OpParams
    text_key: str
    resources: OpResourcesSpec = OpResourcesSpec()
    retry: RetrySpec | None = None

    @property
    def op_class(self) -> type[Op]:
        return get_op(self.name)

    @property
    def step_name(self) -> str:
        """Asset name: position first, so the graph reads in recipe order and an op may appear twice."""
        return f"op{self.index:02d}_{self.name}"

    def build(self) -> Op:
        return self.op_class(self.params, text_key=self.text_key)

    def as_dict(self) -> dict[str, Any]:
        return {self.name: self.params.model_dump(mode="json")}


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    source: str = Field(description="The file the recipe came from.")
    project_name: str
    dataset_path: str
    export_path: str
    text_keys: list[str] = ["text"]
    np: int = Field(4, gt=0, description="Data-Juicer's process count; the default executor parallelism.")
    auto_op_parallelism: bool = Field(
        True, description="Data-Juicer's default for ops without their own key: false runs each op at np workers."
    )
    keep_stats_in_res_ds: bool = False
    executor_type: Literal["default"] = "default"
    partition: PartitionSpec = PartitionSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    retry: RetrySpec = RetrySpec()
    storage: StorageSpec = StorageSpec()
    engine: dict[str, Any] = Field(
        default_factory=dict, description="Local engine settings (resources/engine.py); SLUICE_* env vars override."
    )
    custom_operator_paths: list[str] = Field(
        default_factory=list, description="Python modules or .py files that register extra ops (Data-Juicer key)."
    )
    dataset_builder: DatasetBuilderSpec | None = None
    schedule: ScheduleSpec | None = None
    sensor: SensorSpec = SensorSpec()
    process: list[OpSpec]
    ignored_keys: dict[str, str] = Field(
        default_factory=dict, description="Data-Juicer keys of the recipe that have no effect in Sluice, with why."
    )

    @field_validator("project_name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError(f"{v!r} must be letters, digits and _ (it names Dagster assets and jobs)")
        return v

    @property
    def text_key(self) -> str:
        return self.text_keys[0]

    @property
    def job_name(self) -> str:
        return f"{self.project_name}_job"

    @property
    def all_job_name(self) -> str:
        return f"{self.project_name}_all_job"

    @property
    def checkpoint_root(self) -> Path:
        """Checkpoints of this recipe: `<checkpoint_dir>/<project_name>/<asset>/<shard>.<format>`."""
        from resources.settings import sluice_home

        return Path(self.storage.checkpoint_dir or sluice_home().checkpoints)

    @property
    def jobs_root(self) -> Path:
        from resources.settings import sluice_home

        return Path(self.storage.event_log_dir or sluice_home().root / "jobs")

    @property
    def fingerprint(self) -> str:
        """Hash of what determines the output: ops and params in order, text key, partitioning."""
        payload = {
            "process": [op.as_dict() for op in self.process],
            "text_key": self.text_key,
            "partition": self.partition.model_dump(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


_TOP_LEVEL = set(Recipe.model_fields) - {"source", "ignored_keys"}
_HONOURED_DJ_KEYS = {"export_type", "checkpoint_dir", "event_log_dir"}  # mapped onto Sluice's keys below
_ENV = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand_env(value: str) -> str:
    """`${VAR}` and `${VAR:-default}`; `${SLUICE_HOME}` defaults to the resolved Sluice home."""

    def sub(m: re.Match[str]) -> str:
        name, default = m["name"], m["default"]
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        if name == "SLUICE_HOME":
            from resources.settings import sluice_home

            return str(sluice_home().root)
        raise KeyError(name)

    return _ENV.sub(sub, value)


def _parse_process(
    raw: Any, default_text_key: str, problems: list[str], auto_op_parallelism: bool | None = None
) -> list[OpSpec]:
    if not isinstance(raw, list) or not raw:
        problems.append("process: must be a non-empty list of {op_name: {params}} entries")
        return []
    specs: list[OpSpec] = []
    for i, entry in enumerate(raw):
        where = f"process[{i}]"
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, dict) or len(entry) != 1:
            problems.append(f"{where}: expected one mapping {{op_name: {{params}}}}, got {entry!r}")
            continue
        ((name, params),) = entry.items()
        where = f"{where}.{name}"
        try:
            op_class = get_op(name)
        except UnknownOpError as exc:
            problems.append(f"process[{i}]: {exc}")
            continue
        params = dict(params or {})
        if not isinstance(params, dict):
            problems.append(f"{where}: params must be a mapping, got {type(params).__name__}")
            continue
        common = {k: params.pop(k) for k in list(params) if k in COMMON_OP_KEYS}
        text_key = common.pop("text_key", default_text_key)
        if auto_op_parallelism is not None:
            common.setdefault("auto_op_parallelism", auto_op_parallelism)
        retry = params.pop("retry", None)
        allowed = set(op_class.Params.model_fields)
        for key in sorted(set(params) - allowed):
            problems.append(
                f"{where}: unknown param {key!r}{_did_you_mean(key, allowed | COMMON_OP_KEYS)} "
                f"(params of {name}: {', '.join(sorted(allowed)) or 'none'})"
            )
        params = {k: v for k, v in params.items() if k in allowed}
        try:
            op_params = op_class.Params.model_validate(params)
            resources = OpResourcesSpec.model_validate(common)
            retry_spec = None if retry is None else RetrySpec.model_validate(retry)
        except ValidationError as exc:
            problems.extend(f"{where}.{_loc(err)}: {err['msg']}" for err in exc.errors())
            continue
        why = op_class.unavailable(op_params)
        if why:
            problems.append(f"{where}: {why}")
        specs.append(
            OpSpec(index=i, name=name, params=op_params, text_key=text_key, resources=resources, retry=retry_spec)
        )
    return specs


def _custom_operator_targets(paths: list[str], source: str, problems: list[str]) -> list[tuple[str, Path | None]]:
    """(entry, resolved path or None for a dotted module name) of every entry, or [] with a problem per entry
    that names nothing: nothing is imported unless every entry exists."""
    targets: list[tuple[str, Path | None]] = []
    missing = False
    for entry in paths:
        if not isinstance(entry, str) or not entry:
            problems.append(f"custom_operator_paths: {entry!r} is not a path or a module name")
            missing = True
            continue
        looks_like_path = entry.endswith(".py") or "/" in entry or os.sep in entry or entry.startswith(".")
        path = Path(entry) if Path(entry).is_absolute() else Path(source).parent / entry
        if (path.is_file() and path.suffix == ".py") or (path.is_dir() and (path / "__init__.py").is_file()):
            targets.append((entry, path.resolve()))
        elif path.is_dir():
            problems.append(f"custom_operator_paths: {entry!r} ({path}) is a directory without __init__.py")
            missing = True
        elif looks_like_path:
            problems.append(f"custom_operator_paths: {entry!r} does not exist (looked for {path})")
            missing = True
        elif importlib.util.find_spec(entry.split(".")[0]) is None:
            problems.append(f"custom_operator_paths: {entry!r} is neither a file nor an importable module")
            missing = True
        else:
            targets.append((entry, None))
    return [] if missing else targets


def _load_custom_operators(paths: list[str], source: str, problems: list[str]) -> None:
    """Import modules (dotted names), .py files or package directories (relative to the recipe) whose @register
    calls add ops. This runs their code when the recipe is parsed (also by `sluice validate`): they are trusted
    code. Every entry is checked first, and nothing is imported unless all exist; each import is printed to
    stderr."""
    for entry, path in _custom_operator_targets(paths, source, problems):
        try:
            if path is None:
                if entry in sys.modules:
                    continue
                importlib.import_module(entry)
                where = getattr(sys.modules[entry], "__file__", None) or entry
            elif path.is_dir():
                name = path.name
                loaded = sys.modules.get(name)
                if loaded is not None:
                    if str(path) not in [str(Path(p).resolve()) for p in getattr(loaded, "__path__", [])]:
                        problems.append(
                            f"custom_operator_paths: {entry!r}: a module named {name!r} is already loaded from "
                            f"{getattr(loaded, '__file__', None) or loaded!r}; rename the package"
                        )
                    continue
                sys.path.insert(0, str(path.parent))
                try:
                    importlib.import_module(name)
                finally:
                    sys.path.remove(str(path.parent))
                where = str(path)
            else:
                name = f"sluice_custom_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
                if name in sys.modules:
                    continue
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot import {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[spec.name]
                    raise
                where = str(path)
            print(f"{source}: custom_operator_paths: imported {entry!r} ({where})", file=sys.stderr)
        except Exception as exc:
            problems.append(f"custom_operator_paths: cannot load {entry!r}: {exc}")


def _data_juicer_globals(data: dict[str, Any], problems: list[str]) -> dict[str, str]:
    """Apply Data-Juicer's global keys to `data` in place: map the ones Sluice honours onto its own keys, pop
    the ones without effect here and return them with their reasons (refusing the few whose effect matters)."""
    values = {key: data.pop(key) for key in sorted(set(data) & set(IGNORED_KEYS))}
    ignored = {key: IGNORED_KEYS[key] for key in values}
    if "dataset" in values and "dataset_path" not in data:
        problems.append("dataset: Sluice does not read dataset configs or mixtures; set dataset_path to the input")
    for key in ("encrypt_before_export", "decrypt_after_reading"):
        if values.get(key):
            problems.append(f"{key}: Sluice does not encrypt or decrypt datasets; remove the key or set it to false")
    executor = data.get("executor_type")
    if executor in _RAY_EXECUTORS:
        ignored["executor_type"] = f"{executor!r}: {_RAY}"
        data["executor_type"] = "default"
    export_type = data.pop("export_type", None)
    if export_type is not None:
        export_path = str(data.get("export_path", ""))
        implied = "parquet" if export_path.endswith(".parquet") else "jsonl"
        if export_type not in _EXPORT_TYPES:
            problems.append(f"export_type: {export_type!r} is not an export Sluice writes (jsonl, json or parquet)")
        elif _EXPORT_TYPES[export_type] != implied:
            problems.append(
                f"export_type: {export_type!r} disagrees with export_path {export_path!r}, which Sluice writes as "
                f"{implied} (it follows the suffix); make them agree"
            )
    storage = data.get("storage")
    for key in ("checkpoint_dir", "event_log_dir"):
        value = data.pop(key, None)
        if value is None:
            continue
        if storage is None:
            storage = data["storage"] = {}
        if not isinstance(storage, dict):
            continue
        if storage.get(key) not in (None, value):
            problems.append(f"{key}: {value!r} disagrees with storage.{key} {storage[key]!r}; keep one")
        storage[key] = value
    partition = data.get("partition")
    if isinstance(partition, dict):
        if "size" in partition and partition["size"] is None:
            del partition["size"]  # Data-Juicer's "no target": Sluice's default
        for key in IGNORED_PARTITION_KEYS:
            if key in partition:
                partition.pop(key)
                ignored[f"partition.{key}"] = (
                    "a setting of Data-Juicer's ray_partitioned executor; Sluice's shards are partition.size rows"
                )
    checkpoint = data.get("checkpoint")
    if isinstance(checkpoint, dict) and "enabled" in checkpoint:
        enabled = checkpoint.pop("enabled")
        if not isinstance(enabled, bool):
            problems.append(f"checkpoint.enabled: must be true or false, got {enabled!r}")
        elif not enabled:
            checkpoint["strategy"] = "disabled"  # Data-Juicer: no checkpoints; Sluice: none kept after the job
    return ignored


def _export_inside_input(dataset_path: str, export_path: str) -> str | None:
    """An export (or its side files) that the next run would read back as input."""
    import fnmatch
    import glob as globmod

    export = Path(export_path).expanduser().absolute()
    if globmod.has_magic(dataset_path):
        pattern = str(Path(dataset_path).expanduser().absolute())
        candidates = [export, export.with_name(export.name.split(".")[0] + ".dropped.jsonl")]
        hit = any(fnmatch.fnmatch(str(c), pattern) for c in candidates)
    else:
        root = Path(dataset_path).expanduser().absolute()
        hit = export == root or root in export.parents
    if not hit:
        return None
    return (
        f"export_path: {export_path!r} is inside dataset_path {dataset_path!r}: the next run would read the export "
        "back as input; write it outside the input"
    )


def _loc(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "value"


def parse_recipe(data: Any, source: str = "<recipe>") -> Recipe:
    """Validate a recipe mapping; raise RecipeError listing every problem found."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise RecipeError(source, [f"the recipe must be a YAML mapping, got {type(data).__name__}"])
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    ignored = _data_juicer_globals(data, problems)
    for key in sorted(set(data) - _TOP_LEVEL):
        known = _TOP_LEVEL | _HONOURED_DJ_KEYS | set(IGNORED_KEYS)
        problems.append(f"unknown key {key!r}{_did_you_mean(key, known)}")
        data.pop(key)
    builder = data.get("dataset_builder")
    for where, section, key in [
        ("dataset_path", data, "dataset_path"),
        ("export_path", data, "export_path"),
        ("dataset_builder.path", builder, "path"),
        ("storage.checkpoint_dir", data.get("storage"), "checkpoint_dir"),
        ("storage.event_log_dir", data.get("storage"), "event_log_dir"),
    ]:
        if isinstance(section, dict) and isinstance(section.get(key), str):
            try:
                section[key] = expand_env(section[key])
            except KeyError as exc:
                problems.append(f"{where}: environment variable {exc.args[0]} is not set")
    data.setdefault("project_name", re.sub(r"\W", "_", Path(source).stem) or "recipe")
    if isinstance(data.get("text_keys"), str):
        data["text_keys"] = [data["text_keys"]]
    text_keys = data.get("text_keys") or ["text"]
    _load_custom_operators(data.get("custom_operator_paths") or [], source, problems)
    auto = data.get("auto_op_parallelism")
    data["process"] = _parse_process(
        data.get("process"), str(text_keys[0]), problems, auto if isinstance(auto, bool) else None
    )
    manual = (data.get("checkpoint") or {}).get("op_names") or []
    names = {op.name for op in data["process"]} | {op.step_name for op in data["process"]}
    for op_name in manual:
        if op_name not in names:
            problems.append(f"checkpoint.op_names: {op_name!r} is not an op of process{_did_you_mean(op_name, names)}")
    if isinstance(data.get("engine"), dict):
        from resources.engine import EngineSettings

        try:
            EngineSettings.from_recipe(data["engine"])
        except (ValidationError, ValueError) as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
            problems.extend(f"engine.{_loc(err)}: {err['msg']}" for err in errors)
    paths = data.get("dataset_path"), data.get("export_path")
    if all(isinstance(p, str) for p in paths) and (why := _export_inside_input(*paths)):
        problems.append(why)
    try:
        recipe = Recipe.model_validate({**data, "source": source, "ignored_keys": ignored})
    except ValidationError as exc:
        problems.extend(f"{_loc(err)}: {err['msg']}" for err in exc.errors() if err["loc"][:1] != ("process",))
        raise RecipeError(source, problems) from None
    if problems:
        raise RecipeError(source, problems)
    return recipe


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """The recipe in `path`, parsed once per process for the same file content and environment (a job's runs and
    steps ask for it many times)."""
    path = Path(path)
    if not path.exists():
        raise RecipeError(str(path), ["file not found"])
    text = path.read_text(encoding="utf-8")
    # What the text means depends on the ${VAR}s it names and on the SLUICE_* settings, nothing else in the
    # environment (steps set OMP_NUM_THREADS and the like, which must not force a new parse).
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("SLUICE_") or "${" + k in text))
    return _parsed(str(path), text, env)


@functools.lru_cache(maxsize=64)
def _parsed(source: str, text: str, env: tuple[tuple[str, str], ...]) -> Recipe:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(source, [f"not valid YAML: {exc}"]) from None
    return parse_recipe(data, source)
