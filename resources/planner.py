"""Resource planning: each op's resource keys and the detected hardware become a worker count per op (the
limit of the op's Dagster pool), with Data-Juicer's formulas, and a clear error before any step runs when an
explicit plan cannot fit.

Data-Juicer's keys per op: `num_proc` (unset or -1: auto), `num_cpus`, `num_gpus` (a fraction shares a GPU),
`memory` (per worker; GPU memory for a CUDA op, host memory otherwise; a GB number or "16GB"), `accelerator`,
`auto_op_parallelism` (default true). The op class gives the defaults (`Op.needs`).

History (the usage analyzer's prediction of host memory per worker, from the RSS past steps added) may lower
the worker count of an auto op when it predicts more than the recipe's or the op's memory hint; it never raises
it, never changes an explicit `num_proc`, never applies to a CUDA op's (GPU) memory, and never makes a plan
fail: only what the recipe and the ops declare can raise PlanError. A prediction is a measurement of past
runs, and an earlier bug (whole-process RSS over 5 rows) showed how wrong one can be.

What is checked, and why (docs/pools.md has the long form):
* Each op alone must fit the machine: `num_proc × num_gpus <= GPUs` (and GPU memory, explicit CPUs, host
  memory).
* Data-Juicer's summed check: every op is its own pool and the runs of different partitions overlap, so all
  ops may hold workers at once. Per op, GPU fraction = `max(num_gpus / GPUs, memory / free GPU memory)` and
  CPU fraction = `max(num_cpus / CPUs, memory / available memory)`; the fractions times the workers of explicit
  ops, plus one worker of every auto op, must sum to at most 1. CPU time is time-shared, so only an explicit
  `num_cpus` counts towards CPUs; memory and GPUs are not, so they always count.
* Auto ops then share what is left: when their per-op counts together would oversubscribe the GPUs or the
  memory, workers are dealt out one at a time, fewest-first, until nothing more fits.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ops_library.base import ResourceNeeds
from resources.hardware import Hardware

log = logging.getLogger(__name__)

Accelerator = Literal["cpu", "cuda"]
Source = Literal["explicit", "auto", "history"]
_EPS = 1e-9
_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60, "z": 70, "y": 80}
_MEMORY = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?:(?P<unit>[kmgtpezy])i?b|(?P<bytes>b?))\s*$", re.I)
FIX = (
    "Fix: lower num_proc, ask for a fraction of a GPU per worker (num_gpus: 0.25 puts 4 workers on one GPU), "
    "or remove num_proc so that auto_op_parallelism sizes each op to the hardware."
)


class PlanError(ValueError):
    """A plan that cannot run on this machine; `problems` lists each finding, the message has the fix."""

    def __init__(self, recipe: str, problems: list[str], hardware: Hardware):
        self.recipe = recipe
        self.problems = problems
        super().__init__(f"{recipe}: the resource plan does not fit {hardware.describe()}.\n" + "\n".join(problems))


def parse_memory(value: float | int | str | None) -> float | None:
    """Data-Juicer's `memory` key in GB: a number is GB; a string has a unit (KB, MB, GB, TB... or KiB...,
    all powers of 1024, case-insensitive) or is bytes. Unlike Data-Juicer's `size_to_bytes`, "1.5GB" is 1.5 GB
    (it drops the dot and reads 15 GB)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"memory must be a number of GB or a string like '16GB', got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"memory must not be negative, got {value!r}")
        return float(value)
    m = _MEMORY.match(value)
    if not m:
        raise ValueError(
            f"memory {value!r} is not a size: use a number of GB or a number with a unit "
            "(KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. '16GB'"
        )
    shift = _UNITS[(m["unit"] or "").lower()]
    return float(m["num"]) * 2**shift / 2**30


def pool_name(recipe: str, step: str) -> str:
    """The Dagster pool of one op of one recipe (an asset's `pool=`; its limit is the op's worker count)."""
    return f"sluice/{recipe}/{step}"


