"""The resource planner on fake hardware (2 GPUs × 20 GB, 32 CPUs, 128 GB unless a test says otherwise)."""

from __future__ import annotations

import pytest

from ops_library.base import ResourceNeeds
from resources.hardware import Hardware
from resources.planner import FIX, OpDemand, PlanError, parse_memory, plan_recipe, pool_name

HW = Hardware.fake(cpus=32, memory_gb=128, gpus=2, gpu_memory_gb=20)
EMBEDDING = ResourceNeeds(cpus=1, gpus=0.25, memory_gb=1.0, batch_size=32, accelerator="cuda")


def gpu_op(name: str, **keys: object) -> OpDemand:
    return OpDemand(name, accelerator="cuda", **keys)  # type: ignore[arg-type]


# --- the seed's worked examples -----------------------------------------------------------------------------------


def test_eight_workers_of_a_quarter_gpu_fit_two_gpus() -> None:
    plan = plan_recipe([gpu_op("op00_embed", num_proc=8, num_gpus=0.25)], HW, recipe="r")
    op = plan["op00_embed"]
    assert (op.accelerator, op.num_proc, op.num_gpus, op.source) == ("cuda", 8, 0.25, "explicit")
    assert plan.pool_limits() == {"sluice/r/op00_embed": 8}


def test_auto_parallelism_gives_the_embedding_op_eight_workers_on_two_gpus() -> None:
    plan = plan_recipe([OpDemand("op01_text_embedding_mapper", needs=EMBEDDING)], HW)
    op = plan["op01_text_embedding_mapper"]
    # min(sum floor(20 GB / 1 GB) = 40, floor(2 / 0.25) = 8, floor(32 / 1) = 32)
    assert (op.num_proc, op.num_gpus, op.memory_gb, op.batch_size, op.source) == (8, 0.25, 1.0, 32, "auto")


def test_seven_gpu_filters_of_two_whole_gpu_workers_need_fourteen_gpus() -> None:
    ops = [gpu_op(f"op{i:02d}_gpu_filter", num_proc=2, num_gpus=1) for i in range(7)]
    with pytest.raises(PlanError) as err:
        plan_recipe(ops, HW, recipe="seven")
    message = str(err.value)
    assert "At least 14.0 gpus are required, but only 2.0 gpus are available." in message
    assert message.startswith("seven: the resource plan does not fit 32 CPUs")
    for i in range(7):
        assert f"  op{i:02d}_gpu_filter: 2 workers × 1.00 gpu = 2.0 gpus (explicit num_proc; num_gpus 1)" in message
    assert message.endswith(FIX)
    assert "lower num_proc" in FIX and "num_gpus: 0.25" in FIX and "auto_op_parallelism" in FIX


def test_each_op_alone_fitting_is_not_enough_because_pools_overlap() -> None:
    # Two ops of 2 whole-GPU workers each: either alone fits, together they need 4 GPUs.
    with pytest.raises(PlanError, match=r"At least 4\.0 gpus are required, but only 2\.0 gpus are available\."):
        plan_recipe([gpu_op("a", num_proc=2, num_gpus=1), gpu_op("b", num_proc=2, num_gpus=1)], HW)


def test_one_op_asking_for_more_gpus_than_exist_is_named() -> None:
    with pytest.raises(PlanError) as err:
        plan_recipe([gpu_op("op03_big", num_proc=16, num_gpus=0.25)], HW)
    assert (
        "Op[op03_big]: At least 4.0 gpus are required, but only 2.0 gpus are available "
        "(num_proc 16 × num_gpus 0.25)." in str(err.value)
    )


def test_auto_ops_at_one_whole_gpu_each_still_fail_with_the_fix() -> None:
    with pytest.raises(PlanError) as err:
        plan_recipe([gpu_op(f"f{i}", num_gpus=1) for i in range(7)], HW)
    assert "At least 7.0 gpus are required, but only 2.0 gpus are available." in str(err.value)
    assert "(auto, counted at 1 worker; num_gpus 1)" in str(err.value)


