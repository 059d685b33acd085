"""The checkpoint IO manager: round trips, loads all partitions for global stages, never shows half a file."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resources.storage import (
    FRAMES,
    LOAD_ALL_PARTITIONS,
    CheckpointMeta,
    CheckpointStore,
    CorruptCheckpointError,
    FrameCache,
    MissingCheckpointError,
    ParquetCheckpointIOManager,
    StepOutput,
    atomic_write,
)


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    path = store.path(["r", "a"], "f.jsonl@00000")
    old = pl.DataFrame({"x": [1, 2]})
    store.write(old, path)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic_write(path) as tmp:
        tmp.write_bytes(b"PAR1 half a parquet file")
        raise Boom
    assert_frame_equal(pl.read_parquet(path), old)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".meta.json"]


def test_temp_file_is_invisible_until_renamed(tmp_path: Path) -> None:
    path = tmp_path / "a" / "p.parquet"
    with atomic_write(path) as tmp:
        pl.DataFrame({"x": [1]}).write_parquet(tmp)
        assert tmp.exists() and not path.exists() and tmp.name.startswith(".")
    assert path.exists() and not tmp.exists()


def test_io_manager_round_trip_through_dagster(tmp_path: Path, sluice_home: Path) -> None:
    parts = dg.StaticPartitionsDefinition(["f.jsonl@00000", "f.jsonl@00001"])
    store = CheckpointStore(base_dir=str(tmp_path / "ck"))

    @dg.asset(partitions_def=parts, key_prefix=["r"])
    def rows(context: dg.AssetExecutionContext) -> StepOutput:
        i = int(context.partition_key[-1])
        kept = pl.DataFrame({"text": [f"kept{i}", "ü ☃ 中文"]})
        return StepOutput(kept, pl.DataFrame({"text": [f"gone{i}"]}), fingerprint=f"fp{i}")

    @dg.asset(partitions_def=parts, key_prefix=["r"], ins={"rows": dg.AssetIn(key=["r", "rows"])})
    def same(rows: pl.DataFrame) -> pl.DataFrame:
        return rows

    @dg.asset(key_prefix=["r"], ins={"rows": dg.AssetIn(key=["r", "rows"], metadata={LOAD_ALL_PARTITIONS: True})})
    def everything(rows: dict[str, pl.DataFrame]) -> pl.DataFrame:
        return pl.concat([rows[k] for k in sorted(rows)])

    io = ParquetCheckpointIOManager(store=store)
    for key in parts.get_partition_keys():
        assert dg.materialize([rows, same], partition_key=key, resources={"io_manager": io}).success
    assert dg.materialize([rows, same, everything], selection=[everything.key], resources={"io_manager": io}).success

    assert_frame_equal(
        store.read(store.path(["r", "same"], "f.jsonl@00001")), pl.DataFrame({"text": ["kept1", "ü ☃ 中文"]})
    )
    assert store.read_dropped(["r", "rows"], "f.jsonl@00000")["text"].to_list() == ["gone0"]
    assert store.read_dropped(["r", "same"], "f.jsonl@00000") is None
    assert store.read(store.path(["r", "everything"], None))["text"].to_list() == [
        "kept0",
        "ü ☃ 中文",
        "kept1",
        "ü ☃ 中文",
    ]
    assert store.fingerprint(["r", "rows"], "f.jsonl@00001") == "fp1"
    names = {p.name for p in (tmp_path / "ck" / "r" / "rows").iterdir() if not p.name.endswith(".meta.json")}
    assert names == {
        "f.jsonl@00000.parquet",
        "f.jsonl@00000.dropped.parquet",
        "f.jsonl@00001.parquet",
        "f.jsonl@00001.dropped.parquet",
    }


def test_missing_partition_for_a_global_stage_is_a_clear_error(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    store.write(pl.DataFrame({"x": [1]}), store.path(["r", "h"], "a@00000"))
    io = ParquetCheckpointIOManager(store=store)
    with pytest.raises(MissingCheckpointError, match=r"r/h is not materialized for 1 of 2 partitions \(a@00001\)"):
        io._read_many(["r", "h"], ["a@00000", "a@00001"], io._read)


@pytest.mark.parametrize(
    ("fmt", "compression"),
    [("parquet", "zstd"), ("parquet", "none"), ("arrow", "zstd"), ("jsonl", "gzip"), ("jsonl", "none")],
)
def test_every_storage_format_round_trips(tmp_path: Path, fmt: str, compression: str) -> None:
    store = CheckpointStore(base_dir=str(tmp_path), format=fmt, compression=compression)  # type: ignore[arg-type]
    df = pl.DataFrame({"text": ["a", "ü ☃ 中文", ""], "n": [1, 2, 3]})
    path = store.path(["r", "a"], "k@00000")
    store.write(df, path, "fp")
    FRAMES.clear()  # read the file back, not the frame this process just wrote
    assert_frame_equal(store.read(path), df)
    assert store.verify(path).rows == 3


def test_truncated_or_overwritten_checkpoint_is_detected(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    path = store.path(["r", "a"], "k@00000")
    store.write(pl.DataFrame({"x": list(range(1000))}), path, "fp")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CorruptCheckpointError, match="is corrupt"):
        store.read(path)
    store.write(pl.DataFrame({"x": [1]}), path, "fp")
    (path.with_name(path.name + ".meta.json")).unlink()
    with pytest.raises(CorruptCheckpointError, match="no readable sidecar"):
        store.read(path)


def test_a_frame_this_process_wrote_is_read_back_without_decoding(tmp_path: Path, monkeypatch) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    path = store.path(["r", "a"], "k@00000")
    df = pl.DataFrame({"text": ["a", "b"], "n": [1, 2]})
    store.write(df, path, "fp")
    monkeypatch.setattr(CheckpointStore, "_decode", lambda *a: pytest.fail("decoded a cached checkpoint"))
    assert_frame_equal(store.read(path), df)
    assert_frame_equal(store.read(path, where=pl.col("n") > 1), df.tail(1))


def test_a_checkpoint_changed_on_disk_after_writing_is_read_and_verified_not_served_from_memory(
    tmp_path: Path,
) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    path = store.path(["r", "a"], "k@00000")
    store.write(pl.DataFrame({"x": list(range(1000))}), path, "fp")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes, newer mtime
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="is corrupt"):
        store.read(path)
    # another writer (a worker process) replaced file and sidecar: the disk wins
    other = CheckpointStore(base_dir=str(tmp_path))
    other.write(pl.DataFrame({"x": [7]}), path, "fp2")
    FRAMES.put(path, CheckpointMeta.load(path), pl.DataFrame({"x": [1]}))  # what an older write left cached
    (path.with_name(path.name + ".meta.json")).write_text(
        (path.with_name(path.name + ".meta.json")).read_text().replace("fp2", "fp3")
    )
    assert store.read(path)["x"].to_list() == [7]


def test_the_frame_cache_keeps_its_byte_budget_least_recently_used_first(tmp_path: Path) -> None:
    cache = FrameCache(max_bytes=3 * 8 * 1000)  # three frames of 1000 int64
    store = CheckpointStore(base_dir=str(tmp_path))
    paths = []
    for i in range(4):
        path = store.path(["r", "a"], f"k@{i:05d}")
        store.write(pl.DataFrame({"x": [i] * 1000}), path, "fp")
        cache.put(path, CheckpointMeta.load(path), pl.DataFrame({"x": [i] * 1000}))
        paths.append(path)
        if i == 2:
            assert cache.get(paths[0]) is not None  # 0 is now the most recently used
    assert cache.get(paths[1]) is None
    assert [cache.get(p) is not None for p in (paths[0], paths[2], paths[3])] == [True, True, True]
    cache.put(paths[0], CheckpointMeta.load(paths[0]), pl.DataFrame({"x": list(range(10_000))}))  # over budget
    assert cache.get(paths[0]) is None


def test_deferred_writes_land_before_the_block_ends_and_a_failed_write_fails_it(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    frames = {f"k@{i:05d}": pl.DataFrame({"x": [i] * 100}) for i in range(5)}
    with store.deferred(writers=2):
        for k, df in frames.items():
            assert store.write_step(["r", "a"], k, StepOutput(df, df.head(1), "fp")) is None
    FRAMES.clear()
    for k, df in frames.items():
        assert_frame_equal(store.read(store.path(["r", "a"], k)), df)
        assert_frame_equal(store.read_dropped(["r", "a"], k), df.head(1))
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where a directory must go")
    bad = CheckpointStore(base_dir=str(blocker))
    with pytest.raises(OSError), bad.deferred():
        bad.write_step(["r", "a"], "k@00000", StepOutput(frames["k@00000"]))


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_parquet_checkpoints_are_cut_into_a_row_group_per_polars_thread(
    tmp_path: Path, compression: str, monkeypatch
) -> None:
    import pyarrow.parquet as pq

    monkeypatch.setattr(pl, "thread_pool_size", lambda: 4)  # polars encodes row groups in parallel, one per thread
    store = CheckpointStore(base_dir=str(tmp_path), compression=compression)
    df = pl.DataFrame({"id": [str(i) for i in range(10_000)], "text": [f"document {i} " * 20 for i in range(10_000)]})
    path = store.path(["op"], "shard")
    store.write(df, path)
    FRAMES.clear()  # read the file, not the frame this process just wrote
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    assert_frame_equal(store.read(path), df)
    small = df.head(1500)  # never below 1,024 rows a group
    store.write(small, path)
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
