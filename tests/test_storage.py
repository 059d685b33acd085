"""The checkpoint IO manager: round trips, loads all partitions for global stages, never shows half a file."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resources.storage import (
    LOAD_ALL_PARTITIONS,
    CheckpointStore,
    CorruptCheckpointError,
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
