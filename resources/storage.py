"""Checkpoints: each (asset, partition) is one file under the checkpoint dir, written atomically, with a
sidecar `<file>.meta.json` holding its row count, byte size, content hash (xxh3) and fingerprint.

A materialization *is* the checkpoint: downstream steps read it back through the IO manager, which checks
size, hash and row count on every read, so a truncated or corrupted file is reported, never half-read. A
step's output has two parts, the rows that go on (`<partition>.<fmt>`) and the rows it removed, with their
reasons (`<partition>.dropped.<fmt>`). The fingerprint (recipe params and input content, chained from the
source) says whether a checkpoint is still valid for the current recipe and input.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import dagster as dg
import polars as pl
import xxhash

UNPARTITIONED = "__all__"
# Input metadata key: the consumer wants every partition of a partitioned upstream, as {key: frame}.
LOAD_ALL_PARTITIONS = "sluice/load_all_partitions"
_SUFFIX = {"parquet": ".parquet", "arrow": ".arrow", "jsonl": ".jsonl"}


def row_group_rows(df: pl.DataFrame) -> int:
    """Rows per Parquet row group: polars encodes (and decodes) a file's row groups in parallel, one per thread,
    so a shard is cut into at least as many as polars has threads (and into 128 MB pieces beyond that), never
    below 1,024 rows. One row group per shard encoded on one core: 0.20 s for 20k documents (55 MB) on 2 cores,
    against 0.10 s in two."""
    groups = max(pl.thread_pool_size(), -(-int(df.estimated_size()) // (128 << 20)))
    return max(1024, -(-df.height // groups))


@contextmanager
def atomic_write(path: Path):
    """Yield a temp path beside `path`; on success rename it over `path`, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class MissingCheckpointError(FileNotFoundError):
    pass


class CorruptCheckpointError(OSError):
    """A checkpoint whose bytes do not match its sidecar (truncated, overwritten, or half-copied)."""


