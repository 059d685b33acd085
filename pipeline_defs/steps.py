"""How a recipe's ops are grouped into Dagster steps (the checkpoint strategy).

Grouping never changes what an op computes: a step runs its ops one after the other on the same frame and
reports each op's rows and time. A global op (dedup) always splits the chain, since its index must see every
shard: the ops before it end a step, its hashes and index are stages of their own, and its per-shard filter
starts the next step.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_defs.recipe import OpSpec, Recipe


@dataclass(frozen=True)
class RowStep:
    """A partitioned step running `ops` in order; `dedup_head` when its first op is a global op's filter."""

    ops: tuple[OpSpec, ...]
    dedup_head: bool = False

    @property
    def name(self) -> str:
        first, last = self.ops[0], self.ops[-1]
        return first.step_name if len(self.ops) == 1 else f"op{first.index:02d}_to_op{last.index:02d}"


@dataclass(frozen=True)
class GlobalStage:
    """The stages of a global op that see every shard: per-shard hashes, then one index."""

    spec: OpSpec


def _cuts_after(recipe: Recipe, op: OpSpec) -> bool:
    cp = recipe.checkpoint
    if cp.strategy == "every_op":
        return True
    if cp.strategy == "every_n_ops":
        assert cp.n_ops is not None
        return (op.index + 1) % cp.n_ops == 0
    if cp.strategy == "manual":
        return op.name in cp.op_names or op.step_name in cp.op_names
    return False  # every_partition, disabled


def plan_steps(recipe: Recipe) -> list[RowStep | GlobalStage]:
    plan: list[RowStep | GlobalStage] = []
    group: list[OpSpec] = []
    head = False

    def close() -> None:
        nonlocal group, head
        if group:
            plan.append(RowStep(tuple(group), dedup_head=head))
        group, head = [], False

    for op in recipe.process:
        if op.op_class.is_global:
            close()
            plan.append(GlobalStage(op))
            group, head = [op], True
        else:
            group.append(op)
        if _cuts_after(recipe, op):
            close()
    close()
    return plan