def test_fractional_auto_ops_share_the_gpus_without_oversubscribing() -> None:
    plan = plan_recipe([gpu_op(f"f{i}", num_gpus=0.25) for i in range(7)], HW)
    workers = [op.num_proc for op in plan.ops]
    assert all(n >= 1 for n in workers)
    assert sum(n * 0.25 for n in workers) <= 2.0
    assert sum(workers) == 8  # every quarter of both GPUs is handed out
    assert "of 8 workers" in plan["f1"].note


def test_two_auto_gpu_ops_split_the_gpus_evenly() -> None:
    plan = plan_recipe([OpDemand("a", needs=EMBEDDING), OpDemand("b", needs=EMBEDDING)], HW)
    assert [op.num_proc for op in plan.ops] == [4, 4]


def test_explicit_ops_take_their_share_first_and_auto_ops_get_the_rest() -> None:
    plan = plan_recipe([gpu_op("fixed", num_proc=1, num_gpus=1), OpDemand("auto", needs=EMBEDDING)], HW)
    assert plan["fixed"].num_proc == 1
    assert plan["auto"].num_proc == 4  # the other GPU, in quarters


# --- auto counts: Data-Juicer's formulas ---------------------------------------------------------------------------


def test_a_cpu_op_without_hints_gets_one_worker_per_cpu() -> None:
    plan = plan_recipe([OpDemand("op00_whitespace_normalization_mapper")], HW)
    assert plan.ops[0].num_proc == 32
    assert plan.ops[0].num_gpus == 0


def test_a_memory_hungry_cpu_op_is_bound_by_memory() -> None:
    # min(32 CPUs, floor(128 GB / 16 GB) = 8, floor(32 / 1) = 32)
    plan = plan_recipe([OpDemand("big", memory="16GB")], HW)
    assert (plan["big"].num_proc, plan["big"].memory_gb) == (8, 16.0)


def test_num_cpus_divides_the_cpus() -> None:
    assert plan_recipe([OpDemand("x", num_cpus=3)], HW)["x"].num_proc == 10


def test_a_gpu_op_is_bound_by_gpu_memory_per_card() -> None:
    # 6 GB per worker: floor(20 / 6) = 3 per GPU, 6 in all; its GPU share is 6/20 = 0.3 -> floor(2 / 0.3) = 6.
    plan = plan_recipe([gpu_op("g", memory=6)], HW)
    assert (plan["g"].num_proc, plan["g"].num_gpus) == (6, 0.3)


def test_a_gpu_op_without_memory_or_num_gpus_gets_one_worker_per_gpu() -> None:
    plan = plan_recipe([gpu_op("g")], HW)
    assert (plan["g"].num_proc, plan["g"].num_gpus) == (2, 1.0)
    assert "one whole GPU" in plan["g"].note


def test_history_lowers_the_workers_of_an_auto_cpu_op() -> None:
    ops = [OpDemand("op01_text_length_filter", op="text_length_filter", memory="2GB")]
    plan = plan_recipe(ops, HW, predictions={"op01_text_length_filter": 10.0})
    op = plan.ops[0]
    # floor(128 GB / 10 GB) = 12, below the 32 CPUs and the 64 that the 2 GB hint allows
    assert (op.memory_gb, op.num_proc, op.source) == (10.0, 12, "history")
    by_op_name = plan_recipe(ops, HW, predictions={"text_length_filter": 10.0})
    assert by_op_name.ops[0].source == "history"
    assert plan_recipe(ops, HW).ops[0].num_proc == 32  # the recipe's 2 GB: min(32 CPUs, 64)


def test_history_never_raises_the_workers_above_the_declared_memory() -> None:
    ops = [OpDemand("f", memory="16GB")]
    plan = plan_recipe(ops, HW, predictions={"f": 0.1})
    assert (plan["f"].num_proc, plan["f"].memory_gb, plan["f"].source) == (8, 16.0, "auto")