@dataclass
class StepOutput:
    """What a step hands the IO manager: rows that go on, rows dropped (with reasons), and its fingerprint."""

    kept: pl.DataFrame
    dropped: pl.DataFrame | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class CheckpointMeta:
    rows: int
    bytes: int
    xxh3: str
    fingerprint: str
    written_at: str
    # Rows of the step's dropped part written beside it (None: it dropped nothing), so a lost part is noticed.
    dropped: int | None = None

    @classmethod
    def load(cls, path: Path) -> CheckpointMeta | None:
        try:
            return cls(**json.loads(meta_path(path).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def file_digest(path: Path) -> tuple[int, str]:
    """(bytes, xxh3) of a file, read in 1 MiB chunks."""
    h = xxhash.xxh3_64()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _hash(data: bytes) -> str:
    return xxhash.xxh3_64_hexdigest(data)


class FrameCache:
    """Frames this process wrote, so the next step's read of them skips decoding (least recently used first
    out, `max_bytes` in all). A cached frame is returned only while its file is the one this process wrote:
    same sidecar, same size and modification time; anything else is read from disk and verified."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._frames: OrderedDict[str, tuple[CheckpointMeta, tuple[int, int], pl.DataFrame, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, path: Path, meta: CheckpointMeta, df: pl.DataFrame) -> None:
        size = int(df.estimated_size())
        st = path.stat()
        with self._lock:
            self._drop(str(path))
            if size > self.max_bytes:
                return
            self._frames[str(path)] = (meta, (st.st_size, st.st_mtime_ns), df, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._frames)))

    def get(self, path: Path) -> pl.DataFrame | None:
        with self._lock:
            hit = self._frames.get(str(path))
            if hit is not None:
                self._frames.move_to_end(str(path))
        if hit is None:
            return None
        meta, stamp, df, _ = hit
        try:
            st = path.stat()
        except OSError:
            return None
        if (st.st_size, st.st_mtime_ns) != stamp or CheckpointMeta.load(path) != meta:
            with self._lock:
                self._drop(str(path))
            return None
        return df

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    def _drop(self, key: str) -> None:
        old = self._frames.pop(key, None)
        if old is not None:
            self._bytes -= old[3]


def _frame_budget() -> int:
    """512 MB, or a sixteenth of the machine's memory where that is less."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return min(512 << 20, total // 16)


# A step's shards are read by the next step of the same job, in the same process; `sluice run` empties it when
# the job ends.
FRAMES = FrameCache(max_bytes=_frame_budget())


class _Background:
    """Checkpoint writes of one step, on `writers` threads beside the step's compute (CheckpointStore.deferred)."""

    def __init__(self, writers: int) -> None:
        self.pool = ThreadPoolExecutor(writers, thread_name_prefix="sluice-checkpoint")
        self.pending: list[Future[Any]] = []
        self.slots = threading.Semaphore(writers + 1)  # frames waiting to be written stay few: memory is bounded

    def submit(self, fn: Callable[[], Any]) -> None:
        self.slots.acquire()

        def run() -> Any:
            try:
                return fn()
            finally:
                self.slots.release()

        self.pending.append(self.pool.submit(run))

    def drain(self) -> None:
        try:
            for future in self.pending:
                future.result()  # the first failed write fails the step
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


_background = threading.local()


class CheckpointStore(dg.ConfigurableResource):
    """Checkpoint files under `base_dir`: `<asset key path>/<quoted partition>[.dropped].<format>`."""

    base_dir: str
    format: Literal["parquet", "arrow", "jsonl"] = "parquet"
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"

    def path(self, asset_key: Sequence[str], partition: str | None, part: str = "kept") -> Path:
        name = quote(partition or UNPARTITIONED, safe="@")
        extra = "" if part == "kept" else f".{part}"
        suffix = _SUFFIX[self.format] + (".gz" if self.format == "jsonl" and self.compression == "gzip" else "")
        return Path(self.base_dir).joinpath(*asset_key) / f"{name}{extra}{suffix}"

    # --- bytes <-> frames ----------------------------------------------------------------------------------

    def _encode(self, df: pl.DataFrame) -> bytes:
        buf = io.BytesIO()
        if self.format == "parquet":
            rows = row_group_rows(df)
            if self.compression == "zstd":  # level 1: a checkpoint is written once per step and read once or twice
                df.write_parquet(buf, compression="zstd", compression_level=1, statistics=False, row_group_size=rows)
            else:
                compression = "uncompressed" if self.compression == "none" else self.compression
                df.write_parquet(buf, compression=compression, row_group_size=rows)
        elif self.format == "arrow":
            df.write_ipc(buf, compression="uncompressed" if self.compression == "none" else self.compression)
        else:
            df.write_ndjson(buf)
            if self.compression == "gzip":
                return gzip.compress(buf.getvalue(), mtime=0)
        return buf.getvalue()

    def _decode(self, data: bytes, path: Path) -> pl.DataFrame:
        if path.name.endswith(".parquet"):
            return pl.read_parquet(io.BytesIO(data))
        if path.name.endswith(".arrow"):
            return pl.read_ipc(io.BytesIO(data))
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        return pl.read_ndjson(io.BytesIO(data), infer_schema_length=None) if data else pl.DataFrame()

    # --- write / read --------------------------------------------------------------------------------------

    @contextmanager
    def deferred(self, writers: int = 1) -> Iterator[None]:
        """Inside, this thread's `write_step` calls return at once and write on `writers` background threads
        (a step passes its CPUs), so a step encodes shard k while it computes shard k+1; leaving waits for every
        write (and raises the first error). A step records its shards only after leaving, so a materialization
        never precedes its file."""
        if getattr(_background, "current", None) is not None:
            yield
            return
        _background.current = bg = _Background(max(1, writers))
        try:
            yield
        finally:
            _background.current = None
            bg.drain()

    def write(self, df: pl.DataFrame, path: Path, fingerprint: str = "", dropped: int | None = None) -> CheckpointMeta:
        """Data first, then its sidecar: a crash in between leaves a mismatch that reads as corrupt."""
        data = self._encode(df)
        meta = CheckpointMeta(
            rows=df.height,
            bytes=len(data),
            xxh3=_hash(data),
            fingerprint=fingerprint,
            written_at=datetime.now(timezone.utc).isoformat(),
            dropped=dropped,
        )
        with atomic_write(path) as tmp:
            tmp.write_bytes(data)
        with atomic_write(meta_path(path)) as tmp:
            tmp.write_text(json.dumps(meta.__dict__))
        FRAMES.put(path, meta, df)
        return meta

    def verify(self, path: Path) -> CheckpointMeta:
        """The sidecar of an intact checkpoint; raises if the file is missing, or its bytes do not match."""
        self._read_verified(path)
        meta = CheckpointMeta.load(path)
        assert meta is not None
        return meta

    def _read_verified(self, path: Path) -> tuple[bytes, CheckpointMeta]:
        if not path.exists():
            raise MissingCheckpointError(f"checkpoint {path} does not exist")
        meta = CheckpointMeta.load(path)
        if meta is None:
            raise CorruptCheckpointError(f"checkpoint {path} has no readable sidecar {meta_path(path).name}")
        data = path.read_bytes()
        if len(data) != meta.bytes or _hash(data) != meta.xxh3:
            raise CorruptCheckpointError(
                f"checkpoint {path} is corrupt: {len(data)} bytes with hash {_hash(data)}, "
                f"its sidecar says {meta.bytes} bytes with hash {meta.xxh3}"
            )
        return data, meta

    def read(self, path: Path, where: pl.Expr | None = None) -> pl.DataFrame:
        df = FRAMES.get(path)
        if df is None:
            data, meta = self._read_verified(path)
            df = self._decode(data, path)
            if df.height != meta.rows:
                raise CorruptCheckpointError(f"checkpoint {path} has {df.height} rows, its sidecar says {meta.rows}")
        return df if where is None else df.filter(where)

    def read_dropped(self, asset_key: Sequence[str], partition: str | None) -> pl.DataFrame | None:
        path = self.path(asset_key, partition, "dropped")
        return self.read(path) if path.exists() else None

    def fingerprint(self, asset_key: Sequence[str], partition: str | None) -> str:
        meta = CheckpointMeta.load(self.path(asset_key, partition))
        return meta.fingerprint if meta else ""

    def write_step(self, asset_key: Sequence[str], partition: str | None, out: StepOutput) -> CheckpointMeta | None:
        """The dropped part first, then the kept part, whose sidecar (written last) says how many rows the dropped
        part holds: a step is complete only once that sidecar is there. None when deferred (see `deferred`)."""
        bg: _Background | None = getattr(_background, "current", None)
        if bg is not None:
            bg.submit(lambda: self._write_step(asset_key, partition, out))
            return None
        return self._write_step(asset_key, partition, out)

    def _write_step(self, asset_key: Sequence[str], partition: str | None, out: StepOutput) -> CheckpointMeta:
        dropped_path = self.path(asset_key, partition, "dropped")
        if out.dropped is not None:
            self.write(out.dropped, dropped_path, out.fingerprint)
        else:  # a re-run that drops nothing must not leave an older run's dropped rows behind
            dropped_path.unlink(missing_ok=True)
            meta_path(dropped_path).unlink(missing_ok=True)
        dropped = None if out.dropped is None else out.dropped.height
        return self.write(out.kept, self.path(asset_key, partition), out.fingerprint, dropped=dropped)


class ParquetCheckpointIOManager(dg.ConfigurableIOManager):
    """Stores `StepOutput`s and DataFrames as verified checkpoints; loads one partition, or all of them when
    the input asks for it (`AssetIn(metadata={LOAD_ALL_PARTITIONS: True})`, the shape of global stages)."""

    store: CheckpointStore

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        partition = context.partition_key if context.has_partition_key else None
        key = list(context.asset_key.path)
        if isinstance(obj, pl.DataFrame):
            obj = StepOutput(obj)
        if not isinstance(obj, StepOutput):
            raise TypeError(f"{'/'.join(key)}: cannot checkpoint a {type(obj).__name__}")
        self.store.write_step(key, partition, obj)

    def load_input(self, context: dg.InputContext) -> Any:
        key = list(context.asset_key.path)
        if not context.has_asset_partitions:
            return self._read(key, None)
        keys = list(context.asset_partition_keys)
        if (context.definition_metadata or {}).get(LOAD_ALL_PARTITIONS):
            return self._read_many(key, keys, self._read)
        if len(keys) != 1:
            raise ValueError(f"{'/'.join(key)}: expected one partition, got {len(keys)}")
        return self._read(key, keys[0])

    def _read(self, key: list[str], partition: str | None) -> pl.DataFrame:
        return self.store.read(self.store.path(key, partition))

    @staticmethod
    def _read_many(
        key: list[str], partitions: list[str], read: Callable[[list[str], str], pl.DataFrame]
    ) -> dict[str, pl.DataFrame]:
        frames: dict[str, pl.DataFrame] = {}
        missing: list[str] = []
        for p in partitions:
            try:
                frames[p] = read(key, p)
            except MissingCheckpointError:
                missing.append(p)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise MissingCheckpointError(
                f"{'/'.join(key)} is not materialized for {len(missing)} of {len(partitions)} partitions "
                f"({shown}); this stage sees every partition, so run the earlier stages for all of them first "
                f"(`sluice run RECIPE`, or a backfill of all partitions)"
            )
        return frames
