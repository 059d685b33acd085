"""Data-Juicer recipes (YAML) parsed into typed models.

The Data-Juicer keys keep their names and meaning (`project_name`, `dataset_path`, `export_path`, `text_keys`,
`np`, `process: [{op_name: {params}}]`). Sluice's own settings live in named sections (`partition`,
`checkpoint`, `dataset_builder`). Unknown keys are errors with a did-you-mean, never silently ignored.
"""

from __future__ import annotations

import difflib
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
from ops_library.registry import UnknownOpError, get_op

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
    close = difflib.get_close_matches(word, sorted(choices), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


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
    seeked; Parquet: consecutive row groups of about `bytes`), or `size` rows. Give one of the two."""

    bytes: int | None = Field(None, gt=0, description="Input bytes per shard: an int or a string like 64MB, 1GiB.")
    size: int | None = Field(None, gt=0, description="Rows per shard instead of bytes (also splits .jsonl.gz).")

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
    keep_stats_in_res_ds: bool = False
    skip_op_error: bool = Field(
        False, description="Accepted for Data-Juicer compatibility; Sluice never drops rows of a failing op."
    )
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
    process: list[OpSpec]

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


_TOP_LEVEL = set(Recipe.model_fields) - {"source"}
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


def _parse_process(raw: Any, default_text_key: str, problems: list[str]) -> list[OpSpec]:
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
        specs.append(
            OpSpec(index=i, name=name, params=op_params, text_key=text_key, resources=resources, retry=retry_spec)
        )
    return specs


def _load_custom_operators(paths: list[str], source: str, problems: list[str]) -> None:
    """Import modules (dotted names) or .py files (relative to the recipe) whose @register calls add ops."""
    for entry in paths:
        try:
            if entry.endswith(".py"):
                path = Path(entry) if Path(entry).is_absolute() else Path(source).parent / entry
                name = f"sluice_custom_{path.stem}_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
                if name in sys.modules:
                    continue
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is None or spec.loader is None or not path.exists():
                    raise FileNotFoundError(path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(entry)
        except Exception as exc:
            problems.append(f"custom_operator_paths: cannot load {entry!r}: {exc}")


def _loc(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "value"


def parse_recipe(data: Any, source: str = "<recipe>") -> Recipe:
    """Validate a recipe mapping; raise RecipeError listing every problem found."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise RecipeError(source, [f"the recipe must be a YAML mapping, got {type(data).__name__}"])
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for key in sorted(set(data) - _TOP_LEVEL):
        problems.append(f"unknown key {key!r}{_did_you_mean(key, _TOP_LEVEL)}")
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
    data["process"] = _parse_process(data.get("process"), str(text_keys[0]), problems)
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
    try:
        recipe = Recipe.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems.extend(f"{_loc(err)}: {err['msg']}" for err in exc.errors() if err["loc"][:1] != ("process",))
        raise RecipeError(source, problems) from None
    if problems:
        raise RecipeError(source, problems)
    return recipe


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    path = Path(path)
    if not path.exists():
        raise RecipeError(str(path), ["file not found"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_recipe(data, str(path))
