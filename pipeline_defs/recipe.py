"""Data-Juicer recipes (YAML) parsed into typed models.

The Data-Juicer keys keep their names and meaning (`project_name`, `dataset_path`, `export_path`, `text_keys`,
`np`, `process: [{op_name: {params}}]`). Sluice's own settings live in named sections (`partition`,
`checkpoint`, `dataset_builder`). Unknown keys are errors with a did-you-mean, never silently ignored.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


class PartitionSpec(_Section):
    """How input is split into Dagster partitions: shards of `size` rows of one input file."""

    size: int = Field(10_000, gt=0, description="Rows per shard (partition).")


class CheckpointSpec(_Section):
    """Which steps persist their output. `every_op`: each op is its own asset, its materialization the
    checkpoint."""

    strategy: Literal["every_op"] = "every_op"


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
        except ValidationError as exc:
            problems.extend(f"{where}.{_loc(err)}: {err['msg']}" for err in exc.errors())
            continue
        specs.append(OpSpec(index=i, name=name, params=op_params, text_key=text_key, resources=resources))
    return specs


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
    data["process"] = _parse_process(data.get("process"), str(text_keys[0]), problems)
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
