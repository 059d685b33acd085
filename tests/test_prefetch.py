"""The first phase's work started ahead of its steps (`pipeline_defs/prefetch.py`): the source's parse gives the
same rows as the step's own parse, and each row step's ops the same rows as the step's own run; handed over once,
never for bytes or upstream rows that changed, never what failed, within its memory budget."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from pipeline_defs import prefetch as prefetch_mod
from pipeline_defs.execute import run_recipe
from pipeline_defs.fingerprints import node_fingerprint
from pipeline_defs.graph import Node, RecipeGraph, build_recipe_graph
from pipeline_defs.opchain import run_ops
from pipeline_defs.prefetch import Prefetch, ahead_steps
from pipeline_defs.recipe import PartitionSpec, load_recipe
from pipeline_defs.shards import discover_shards, read_shard, shard_content_hash
from tests.conftest import ROOT

# a shard per file: the tests need several shards, from files smaller than a shard
ONE_PER_FILE = PartitionSpec(pack=False)


def _input(path: Path, files: int = 3, rows: int = 40) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        lines = [json.dumps({"text": f"document {f}-{i} " + "word " * (i % 9), "n": i}) for i in range(rows)]
        lines.insert(5, "{not json")  # quarantined, with its line
        (path / f"p{f}.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_a_prefetched_shard_is_the_rows_the_step_would_have_parsed(tmp_path: Path) -> None:
    shards = discover_shards(str(_input(tmp_path / "in")), ONE_PER_FILE)
    prefetch = Prefetch(shards, "text")
    for shard in shards:
        parsed = prefetch.take(shard, shard_content_hash(shard))
        assert parsed is not None and parsed.seconds > 0
        own = read_shard(shard, "text")
        assert_frame_equal(parsed.read.kept, own.kept)
        assert_frame_equal(parsed.read.quarantined, own.quarantined)
        assert parsed.read.quarantined.height == 1
        assert prefetch.take(shard, shard_content_hash(shard)) is None  # handed over once


def test_a_shard_whose_bytes_changed_since_is_parsed_by_the_step(tmp_path: Path) -> None:
    data = _input(tmp_path / "in", files=1)
    (shard,) = discover_shards(str(data), ONE_PER_FILE)
    prefetch = Prefetch([shard], "text")
    assert prefetch.take(shard, "another hash") is None  # the step hashed other bytes: it parses them itself


def test_the_budget_holds_parsed_shards_back_and_shards_skipped_are_let_go(tmp_path: Path) -> None:
    shards = discover_shards(str(_input(tmp_path / "in", files=5)), ONE_PER_FILE)
    prefetch = Prefetch(shards, "text", budget_bytes=1)  # one parsed shard waits at a time
    assert prefetch.take(shards[0], shard_content_hash(shards[0])) is not None
    deadline = time.monotonic() + 30
    while 1 not in prefetch._done and time.monotonic() < deadline:  # position i: the parse of shard i
        time.sleep(0.01)
    time.sleep(0.2)  # a thread not held back would have parsed the next small shards by now
    assert set(prefetch._done) == {1}
    # The step takes the fourth shard next (the second and third were current): those two are let go.
    fourth = prefetch.take(shards[3], shard_content_hash(shards[3]))
    assert fourth is not None and fourth.read.kept["n"].len() == 40
    assert 1 not in prefetch._done and 2 not in prefetch._done
    assert prefetch.take(shards[2], shard_content_hash(shards[2])) is None
    assert prefetch.take(shards[4], shard_content_hash(shards[4])) is not None
    assert prefetch._held == 0
    prefetch.stop()


def test_stop_lets_a_waiting_step_parse_for_itself(tmp_path: Path) -> None:
    shards = discover_shards(str(_input(tmp_path / "in", files=2)), ONE_PER_FILE)
    prefetch = Prefetch(shards, "text", budget_bytes=1)
    prefetch.stop()
    assert all(prefetch.take(s, shard_content_hash(s)) is None for s in shards)
    assert isinstance(read_shard(shards[0], "text").kept, pl.DataFrame)


# --- the first phase's row steps, worked ahead ---------------------------------------------------------------


def _graph(tmp_path: Path, data: Path) -> RecipeGraph:
    recipe = {
        "project_name": "ahead",
        "dataset_path": str(data),
        "export_path": str(tmp_path / "out" / "ahead.jsonl"),
        "partition": {"pack": False},  # a shard per file: several shards from small files
        "process": [
            {"whitespace_normalization_mapper": None},
            {"text_length_filter": {"min_len": 20}},
            {"words_num_filter": {"min_num": 4}},
            {"document_deduplicator": {"lowercase": True}},
            {"clean_links_mapper": None},
        ],
    }
    path = tmp_path / "ahead.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return build_recipe_graph(load_recipe(path))


def _source(graph: RecipeGraph) -> Node:
    return next(n for n in graph.nodes.values() if n.kind == "source")


def _node(graph: RecipeGraph, step: str) -> Node:
    """The asset graph's node of a row step: the fingerprints expected below are the steps' own."""
    return next(n for n in graph.nodes.values() if n.key.path[-1] == step)


def test_the_first_phases_row_steps_are_worked_ahead_as_the_steps_would_run_them(
    tmp_path: Path, sluice_home: Path
) -> None:
    graph = _graph(tmp_path, _input(tmp_path / "in"))
    # the row steps before the first global stage; the dedup's stages and the steps after it are left to Dagster
    names = [step.name for step in ahead_steps(graph.recipe)]
    assert names == ["op00_whitespace_normalization_mapper", "op01_text_length_filter", "op02_words_num_filter"]
    shards = discover_shards(str(tmp_path / "in"), ONE_PER_FILE)
    prefetch = Prefetch(shards, "text", ahead_steps(graph.recipe), source_code=_source(graph).code, chunks=2)
    assert all(prefetch.works_ahead(name) for name in names)  # its steps take their shards in input order
    assert not prefetch.works_ahead("op03_document_deduplicator")
    frames, fps = {}, {}
    for shard in shards:  # the order the steps take in: every shard's parse, then each step on every shard
        content = shard_content_hash(shard)
        frames[shard.key] = prefetch.take(shard, content).read.kept
        fps[shard.key] = node_fingerprint(_source(graph), [content])
    for step in ahead_steps(graph.recipe):
        ops = [(spec, spec.build()) for spec in step.specs]
        for shard in shards:
            fp = node_fingerprint(_node(graph, step.name), [fps[shard.key]])
            ahead = prefetch.take_step(step.name, shard.key, fp)
            kept, dropped, per_op = run_ops(ops, frames[shard.key], shard.key)
            assert ahead is not None and ahead.fingerprint == fp and ahead.rows_in == frames[shard.key].height
            assert_frame_equal(ahead.kept, kept)
            assert len(ahead.dropped) == len(dropped)
            for mine, theirs in zip(ahead.dropped, dropped, strict=True):
                assert_frame_equal(mine, theirs)
            assert [{k: o[k] for k in ("op", "rows_in", "rows_out", "dropped")} for o in ahead.per_op] == [
                {k: o[k] for k in ("op", "rows_in", "rows_out", "dropped")} for o in per_op
            ]
            assert ahead.seconds > 0 and "cpu_seconds" in ahead.usage
            frames[shard.key], fps[shard.key] = kept, fp
    assert sum(f.height for f in frames.values()) < 3 * 40  # the filters dropped rows: the test saw them work
    prefetch.stop()


def test_a_result_from_other_input_or_a_failed_op_is_left_to_the_step(
    tmp_path: Path, sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = _graph(tmp_path, _input(tmp_path / "in"))
    shards = discover_shards(str(tmp_path / "in"), ONE_PER_FILE)
    real = prefetch_mod.run_ops

    def failing(ops, df, shard, *args, **kwargs):
        if shard == shards[1].key and ops[0][0].step_name == "op01_text_length_filter":
            raise RuntimeError("this op fails on this shard")
        return real(ops, df, shard, *args, **kwargs)

    monkeypatch.setattr(prefetch_mod, "run_ops", failing)
    prefetch = Prefetch(shards, "text", ahead_steps(graph.recipe), source_code=_source(graph).code)
    fps = {}
    for shard in shards:
        content = shard_content_hash(shard)
        assert prefetch.take(shard, content) is not None
        fps[shard.key] = node_fingerprint(_source(graph), [content])
    first, second, third = ahead_steps(graph.recipe)
    # a step whose upstream checkpoint holds other rows than the thread's computes for itself
    assert prefetch.take_step(first.name, shards[0].key, "another fingerprint") is None
    for shard in shards[1:]:
        fps[shard.key] = node_fingerprint(_node(graph, first.name), [fps[shard.key]])
        assert prefetch.take_step(first.name, shard.key, fps[shard.key]) is not None
    # shard 0's step computed it itself, so the thread, which never had it taken, went on with its own result
    # on shard 0 (the same rows); the op that failed on shard 1 is left to the step, and so is what follows it
    results = {}
    for step in (second, third):
        for shard in shards[1:]:
            fps[shard.key] = node_fingerprint(_node(graph, step.name), [fps[shard.key]])
            results[step.name, shard.key] = prefetch.take_step(step.name, shard.key, fps[shard.key])
    assert results[second.name, shards[1].key] is None and results[third.name, shards[1].key] is None
    assert results[second.name, shards[2].key] is not None and results[third.name, shards[2].key] is not None
    assert prefetch._held == 0
    prefetch.stop()


def test_an_input_whose_frames_do_not_fit_the_budget_is_only_parsed_ahead(tmp_path: Path, sluice_home: Path) -> None:
    graph = _graph(tmp_path, _input(tmp_path / "in"))
    shards = discover_shards(str(tmp_path / "in"), ONE_PER_FILE)
    # every shard's frame would wait between two steps: more than the budget, so the steps run their own ops
    prefetch = Prefetch(shards, "text", ahead_steps(graph.recipe), source_code=_source(graph).code, budget_bytes=1)
    fps = {}
    for shard in shards:
        content = shard_content_hash(shard)
        assert prefetch.take(shard, content) is not None  # the parse is still handed over, one shard at a time
        fps[shard.key] = node_fingerprint(_source(graph), [content])
    step = ahead_steps(graph.recipe)[0]
    assert not prefetch.works_ahead(step.name)  # its steps may take their shards in any order
    for shard in shards:
        assert (
            prefetch.take_step(step.name, shard.key, node_fingerprint(_node(graph, step.name), [fps[shard.key]]))
            is None
        )
    assert prefetch._held == 0
    prefetch.stop()


# --- started by the `sluice` script before it imports Dagster --------------------------------------------------


def test_importing_the_prefetch_does_not_import_dagster() -> None:
    probe = "import sys, pipeline_defs.prefetch, pipeline_defs.console; print('dagster' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_prefetch_started_before_the_run_is_the_one_it_uses(
    tmp_path: Path, sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _input(tmp_path / "in")
    graph = _graph(tmp_path, data)
    made: list[Prefetch] = []
    init = Prefetch.__init__

    def counted(self: Prefetch, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(Prefetch, "__init__", counted)
    early = prefetch_mod.start_early(graph.recipe.source)
    assert early is not None and made == [early]
    report = run_recipe(graph.recipe.source, echo=lambda _: None)
    assert made == [early]  # `sluice run` found it doing what it would have started: kept, not replaced
    assert report.export["input"] == 3 * 41 and prefetch_mod._current is None
    with dg.DagsterInstance.get() as instance:
        for name, flag in (("source", "prefetched"), ("op02_words_num_filter", "ran_ahead")):
            records = instance.fetch_materializations(dg.AssetKey(["ahead", name]), limit=10).records
            assert len(records) == 3 and all(r.asset_materialization.metadata[flag].value for r in records)

    # one file changed: the prefetch started before the next run parses that file's shard, not the others
    with (data / "p1.jsonl").open("a") as fh:
        fh.write(json.dumps({"text": "one more document of several words", "n": 99}) + "\n")
    again = prefetch_mod.start_early(graph.recipe.source)
    assert again is not None and again is not early
    shards = discover_shards(str(data), ONE_PER_FILE)
    taken = {s.file.path.name: again.take(s, shard_content_hash(s)) for s in shards}
    assert taken["p0.jsonl"] is None and taken["p2.jsonl"] is None and taken["p1.jsonl"] is not None
    prefetch_mod.stop()


def test_a_run_that_asks_for_other_work_replaces_the_prefetch_started_before_it(
    tmp_path: Path, sluice_home: Path
) -> None:
    graph = _graph(tmp_path, _input(tmp_path / "in"))
    early = prefetch_mod.start_early(graph.recipe.source)
    assert early is not None
    shards = discover_shards(str(tmp_path / "in"), ONE_PER_FILE)
    fewer = prefetch_mod.start(shards, "text", ahead_steps(graph.recipe)[:1], source_code=_source(graph).code)
    assert fewer is not early and early._stopped  # other steps: a new prefetch, the early one stopped
    assert prefetch_mod.start(shards, "other_text_key", (), source_code=None) is not fewer
    prefetch_mod.stop()