@dataclass(frozen=True)
class OpDemand:
    """One op's resource keys as the recipe gives them (None: not set), over the op class's `needs`.

    The recipe's `OpResourcesSpec` fields have the same names:
    `OpDemand(spec.step_name, op=spec.name, needs=spec.op_class.needs, **spec.resources.model_dump(exclude_none=True))`.
    """

    name: str
    needs: ResourceNeeds = field(default_factory=ResourceNeeds)
    op: str = ""
    num_proc: int | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: float | str | None = None
    batch_size: int | None = None
    accelerator: Accelerator | None = None
    auto_op_parallelism: bool | None = None


@dataclass(frozen=True)
class OpPlan:
    """How one op runs: `num_proc` workers (the limit of Dagster pool `pool`), each with `num_cpus` threads,
    `num_gpus` of a GPU and `memory_gb` of (GPU, for CUDA) memory. `source` says where `num_proc` came from."""

    op: str
    accelerator: Accelerator
    num_proc: int
    num_cpus: float
    num_gpus: float
    memory_gb: float | None
    pool: str
    source: Source
    batch_size: int
    op_name: str = ""
    note: str = ""

    def metadata(self) -> dict[str, Any]:
        """Plain values for the op's Dagster metadata (`sluice/plan`)."""
        return {
            "accelerator": self.accelerator,
            "num_proc": self.num_proc,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "memory_gb": self.memory_gb,
            "batch_size": self.batch_size,
            "pool": self.pool,
            "source": self.source,
            **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True)
