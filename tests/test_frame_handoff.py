"""How a row step gets its upstream shards from the step before it in the same process (`FRAMES`): from memory
while the cache holds them, each frame leaving the cache with its last read; when one step's frames outgrow the
cache, the shards still held are computed first (`step.cached_first`), so those are read from memory rather than
pushed out by the misses' decodes. The exports are the same whatever the cache holds."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
import yaml

from pipeline_defs import graph
from pipeline_defs.execute import run_recipe
from pipeline_defs.recipe import PartitionSpec
from pipeline_defs.shards import discover_shards, read_shard
from pipeline_defs.step import cached_first
from resources.storage import FRAMES, CheckpointStore

SHARDS = 6
READ_BASE = CheckpointStore.read_base


def test_cached_first_keeps_each_group_in_its_order() -> None:
    todo = [(f"k{i}", None) for i in range(6)]
    held = {"k1", "k4", "k5"}
    assert [k for k, _ in cached_first(todo, held.__contains__)] == ["k1", "k4", "k5", "k0", "k2", "k3"]
    assert cached_first(todo, lambda _: True) == todo
    assert cached_first(todo, lambda _: False) == todo


def _recipe(tmp_path: Path) -> Path:
    """Six shards; after the exact dedup's index, two row steps (its apply, then a filter) that `sluice run`'s
    prefetch does not work ahead: each reads the step before it through the cache."""
    data = tmp_path / "in"
    data.mkdir()
    for f in range(SHARDS):
        lines = [
            json.dumps({"id": f"{f}-{i}", "text": f"doc  {f} {i % 1400}  " + "word  " * (3 + (i * 7) % 40), "n": i})
            for i in range(1500)
        ]
        (data / f"p{f}.jsonl").write_text("\n".join(lines) + "\n")
    recipe = {
        "project_name": "handoff",
        "dataset_path": str(data),
        "export_path": str(tmp_path / "out" / "handoff.jsonl"),
        "partition": {"pack": False},  # a shard per file: several shards from small files
        "process": [
            {"whitespace_normalization_mapper": None},
            {"text_length_filter": {"min_len": 60}},
            {"document_deduplicator": None},
            {"words_num_filter": {"min_num": 12}},
        ],
    }
    path = tmp_path / "handoff.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _run(recipe: Path, home: Path, budget: int, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, bytes]:
    """The recipe run from a fresh home with a cache of `budget` bytes: each row step's reads of the step
    before it ({reading step: [True for a read from memory, False for one decoded from disk, ...]}), and the
    export's bytes."""
    monkeypatch.setenv("SLUICE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    reads: dict = collections.defaultdict(list)

    def read_base(self, path, take=False):
        if take:
            reads[path.parent.name].append(FRAMES.holds(path))
        return READ_BASE(self, path, take=take)

    monkeypatch.setattr(CheckpointStore, "read_base", read_base)
    monkeypatch.setattr(FRAMES, "max_bytes", budget)
    FRAMES.clear()
    try:
        report = run_recipe(recipe, echo=lambda _: None)
    finally:
        FRAMES.clear()
    assert report.status == "completed"
    export = Path(yaml.safe_load(recipe.read_text())["export_path"])
    return reads, export.read_bytes()


def test_a_cache_smaller_than_a_step_still_serves_the_shards_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = _recipe(tmp_path)
    shards = discover_shards(str(tmp_path / "in"), PartitionSpec(pack=False))  # as the recipe cuts them
    frame = max(int(read_shard(s, "text").kept.estimated_size()) for s in shards)
    later = "op02_document_deduplicator"  # the apply step's output, read by the filter after it

    roomy, export = _run(recipe, tmp_path / "roomy", 1 << 30, monkeypatch)
    assert len(roomy[later]) == SHARDS and all(roomy[later])  # every read from memory

    # A cache of about three shards' frames: a step's six frames (and their dropped rows) outgrow it.
    small, small_export = _run(recipe, tmp_path / "small", 3 * frame, monkeypatch)
    monkeypatch.setattr(graph, "cached_first", lambda todo, cached: todo)  # input order, whatever is held
    in_order, in_order_export = _run(recipe, tmp_path / "in_order", 3 * frame, monkeypatch)
    assert small_export == export and in_order_export == export
    # In input order, the shard read first is the one written longest ago, pushed out already, and each miss's
    # decode and output push out the next to read: every read decodes. Cached first, those still held are read
    # from memory.
    assert len(in_order[later]) == SHARDS and not any(in_order[later])
    assert len(small[later]) == SHARDS and 0 < sum(small[later]) < SHARDS
    assert small[later] == sorted(small[later], reverse=True)  # the hits first


def test_a_step_whose_next_step_runs_in_another_process_keeps_no_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the multiprocess or Celery executor each step runs in a process of its own (a worker may live on):
    the frames it writes would never be read there, only add to its memory. Here the in-process executor is
    made to look like another one to the steps."""
    recipe = _recipe(tmp_path)
    _, export = _run(recipe, tmp_path / "here", 1 << 30, monkeypatch)
    monkeypatch.setattr(graph, "IN_PROCESS", "not_this_executor")
    reads, elsewhere_export = _run(recipe, tmp_path / "elsewhere", 1 << 30, monkeypatch)
    assert FRAMES.max_bytes == 0
    assert elsewhere_export == export
    assert reads["op02_document_deduplicator"] == [False] * SHARDS  # every read from the file