def test_history_does_not_apply_to_gpu_memory() -> None:
    """Past runs measure host RSS; a CUDA op's memory key is GPU memory."""
    ops = [OpDemand("op01_text_embedding_mapper", op="text_embedding_mapper", needs=EMBEDDING, memory="2GB")]
    plan = plan_recipe(ops, HW, predictions={"op01_text_embedding_mapper": 10.0})
    op = plan.ops[0]
    assert (op.memory_gb, op.num_proc, op.source) == (2.0, 8, "auto")


# --- issue 11 item 6: history makes the planner refuse runs that fit ---------------------------------------------

SMALL_BOX = Hardware(cpus=2, memory_gb=7.5)


def _demo_demands() -> list[OpDemand]:
    return [
        OpDemand("op00_whitespace_normalization_mapper", op="whitespace_normalization_mapper"),
        OpDemand("op01_clean_links_mapper", op="clean_links_mapper"),
        OpDemand("op02_text_length_filter", op="text_length_filter"),
        OpDemand("op03_words_num_filter", op="words_num_filter", num_proc=2),
    ]


def test_history_from_a_five_row_run_does_not_refuse_the_same_plan() -> None:
    """The reproducer: after a 5-row run, predictions of ~50 GB per worker (process RSS / 5 rows) made the same
    `sluice run` exit 2 ("does not fit … 4.7 cpus … 49.85 GB"). History may lower parallelism, never refuse."""
    demands = _demo_demands()
    fresh = plan_recipe(demands, SMALL_BOX, recipe="demo")
    absurd = {d.op: 49.85 for d in demands}
    plan = plan_recipe(demands, SMALL_BOX, predictions=absurd, recipe="demo")
    for op in plan.ops:
        assert op.num_proc >= 1
        assert op.num_proc <= fresh[op.op].num_proc
    assert plan["op03_words_num_filter"].num_proc == 2  # explicit: kept, with a warning
    assert "kept num_proc 2 as asked" in plan["op03_words_num_filter"].note
    assert plan["op02_text_length_filter"].source == "history"
    assert "one worker needs more than this machine has" in plan["op02_text_length_filter"].note


def test_the_demo_at_partition_size_50000_is_not_refused() -> None:
    """The reproducer: ~24 GB predicted for a 50,000-row shard against 274 MB used; still a plan, fewer workers."""
    demands = _demo_demands()
    plan = plan_recipe(demands, SMALL_BOX, predictions={d.op: 24.0 for d in demands}, recipe="demo")
    assert {op.op: op.num_proc for op in plan.ops} == {
        "op00_whitespace_normalization_mapper": 1,
        "op01_clean_links_mapper": 1,
        "op02_text_length_filter": 1,
        "op03_words_num_filter": 2,
    }


def test_explicit_demands_that_do_not_fit_still_refuse_with_or_without_history() -> None:
    demands = [OpDemand("big", num_proc=4, memory="4GB")]
    for predictions in (None, {"big": 0.1}, {"big": 100.0}):
        with pytest.raises(PlanError, match=r"At least 16\.0 GB of memory is required, but only 7\.5 GB"):
            plan_recipe(demands, SMALL_BOX, predictions=predictions)


def test_a_gpu_op_on_a_machine_without_gpus_runs_on_the_cpu() -> None:
    cpu_box = Hardware(cpus=2, memory_gb=22.0)
    plan = plan_recipe([OpDemand("emb", needs=EMBEDDING, num_proc=8)], cpu_box)
    op = plan["emb"]
    assert (op.accelerator, op.num_gpus, op.num_proc) == ("cpu", 0.0, 8)
    assert "runs on the CPU" in op.note


def test_auto_op_parallelism_off_uses_the_recipe_np() -> None:
    plan = plan_recipe([OpDemand("x", auto_op_parallelism=False)], HW, default_np=4)
    assert (plan["x"].num_proc, plan["x"].source) == (4, "explicit")