class Plan:
    recipe: str
    hardware: Hardware
    ops: tuple[OpPlan, ...]

    def __getitem__(self, name: str) -> OpPlan:
        for p in self.ops:
            if name in (p.op, p.op_name):
                return p
        raise KeyError(name)

    def pool_limits(self) -> dict[str, int]:
        return {p.pool: p.num_proc for p in self.ops}

    def render(self) -> str:
        """The table `sluice plan` prints."""
        rows = [("op", "accel", "workers", "cpus", "gpus", "memory", "batch", "source", "pool")]
        for p in self.ops:
            rows.append(
                (
                    p.op,
                    p.accelerator,
                    str(p.num_proc),
                    f"{p.num_cpus:g}",
                    f"{p.num_gpus:g}" if p.num_gpus else "-",
                    f"{p.memory_gb:.2f} GB" if p.memory_gb is not None else "-",
                    str(p.batch_size),
                    p.source,
                    p.pool,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        right = {2, 3, 4, 5, 6}
        lines = [f"plan for {self.recipe} on {self.hardware.describe()}", ""]
        for r in rows:
            cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
            lines.append("  ".join(cells).rstrip())
        notes = [f"{p.op}: {p.note}" for p in self.ops if p.note]
        if notes:
            lines += ["", *(f"note: {n}" for n in notes)]
        return "\n".join(lines)


@dataclass
class _Op:
    """An op's resolved demand while planning."""

    demand: OpDemand
    wanted: Accelerator
    accelerator: Accelerator
    num_cpus: float
    explicit_cpus: float
    num_gpus: float
    memory_gb: float | None
    """Declared memory per worker (the recipe's, else the op's hint): what the fit checks use."""
    sizing_gb: float | None
    """Memory per worker the worker counts are sized by: the declared one, or history's when it is larger."""
    from_history: bool
    batch_size: int
    explicit_np: int | None
    cpu_frac: float = 0.0
    gpu_frac: float = 0.0
    sizing_cpu_frac: float = 0.0
    """`cpu_frac` with `sizing_gb` in place of `memory_gb`: what sharing the machine uses."""
    max_np: int = 1
    num_proc: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.demand.name


def _fmt(x: float) -> str:
    return f"{x:g}"


def _resolve(
    d: OpDemand, hw: Hardware, predictions: Mapping[str, float], default_np: int | None, problems: list[str]
) -> _Op | None:
    wanted: Accelerator = d.accelerator or d.needs.accelerator
    num_gpus = d.num_gpus if d.num_gpus is not None else (d.needs.gpus or None)
    if wanted == "cpu" and num_gpus:
        problems.append(
            f"Op[{d.name}] asks for GPU resources (num_gpus={_fmt(num_gpus)}) but runs on the CPU "
            "(accelerator: cpu); num_gpus is only for ops with `accelerator: cuda`."
        )
        return None
    try:
        recipe_memory = parse_memory(d.memory)
    except ValueError as exc:
        problems.append(f"Op[{d.name}]: {exc}")
        return None
    prediction = predictions.get(d.name)
    if prediction is None and d.op:
        prediction = predictions.get(d.op)
    memory = recipe_memory if recipe_memory is not None else d.needs.memory_gb
    on_gpu = wanted == "cuda" and hw.gpu_count > 0
    # History measures host RSS; a CUDA op's memory key is GPU memory. It only ever lowers parallelism.
    from_history = prediction is not None and not on_gpu and prediction > (memory or 0.0) + _EPS
    sizing = prediction if from_history else memory
    op = _Op(
        demand=d,
        wanted=wanted,
        accelerator="cuda" if on_gpu else "cpu",
        num_cpus=d.num_cpus if d.num_cpus is not None else d.needs.cpus,
        explicit_cpus=d.num_cpus or 0.0,
        num_gpus=0.0,
        memory_gb=memory or None,
        sizing_gb=sizing or None,
        from_history=from_history,
        batch_size=d.batch_size or d.needs.batch_size,
        explicit_np=None,
    )
    if wanted == "cuda" and not on_gpu:
        op.notes.append("no GPU on this machine: runs on the CPU")
    auto = d.auto_op_parallelism is not False
    if d.num_proc is not None and d.num_proc not in (-1, 0):
        if d.num_proc < 0:
            problems.append(f"Op[{d.name}]: num_proc must be a positive worker count or -1 (auto), got {d.num_proc}")
            return None
        op.explicit_np = d.num_proc
    elif not auto:
        op.explicit_np = default_np or hw.cpus
    if on_gpu:
        avg_free = hw.gpu_free_gb / hw.gpu_count
        if num_gpus:
            op.num_gpus = float(num_gpus)
        elif memory:
            # Data-Juicer's Ray executor: a memory-only GPU op asks for its share of a GPU, rounded up to 1/100.
            op.num_gpus = min(1.0, math.ceil(memory / max(avg_free, _EPS) * 100) / 100)
        else:
            op.num_gpus = 1.0
            op.notes.append("neither num_gpus nor memory set: one whole GPU per worker")
        op.gpu_frac = max(op.num_gpus / hw.gpu_count, (memory or 0.0) / max(hw.gpu_free_gb, _EPS))
        op.cpu_frac = op.sizing_cpu_frac = op.explicit_cpus / hw.cpus
    else:
        op.cpu_frac = max(op.explicit_cpus / hw.cpus, (memory or 0.0) / max(hw.memory_gb, _EPS))
        op.sizing_cpu_frac = max(op.cpu_frac, (sizing or 0.0) / max(hw.memory_gb, _EPS))
    return op


def _auto_np(op: _Op, hw: Hardware) -> int:
    """Data-Juicer's `calculate_np` on one machine."""
    inf = math.inf
    by_cpu = math.floor(hw.cpus / op.num_cpus + _EPS) if op.num_cpus else inf
    if op.accelerator == "cuda":
        d = op.demand
        if not op.memory_gb and not (d.num_gpus or d.needs.gpus):
            return hw.gpu_count  # Data-Juicer: "Set the auto `num_proc` to number of GPUs"
        by_mem = sum(math.floor(g.free_gb / op.memory_gb + _EPS) for g in hw.gpus) if op.memory_gb else inf
        by_gpu = math.floor(hw.gpu_count / op.num_gpus + _EPS) if op.num_gpus else inf
        n = min(by_mem, by_gpu, by_cpu)
    else:
        by_mem = math.floor(hw.memory_gb / op.sizing_gb + _EPS) if op.sizing_gb else inf
        n = min(hw.cpus, by_mem, by_cpu)
    if n < 1:
        op.notes.append("one worker needs more than this machine has; planned 1 worker anyway")
        return 1
    return int(n)


def _note_history_over_explicit(op: _Op, hw: Hardware) -> None:
    """An explicit num_proc is the recipe's decision: history that says it will not fit is a warning, not an error."""
    if op.from_history and op.sizing_gb and op.num_proc * op.sizing_gb > hw.memory_gb + _EPS:
        op.notes.append(
            f"past runs predict {op.sizing_gb:.2f} GB per worker, so {op.num_proc} workers may need "
            f"{op.num_proc * op.sizing_gb:.1f} GB of {hw.memory_gb:.1f} GB; kept num_proc {op.num_proc} as asked"
        )


def _check_alone(op: _Op, hw: Hardware, problems: list[str]) -> None:
    """An explicit worker count must fit the machine when the op runs alone."""
    n, name = op.num_proc, op.name
    if op.accelerator == "cuda":
        need = n * op.num_gpus
        if need > hw.gpu_count + _EPS:
            problems.append(
                f"Op[{name}]: At least {need:.1f} gpus are required, but only {hw.gpu_count:.1f} gpus are "
                f"available (num_proc {n} × num_gpus {_fmt(op.num_gpus)})."
            )
        if op.memory_gb:
            fits = sum(math.floor(g.free_gb / op.memory_gb + _EPS) for g in hw.gpus)
            if n > fits:
                problems.append(
                    f"Op[{name}]: {n} workers × {op.memory_gb:.1f} GB of GPU memory do not fit: the free memory of "
                    f"the GPUs ({', '.join(f'{g.free_gb:.1f} GB' for g in hw.gpus)}) holds {fits}."
                )
    elif op.memory_gb and n * op.memory_gb > hw.memory_gb + _EPS:
        problems.append(
            f"Op[{name}]: At least {n * op.memory_gb:.1f} GB of memory is required, but only "
            f"{hw.memory_gb:.1f} GB is available (num_proc {n} × memory {op.memory_gb:.1f} GB)."
        )
    if op.explicit_cpus and n * op.explicit_cpus > hw.cpus + _EPS:
        problems.append(
            f"Op[{name}]: At least {n * op.explicit_cpus:.1f} cpus are required, but only {hw.cpus:.1f} cpus are "
            f"available (num_proc {n} × num_cpus {_fmt(op.explicit_cpus)})."
        )


def _demand_line(op: _Op, kind: str, total: float) -> str:
    frac = op.gpu_frac if kind == "gpu" else op.cpu_frac
    workers = op.num_proc if op.explicit_np is not None else 1
    unit = op.num_gpus if kind == "gpu" else op.explicit_cpus
    how = f"{workers} worker{'s' if workers != 1 else ''} × {frac * total:.2f} {kind}"
    why = f"num_{kind}s {_fmt(unit)}" if unit else ""
    if op.memory_gb and (frac * total > unit + _EPS):
        why = f"{why}, memory {op.memory_gb:.2f} GB" if why else f"memory {op.memory_gb:.2f} GB"
    mode = "explicit num_proc" if op.explicit_np is not None else "auto, counted at 1 worker"
    return f"  {op.name}: {how} = {workers * frac * total:.1f} {kind}s ({mode}; {why})"


def _check_summed(ops: Sequence[_Op], hw: Hardware, problems: list[str]) -> None:
    """Data-Juicer's summed minimum demand: explicit ops at num_proc workers, auto ops at one."""
    for kind, total in (("gpu", float(hw.gpu_count)), ("cpu", float(hw.cpus))):
        users = [o for o in ops if (o.gpu_frac if kind == "gpu" else o.cpu_frac) > 0]
        need = sum((o.gpu_frac if kind == "gpu" else o.cpu_frac) * (o.num_proc if o.explicit_np else 1) for o in users)
        if need > 1 + _EPS:
            problems.append(
                f"{kind.upper()} resource is not enough for the current operators configuration. "
                f"At least {need * total:.1f} {kind}s are required, but only {total:.1f} {kind}s are available."
            )
            problems.extend(_demand_line(o, kind, total) for o in users)
            problems.append(
                "  Each op is its own Dagster pool and the runs of different partitions overlap, so the workers of "
                "every op may hold their share at the same time."
            )


def _share(ops: Sequence[_Op]) -> None:
    """Deal the capacity left by explicit ops to auto ops, one worker at a time, fewest-first (memory as sized,
    history included)."""
    auto = [o for o in ops if o.explicit_np is None]
    used_gpu = sum(o.gpu_frac * o.num_proc for o in ops)
    used_cpu = sum(o.sizing_cpu_frac * o.num_proc for o in ops)
    if used_gpu <= 1 + _EPS and used_cpu <= 1 + _EPS:
        return
    for o in auto:
        if o.gpu_frac or o.sizing_cpu_frac:
            o.num_proc = 1
    used_gpu = sum(o.gpu_frac * o.num_proc for o in ops)
    used_cpu = sum(o.sizing_cpu_frac * o.num_proc for o in ops)
    growing = [o for o in auto if (o.gpu_frac or o.sizing_cpu_frac) and o.num_proc < o.max_np]
    while growing:
        growing.sort(key=lambda o: o.num_proc)
        for o in growing:
            if used_gpu + o.gpu_frac <= 1 + _EPS and used_cpu + o.sizing_cpu_frac <= 1 + _EPS:
                o.num_proc += 1
                used_gpu += o.gpu_frac
                used_cpu += o.sizing_cpu_frac
                break
        else:
            break
        growing = [o for o in growing if o.num_proc < o.max_np]
    for o in auto:
        if o.num_proc < o.max_np:
            o.notes.append(f"{o.num_proc} of {o.max_np} workers: the other ops' pools hold the rest of the devices")


def plan_recipe(
    ops: Sequence[OpDemand],
    hardware: Hardware,
    predictions: Mapping[str, float] | None = None,
    *,
    recipe: str = "recipe",
    default_np: int | None = None,
) -> Plan:
    """Plan every op of a recipe on `hardware`; raise PlanError listing every declared demand that does not fit.

    `predictions`: host memory per worker in GB by op (step name or op name), from past runs. Where it exceeds
    the recipe's or the op's memory hint, auto worker counts are sized by it (source "history"); it never
    causes PlanError (see the module docstring).
    `default_np`: workers of an op with `auto_op_parallelism: false` and no num_proc (the recipe's `np`).
    """
    problems: list[str] = []
    resolved = [_resolve(d, hardware, predictions or {}, default_np, problems) for d in ops]
    planned = [o for o in resolved if o is not None]
    for o in planned:
        o.max_np = _auto_np(o, hardware) if o.explicit_np is None else o.explicit_np
        o.num_proc = o.max_np
        if o.explicit_np is not None:
            _check_alone(o, hardware, problems)
            _note_history_over_explicit(o, hardware)
    if not problems:
        _check_summed(planned, hardware, problems)
    if problems:
        raise PlanError(recipe, [*problems, FIX], hardware)
    _share(planned)
    plans = []
    for o in planned:
        if o.explicit_np is not None:
            source: Source = "explicit"
        else:
            source = "history" if o.from_history else "auto"
        plans.append(
            OpPlan(
                op=o.name,
                accelerator=o.accelerator,
                num_proc=o.num_proc,
                num_cpus=o.num_cpus,
                num_gpus=o.num_gpus,
                memory_gb=o.sizing_gb,
                pool=pool_name(recipe, o.name),
                source=source,
                batch_size=o.batch_size,
                op_name=o.demand.op,
                note="; ".join(o.notes),
            )
        )
    for p in plans:
        if p.note:
            log.info("plan %s: %s: %s", recipe, p.op, p.note)
    return Plan(recipe=recipe, hardware=hardware, ops=tuple(plans))
