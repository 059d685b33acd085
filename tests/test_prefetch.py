"""The source's parse started ahead of its step (`pipeline_defs/prefetch.py`): the same rows as the step's own
parse, handed over once, never for bytes that changed, within its memory budget."""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from pipeline_defs.prefetch import SourcePrefetch
from pipeline_defs.recipe import PartitionSpec
from pipeline_defs.shards import discover_shards, read_shard, shard_content_hash


def _input(path: Path, files: int = 3, rows: int = 40) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        lines = [json.dumps({"text": f"document {f}-{i} " + "word " * (i % 9), "n": i}) for i in range(rows)]
        lines.insert(5, "{not json")  # quarantined, with its line
        (path / f"p{f}.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_a_prefetched_shard_is_the_rows_the_step_would_have_parsed(tmp_path: Path) -> None:
    shards = discover_shards(str(_input(tmp_path / "in")), PartitionSpec())
    prefetch = SourcePrefetch(shards, "text")
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
    (shard,) = discover_shards(str(data), PartitionSpec())
    prefetch = SourcePrefetch([shard], "text")
    assert prefetch.take(shard, "another hash") is None  # the step hashed other bytes: it parses them itself


def test_the_budget_holds_parsed_shards_back_and_shards_skipped_are_let_go(tmp_path: Path) -> None:
    shards = discover_shards(str(_input(tmp_path / "in", files=5)), PartitionSpec())
    prefetch = SourcePrefetch(shards, "text", budget_bytes=1)  # one parsed shard waits at a time
    assert prefetch.take(shards[0], shard_content_hash(shards[0])) is not None
    deadline = time.monotonic() + 30
    while shards[1].key not in prefetch._done and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # a thread not held back would have parsed the next small shards by now
    assert set(prefetch._done) == {shards[1].key}
    # The step takes the fourth shard next (the second and third were current): those two are let go.
    fourth = prefetch.take(shards[3], shard_content_hash(shards[3]))
    assert fourth is not None and fourth.read.kept["n"].len() == 40
    assert shards[1].key not in prefetch._done and shards[2].key not in prefetch._done
    assert prefetch.take(shards[2], shard_content_hash(shards[2])) is None
    assert prefetch.take(shards[4], shard_content_hash(shards[4])) is not None
    assert prefetch._held == 0
    prefetch.stop()


def test_stop_lets_a_waiting_step_parse_for_itself(tmp_path: Path) -> None:
    shards = discover_shards(str(_input(tmp_path / "in", files=2)), PartitionSpec())
    prefetch = SourcePrefetch(shards, "text", budget_bytes=1)
    prefetch.stop()
    assert all(prefetch.take(s, shard_content_hash(s)) is None for s in shards)
    assert isinstance(read_shard(shards[0], "text").kept, pl.DataFrame)
