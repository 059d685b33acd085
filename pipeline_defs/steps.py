"""How a recipe's ops are grouped into Dagster steps (the checkpoint strategy).

Grouping never changes what an op computes: a step runs its ops one after the other on the same frame and
reports each op's rows and time. A global op (dedup) always splits the chain, since its index must see every
shard: the ops before it end a step, its hashes and index are stages of their own, and its per-shard filter
starts the next step.

Global ops in a row (a dedup right after another dedup's filter, nothing between: exact then MinHash) share
their stages' runs (`chained_globals`): the later one hashes the rows the earlier one hashes (its filter only
drops rows, so they are a superset of what the later one would see), both indexes are built in one run, the
later index leaving out the rows the earlier one drops, and both filters run in the next. The rows each op keeps
are the ones it keeps when the stages run one op after the other; the job has two Dagster runs fewer per pair.
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


def chained_globals(plan: list[RowStep | GlobalStage], i: int) -> int:
    """How many global stages, from `plan[i]` on (`plan[i]`, `plan[i + 2]`, ...), share their hashes' run and
    their indexes' run: each after the first directly follows the previous one's filter (a step of that filter
    alone), the previous op's filter only drops rows (`drops_rows_only`) and its own hashes are per row
    (`row_wise_hashes`). 1 when `plan[i]` stands alone."""
    n = 1
    while i + 2 * n < len(plan):
        prev, head, nxt = plan[i + 2 * (n - 1)], plan[i + 2 * n - 1], plan[i + 2 * n]
        assert isinstance(prev, GlobalStage)
        if not isinstance(nxt, GlobalStage) or not isinstance(head, RowStep):
            break
        if not head.dedup_head or head.ops != (prev.spec,):
            break
        drops_only = getattr(prev.spec.op_class, "drops_rows_only", False)
        if not (drops_only and getattr(nxt.spec.op_class, "row_wise_hashes", False)):
            break
        n += 1
    return n