@pytest.mark.parametrize("num_proc", [None, -1])
def test_num_proc_unset_or_minus_one_is_auto(num_proc: int | None) -> None:
    assert plan_recipe([OpDemand("x", num_proc=num_proc)], HW)["x"].source == "auto"


# --- CPU checks ------------------------------------------------------------------------------------------------------


def test_many_cpu_ops_on_two_cores_share_them() -> None:
    # CPU time is time-shared: ops that do not reserve CPUs never fail the summed check.
    plan = plan_recipe([OpDemand(f"op{i:02d}") for i in range(7)], Hardware(cpus=2, memory_gb=22.0))
    assert [op.num_proc for op in plan.ops] == [2] * 7


def test_explicit_cpu_reservations_are_summed() -> None:
    ops = [OpDemand(f"op{i:02d}", num_proc=4, num_cpus=2) for i in range(5)]
    with pytest.raises(PlanError, match=r"At least 40\.0 cpus are required, but only 32\.0 cpus are available\."):
        plan_recipe(ops, HW)
    plan_recipe(ops[:4], HW)  # 32 of 32


def test_an_explicit_cpu_op_must_fit_in_memory() -> None:
    with pytest.raises(PlanError, match=r"Op\[m\]: At least 160\.0 GB of memory is required, but only 128\.0 GB"):
        plan_recipe([OpDemand("m", num_proc=10, memory="16GB")], HW)


# --- errors of the recipe keys ----------------------------------------------------------------------------------------


def test_num_gpus_on_a_cpu_op_is_an_error() -> None:
    with pytest.raises(PlanError, match=r"Op\[op02_text_length_filter\] asks for GPU resources \(num_gpus=0\.5\)"):
        plan_recipe([OpDemand("op02_text_length_filter", num_gpus=0.5)], HW)


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(PlanError) as err:
        plan_recipe([OpDemand("a", num_gpus=1), OpDemand("b", memory="lots"), gpu_op("c", num_proc=9, num_gpus=1)], HW)
    problems = err.value.problems
    assert problems[0].startswith("Op[a] asks for GPU resources (num_gpus=1) but runs on the CPU")
    assert problems[1].startswith("Op[b]: memory 'lots' is not a size")
    assert problems[2].startswith("Op[c]: At least 9.0 gpus are required, but only 2.0 gpus are available")
    assert problems[-1] == FIX


# --- memory strings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "gb"),
    [
        (None, None),
        (3, 3.0),
        (0.5, 0.5),
        ("16GB", 16.0),
        ("16gb", 16.0),
        ("512MB", 0.5),
        ("2GiB", 2.0),
        ("1.5GB", 1.5),  # Data-Juicer's size_to_bytes reads 15 GB here
        ("1 TB", 1024.0),
        (str(2**30), 1.0),  # a bare string is bytes, as in Data-Juicer
        ("1048576KB", 1.0),
    ],
)
def test_parse_memory(value: object, gb: float | None) -> None:
    assert parse_memory(value) == gb  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["lots", "16 GX", "-1GB", -2, True])
def test_parse_memory_rejects_what_is_not_a_size(value: object) -> None:
    with pytest.raises(ValueError, match="memory"):
        parse_memory(value)  # type: ignore[arg-type]


# --- the plan as shown ------------------------------------------------------------------------------------------


def test_render_is_a_table_of_every_op() -> None:
    plan = plan_recipe(
        [OpDemand("op00_whitespace_normalization_mapper"), OpDemand("op01_emb", needs=EMBEDDING)],
        HW,
        recipe="embeddings",
    )
    text = plan.render()
    lines = text.splitlines()
    assert lines[0].startswith("plan for embeddings on 32 CPUs, 128.0 GB memory available, 2 GPUs")
    assert lines[2].split() == ["op", "accel", "workers", "cpus", "gpus", "memory", "batch", "source", "pool"]
    assert lines[4].split() == "op01_emb cuda 8 1 0.25 1.00 GB 32 auto sluice/embeddings/op01_emb".split()
    assert plan["op01_emb"].metadata()["pool"] == pool_name("embeddings", "op01_emb")
