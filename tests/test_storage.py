"""The checkpoint IO manager: round trips, loads all partitions for global stages, never shows half a file."""

import random
import string
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ops_library.columns import ROW_ID, STATS
from resources.storage import (
    BASE_ROW,
    CHANGED_PREFIX,
    FRAMES,
    LOAD_ALL_PARTITIONS,
    Base,
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


def test_checkpoint_files_are_renamed_into_place_without_fsync_other_atomic_writes_with_it(
    tmp_path: Path, fsync_calls: list[str]
) -> None:
    synced = fsync_calls
    store = CheckpointStore(base_dir=str(tmp_path / "ck"))
    path = store.path(["r", "a"], "f.jsonl@00000")
    store.write(pl.DataFrame({"x": [1, 2]}), path)
    assert path.exists() and (path.parent / (path.name + ".meta.json")).exists() and synced == []
    with atomic_write(tmp_path / "export.jsonl") as tmp:
        tmp.write_text("{}\n")
    assert len(synced) == 1 and Path(synced[0]).parent == tmp_path and synced[0].endswith(".tmp")


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


def test_a_frame_taken_leaves_the_cache_and_one_decoded_to_be_taken_is_not_kept(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    FRAMES.clear()
    path = store.path(["r", "a"], "k@00000")
    store.write(pl.DataFrame({"x": [1, 2, 3]}), path, "fp")
    assert FRAMES.holds(path)
    assert store.read_base(path).frame["x"].to_list() == [1, 2, 3]  # an ordinary read keeps it
    assert FRAMES.holds(path)
    assert store.read_base(path, take=True).frame["x"].to_list() == [1, 2, 3]  # its last read: from memory
    assert not FRAMES.holds(path)
    assert store.read_base(path, take=True).frame["x"].to_list() == [1, 2, 3]  # decoded from the file
    assert not FRAMES.holds(path)
    FRAMES.clear()


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


# --- selections: a filter's rows stored as positions in the checkpoint it read ----------------------------------


def _docs(n: int) -> pl.DataFrame:
    """A shard as a step sees it: row ids, long texts (most of the bytes), a small field and stats."""
    rng = random.Random(n)
    return pl.DataFrame(
        {
            ROW_ID: [f"f.jsonl:{i + 1}" for i in range(n)],
            "text": ["".join(rng.choices(string.ascii_letters + " ", k=400)) for _ in range(n)],
            "n": list(range(n)),
            STATS: [{"len": 10 * i} for i in range(n)],
        }
    )


def _written_base(store: CheckpointStore, df: pl.DataFrame, name: str = "op00") -> Base:
    path = store.path(["r", name], "f.jsonl@00000")
    store.write(df, path, "fp-base")
    return store.read_base(path)


def test_a_filters_rows_are_stored_as_positions_in_the_checkpoint_it_read(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    base = _written_base(store, _docs(200))
    # What a filter returns: every third row, the text untouched, its stat added to the stats struct.
    kept = base.frame.filter(pl.col("n") % 3 == 0).with_columns(pl.struct(pl.col("n").alias("len")).alias(STATS))
    path = store.path(["r", "op01"], "f.jsonl@00000")
    meta = store.write(kept, path, "fp", base=base)
    assert meta.base == "r/op00/f.jsonl@00000.parquet" and meta.base_xxh3 == base.meta.xxh3
    assert meta.columns == kept.columns and meta.rows == kept.height
    on_disk = pl.read_parquet(path)
    assert on_disk.columns == [BASE_ROW, STATS]  # the text, the id and `n` are the base's
    assert on_disk[BASE_ROW].to_list() == list(range(0, 200, 3))
    whole = store.write(kept, store.path(["r", "whole"], "f.jsonl@00000"), "fp")  # no base: every column
    assert meta.bytes * 3 < whole.bytes
    FRAMES.clear()  # rebuilt from the two files, not served from memory
    assert_frame_equal(store.read(path), kept)


def _even_rows(store: CheckpointStore, n: int) -> Path:
    """A checkpoint of `n` docs, and one of its even rows stored as a selection of it; the frame cache emptied."""
    first = _written_base(store, _docs(n))
    second_path = store.path(["r", "op01"], "f.jsonl@00000")
    store.write(first.frame.filter(pl.col("n") % 2 == 0), second_path, "fp1", base=first)
    FRAMES.clear()
    return second_path


def test_a_selection_of_a_selection_reads_back_through_the_chain(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    second_path = _even_rows(store, 120)
    second = store.read_base(second_path)
    third = second.frame.filter(pl.col("n") % 3 == 0)
    third_path = store.path(["r", "op02"], "f.jsonl@00000")
    meta = store.write(third, third_path, "fp2", base=second)
    assert meta.base == "r/op01/f.jsonl@00000.parquet"
    assert pl.read_parquet(third_path)[BASE_ROW].to_list() == list(range(0, 60, 3))  # positions in op01's rows
    FRAMES.clear()
    assert_frame_equal(store.read(third_path), third)
    assert store.read(third_path)["n"].to_list() == list(range(0, 120, 6))


def test_a_long_chain_of_mappers_and_filters_reads_back_row_for_row(tmp_path: Path) -> None:
    # The shape of a recipe's first phase: mappers that rewrite some texts (patches, overlapping rows, one to null),
    # filters that keep fewer rows and add stats, a column added on the way; each step a selection of the last.
    store = CheckpointStore(base_dir=str(tmp_path))
    steps = [
        lambda f: f.with_columns(
            pl.when(pl.col("n") % 5 == 0).then(pl.col("text").str.to_uppercase()).otherwise("text")
        ),
        lambda f: f.filter(pl.col("n") % 7 != 3).with_columns(pl.struct((pl.col("n") * 2).alias("len")).alias(STATS)),
        lambda f: f.with_columns(pl.when(pl.col("n") % 10 == 0).then(pl.lit("ten")).otherwise("text").alias("text")),
        lambda f: f.with_columns(pl.when(pl.col("n") == 20).then(None).otherwise("text").alias("text")),
        lambda f: f.filter(pl.col("n") % 4 != 1).with_columns((pl.col("n") + 1).alias("m")),
        lambda f: f.filter(pl.col("n") < 250),
    ]
    base = _written_base(store, _docs(300))
    expected = [base.frame]
    for i, step in enumerate(steps, start=1):
        out = step(base.frame)
        path = store.path(["r", f"op{i:02d}"], "f.jsonl@00000")
        meta = store.write(out, path, f"fp{i}", base=base)
        assert meta.base is not None  # a selection of the step before
        expected.append(out)
        base = store.read_base(path)
    assert store.read_base(store.path(["r", "op01"], "f.jsonl@00000")).meta.patched == ["text"]
    for i, frame in enumerate(expected[1:], start=1):
        FRAMES.clear()  # each rebuilt from the files, down to op00
        assert_frame_equal(store.read(store.path(["r", f"op{i:02d}"], "f.jsonl@00000"), cache=False), frame)
    assert expected[-1].filter(pl.col("n") == 20)["text"].to_list() == [None]
    assert expected[-1].filter(pl.col("n") == 30)["text"].to_list() == ["ten"]  # the later patch of the two


def test_a_read_without_cache_leaves_what_it_rebuilt_out_of_the_frame_cache(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    second_path = _even_rows(store, 60)
    uncached = store.read(second_path, cache=False)  # the selection and its base, rebuilt from the files
    assert len(FRAMES) == 0
    assert_frame_equal(store.read(second_path), uncached)
    assert len(FRAMES) == 1  # the rebuilt selection is kept for the next read


def test_dropped_rows_with_their_reasons_are_a_selection_too(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    base = _written_base(store, _docs(50))
    mask = pl.col("n") < 40
    kept = base.frame.filter(mask)
    dropped = base.frame.filter(~mask).with_columns(pl.lit("too long").alias("__sluice_reason__"))
    store.write_step(["r", "op01"], "f.jsonl@00000", StepOutput(kept, dropped, "fp", base))
    part = store.path(["r", "op01"], "f.jsonl@00000", "dropped")
    assert pl.read_parquet(part).columns == [BASE_ROW, "__sluice_reason__"]
    FRAMES.clear()
    assert_frame_equal(store.read_dropped(["r", "op01"], "f.jsonl@00000"), dropped)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda df: df.with_columns(pl.col("text").str.to_uppercase()), id="text changed (a mapper)"),
        pytest.param(lambda df: df.reverse(), id="rows reordered"),
        pytest.param(lambda df: df.with_columns(pl.lit("new").alias(ROW_ID)), id="rows not from the base"),
        pytest.param(lambda df: df.drop(ROW_ID), id="no row ids"),
    ],
)
def test_a_frame_that_is_not_a_selection_of_its_base_is_stored_whole(tmp_path: Path, change) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    base = _written_base(store, _docs(30))
    out = change(base.frame.head(20))
    path = store.path(["r", "op01"], "f.jsonl@00000")
    meta = store.write(out, path, "fp", base=base)
    assert meta.base is None and meta.columns is None
    assert_frame_equal(pl.read_parquet(path), out)


def test_a_selection_needs_the_bulk_of_the_bytes_unchanged(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    base = _written_base(store, _docs(30))
    # Same rows and ids, but the text (most of the bytes) rewritten: storing positions would save nothing.
    out = base.frame.with_columns(pl.col("text").str.to_uppercase())
    meta = store.write(out, store.path(["r", "op01"], "f.jsonl@00000"), "fp", base=base)
    assert meta.base is None


def test_jsonl_checkpoints_are_never_selections(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path), format="jsonl")
    base = _written_base(store, _docs(30).drop(STATS))
    meta = store.write(base.frame.head(5), store.path(["r", "op01"], "f.jsonl@00000"), "fp", base=base)
    assert meta.base is None


def test_a_selection_whose_base_was_rewritten_or_removed_is_refused(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    base = _written_base(store, _docs(40))
    path = store.path(["r", "op01"], "f.jsonl@00000")
    meta = store.write(base.frame.tail(10), path, "fp", base=base)
    assert store.base_problem(meta) is None
    # The base recomputed with other content, under a valid sidecar of its own.
    store.write(_docs(40).with_columns(pl.col("text").str.to_uppercase()), base.path, "fp-base")
    FRAMES.clear()
    assert "rewritten" in store.base_problem(meta)
    with pytest.raises(CorruptCheckpointError, match="rewritten"):
        store.read(path)
    base.path.unlink()
    assert "missing" in store.base_problem(meta)
    with pytest.raises(MissingCheckpointError, match="missing"):
        store.read(path)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_jsonl_checkpoints_give_back_the_types_json_lacks(tmp_path: Path, compression: str) -> None:
    """A dedup's binary hashes, unsigned and 32-bit numbers, nested structs: JSON holds none of these types."""
    store = CheckpointStore(base_dir=str(tmp_path), format="jsonl", compression=compression)
    df = pl.DataFrame(
        {
            ROW_ID: ["a:1", "a:2", "a:3"],
            "__sluice_hash__": [b"\x00\xff\x10", b"", None],
            "sig": [[1, 2**32 - 1], [], None],
            STATS: [{"ratio": 0.25, "n": 3}, {"ratio": None, "n": 0}, None],
        },
        schema={
            ROW_ID: pl.String,
            "__sluice_hash__": pl.Binary,
            "sig": pl.List(pl.UInt32),
            STATS: pl.Struct({"ratio": pl.Float32, "n": pl.UInt8}),
        },
    )
    for frame in (df, df.clear()):
        path = store.path(["r", "hashes"], f"f.jsonl@{frame.height:05d}")
        store.write(frame, path, "fp")
        FRAMES.clear()
        assert_frame_equal(store.read(path), frame)


def test_a_mapper_that_rewrites_few_texts_stores_only_those(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path))
    base = _written_base(store, _docs(300))
    # A mapper's output: every row, the text rewritten in a quarter of them (one of those to null).
    touched = (pl.col("n") % 4 == 1) & (pl.col("n") != 5)
    out = base.frame.with_columns(
        pl.when(touched)
        .then(pl.col("text").str.to_uppercase())
        .when(pl.col("n") == 5)
        .then(None)
        .otherwise(pl.col("text"))
    )
    path = store.path(["r", "op01"], "f.jsonl@00000")
    meta = store.write(out, path, "fp", base=base)
    assert meta.base == "r/op00/f.jsonl@00000.parquet"
    assert meta.patched == ["text"]
    on_disk = pl.read_parquet(path)
    assert on_disk.columns == [BASE_ROW, "text", CHANGED_PREFIX + "text"]
    assert on_disk[CHANGED_PREFIX + "text"].sum() == 75 and on_disk["text"].null_count() == 300 - 75 + 1
    whole = store.write(out, store.path(["r", "whole"], "f.jsonl@00000"), "fp")
    assert meta.bytes * 2 < whole.bytes
    FRAMES.clear()
    assert_frame_equal(store.read(path), out)
    # and a filter after it: a selection of the patched checkpoint, rebuilt through both
    patched = store.read_base(path)
    kept = patched.frame.filter(pl.col("n") % 3 == 0)
    kept_path = store.path(["r", "op02"], "f.jsonl@00000")
    assert store.write(kept, kept_path, "fp", base=patched).base == "r/op01/f.jsonl@00000.parquet"
    FRAMES.clear()
    assert_frame_equal(store.read(kept_path), kept)


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "jsonl"])
def test_the_sources_rows_are_stored_as_a_reference_to_the_input_shard(tmp_path: Path, fmt: str) -> None:
    from pipeline_defs.recipe import PartitionSpec
    from pipeline_defs.shards import discover_shards, read_shard, shard_content_hash, shard_reference

    data = tmp_path / "in" / "a.jsonl"
    data.parent.mkdir()
    rows = _docs(300).drop(STATS)
    rows.drop(ROW_ID).write_ndjson(data)
    shard = discover_shards(str(data), PartitionSpec(size=100))[1]
    kept = read_shard(shard, "text").kept
    store = CheckpointStore(base_dir=str(tmp_path / "ck"), format=fmt)
    path = store.path(["r", "source"], shard.key)
    ref = shard_reference(shard, "text", shard_content_hash(shard))
    meta = store.write_step(["r", "source"], shard.key, StepOutput(kept, None, "fp", input=ref))
    assert meta.input == "shard" and meta.rows == 100 and meta.bytes < 2000  # the args, not the texts
    FRAMES.clear()
    assert_frame_equal(store.read(path), kept)  # read again from the input's bytes
    assert store.read(path)["n"].to_list() == list(range(100, 200))
    # a filter after it is a selection of the reference, rebuilt through it
    base = store.read_base(path)
    sel = store.write(base.frame.filter(pl.col("n") % 2 == 0), store.path(["r", "op00"], shard.key), "f", base=base)
    assert sel.base == (None if fmt == "jsonl" else f"r/source/{path.name}")  # JSONL: never selections
    FRAMES.clear()
    assert store.read(store.path(["r", "op00"], shard.key))["n"].to_list() == list(range(100, 200, 2))
    # the input rewritten, or gone: the reference is refused, never read as other rows
    data.write_text(data.read_text().replace('"n":150', '"n":-150'))
    FRAMES.clear()
    with pytest.raises(CorruptCheckpointError, match=r"a\.jsonl changed since the shard was read"):
        store.read(path)
    data.unlink()
    with pytest.raises(MissingCheckpointError, match=r"its input .*a\.jsonl cannot be read"):
        store.read(path)


def test_an_input_reference_of_an_unknown_reader_or_another_reader_version_is_refused(tmp_path: Path) -> None:
    import pipeline_defs.shards as shards_mod
    from resources.storage import INPUT_READERS, InputRef

    store = CheckpointStore(base_dir=str(tmp_path))
    df = pl.DataFrame({"text": ["a", "b"]})
    path = store.path(["r", "source"], "f.jsonl@00000")
    store.write(df, path, "fp", input=InputRef("nobody", {}))
    FRAMES.clear()
    with pytest.raises(CorruptCheckpointError, match="'nobody', a reader this process does not have"):
        store.read(path)
    assert "shard" in INPUT_READERS
    store.write(df, path, "fp", input=InputRef("shard", {"version": shards_mod.READER_VERSION + 1}))
    FRAMES.clear()
    with pytest.raises(CorruptCheckpointError, match="input reader version"):
        store.read(path)
