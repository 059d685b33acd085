"""Checkpoints: each (asset, partition) is one file under the checkpoint dir, written atomically, with a
sidecar `<file>.meta.json` holding its row count, byte size, content hash (xxh3) and fingerprint.

A materialization *is* the checkpoint: downstream steps read it back through the IO manager, which checks
size, hash and row count on every read, so a truncated or corrupted file is reported, never half-read. A
step's output has two parts, the rows that go on (`<partition>.<fmt>`) and the rows it removed, with their
reasons (`<partition>.dropped.<fmt>`). The fingerprint (recipe params and input content, chained from the
source) says whether a checkpoint is still valid for the current recipe and input.

A part whose rows are rows of the checkpoint its step read, most of their bytes unchanged (what a filter or a
deduplicator keeps and drops), is stored as a *selection* (Parquet and Arrow formats): the rows' positions in
that checkpoint (`BASE_ROW`) and only the columns the step changed, the others being verified equal before
they are left out. Its sidecar names the checkpoint (`base`, relative to the checkpoint dir) and the hash its
bytes had when the step read them (`base_xxh3`); a read rebuilds the frame from both, and a selection whose base
is gone or was rewritten is not current (`base_problem`). A filter then writes a few bytes per row instead of
every document again.

A part that holds the input rows as read (the source step's, from a seekable input file) is stored as an *input
reference*: its file holds one row, a reader's name and arguments (the file, the rows' byte range, the hash those
bytes had), and a read checks that hash and reads the rows again (`INPUT_READERS`). The input is not copied into
the checkpoint dir, and the job does not encode it once more before its first op.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import polars as pl

from ops_library.columns import ROW_ID
from resources.checkpoint_files import (
    _MAX_CHAIN,
    BASE_ROW,
    CHANGED_PREFIX,
    INPUT_READERS,
    LOAD_ALL_PARTITIONS,
    SELECTION_MIN_SHARE,
    Base,
    CheckpointMeta,
    CorruptCheckpointError,
    InputRef,
    MissingCheckpointError,
    StepOutput,
    _hash,
    _schema_of,
    _schema_text,
    atomic_write,
    checkpoint_path,
    meta_path,
    row_group_rows,
)


class FrameCache:
    """Frames this process wrote, so the next step's read of them skips decoding (least recently used first
    out, `max_bytes` in all). A cached frame is returned only while its file is the one this process wrote:
    same sidecar, same size and modification time; anything else is read from disk and verified.

    A row step's read of its upstream shard is that frame's last read in the job (`take`): the entry leaves the
    cache with it, so the cache holds about one step's frames, not every step's, and what it holds is what the
    next step reads."""

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
        hit = self.entry(path)
        return None if hit is None else hit[1]

    def holds(self, path: Path) -> bool:
        """Whether a frame of `path` is cached (not checked against the file: `entry` does that)."""
        with self._lock:
            return str(path) in self._frames

    def entry(self, path: Path, take: bool = False) -> tuple[CheckpointMeta, pl.DataFrame] | None:
        """The cached frame of `path` and the sidecar it was cached with, while both are still the file's.
        `take`: the entry leaves the cache (its last read)."""
        with self._lock:
            hit = self._frames.get(str(path))
            if hit is not None:
                if take:
                    self._drop(str(path))
                else:
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
        return meta, df

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
    """An eighth of the machine's memory. Below one step's frames the next step's reads miss and decode from
    disk (each filter's selection down to the last whole checkpoint): at 512 MB, a 10-op recipe on 446 MB of
    input spent a third of its wall decoding what it had written (bench/execution.py --copies 4)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return total // 8


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
        return checkpoint_path(self.base_dir, self.format, self.compression, asset_key, partition, part)

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
            binary = [c for c, t in df.schema.items() if t == pl.Binary]
            (df.with_columns(pl.col(binary).bin.encode("hex")) if binary else df).write_ndjson(buf)
            if self.compression == "gzip":
                return gzip.compress(buf.getvalue(), mtime=0)
        return buf.getvalue()

    def _decode(self, data: bytes, path: Path, meta: CheckpointMeta) -> pl.DataFrame:
        if path.name.endswith(".parquet"):
            return pl.read_parquet(io.BytesIO(data))
        if path.name.endswith(".arrow"):
            return pl.read_ipc(io.BytesIO(data))
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        if meta.schema is None:  # written before JSONL checkpoints recorded their types
            return pl.read_ndjson(io.BytesIO(data), infer_schema_length=None) if data else pl.DataFrame()
        schema = _schema_of(meta.schema)
        binary = [c for c, t in schema.items() if t == pl.Binary]
        if not data:
            return pl.DataFrame(schema=schema)
        as_read = {c: pl.String if c in binary else t for c, t in schema.items()}
        df = pl.read_ndjson(io.BytesIO(data), schema=as_read)
        return df.with_columns(pl.col(binary).str.decode("hex")) if binary else df

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

    def write(
        self,
        df: pl.DataFrame,
        path: Path,
        fingerprint: str = "",
        dropped: int | None = None,
        base: Base | None = None,
        input: InputRef | None = None,
    ) -> CheckpointMeta:
        """Data first, then its sidecar: a crash in between leaves a mismatch that reads as corrupt. With `base`
        (the checkpoint `df` was computed from), `df` is stored as a selection of it where that pays; with
        `input` (the rows `df` holds), as a reference to them."""
        selection = self._selection(df, base) if base is not None and input is None else None
        if input is not None:
            data = self._encode(pl.DataFrame({"reader": [input.reader], "args": [json.dumps(input.args)]}))
        else:
            data = self._encode(df if selection is None else selection)
        meta = CheckpointMeta(
            rows=df.height,
            bytes=len(data),
            xxh3=_hash(data),
            fingerprint=fingerprint,
            written_at=datetime.now(timezone.utc).isoformat(),
            dropped=dropped,
        )
        if self.format == "jsonl" and input is None:
            meta = replace(meta, schema=_schema_text(df))
        if input is not None:
            meta = replace(meta, input=input.reader)
        if selection is not None:
            assert base is not None
            meta = replace(
                meta,
                base=base.path.relative_to(self.base_dir).as_posix(),
                base_xxh3=base.meta.xxh3,
                columns=list(df.columns),
                patched=[c for c in df.columns if CHANGED_PREFIX + c in selection.columns] or None,
            )
        # Not fsynced (see atomic_write): the sidecar's size and hash find a file a power loss tore.
        with atomic_write(path, durable=False) as tmp:
            tmp.write_bytes(data)
        with atomic_write(meta_path(path), durable=False) as tmp:
            tmp.write_text(json.dumps(meta.__dict__))
        FRAMES.put(path, meta, df)
        return meta

    def _selection(self, df: pl.DataFrame, base: Base) -> pl.DataFrame | None:
        """What to store of `df` as a selection of `base` (BASE_ROW and the columns that differ from base's), or
        None when `df` is not a selection of it or too little of it would be left out."""
        b = base.frame
        if self.format == "jsonl" or df.height == 0 or ROW_ID not in df.columns or ROW_ID not in b.columns:
            return None
        if not base.path.is_relative_to(self.base_dir):
            return None
        member = b[ROW_ID].is_in(df[ROW_ID].implode())
        rows = member.arg_true()
        if rows.len() != df.height or not b[ROW_ID].filter(member).equals(df[ROW_ID]):
            return None  # other rows, or the same rows in another order
        # The rows are the base's at `rows`, in order: its columns are compared through `filter`, which shares the
        # base's string buffers (a `gather` of the same rows copies them: ~40x slower on a shard of long texts).
        same = [ROW_ID]  # compared just above
        patched: dict[str, pl.Series] = {}  # column -> rows where it changed (text a mapper rewrote in a few rows)
        left_out = float(df[ROW_ID].estimated_size())
        for c in df.columns:
            if c == ROW_ID or c not in b.columns or b.schema[c] != df.schema[c]:
                continue
            old, size = b[c].filter(member), df[c].estimated_size()
            if df.schema[c] not in (pl.String, pl.Binary):
                if old.equals(df[c], null_equal=True):
                    same.append(c)
                    left_out += size
                continue
            changed = old.ne_missing(df[c])
            count = int(changed.sum())
            if count == 0:
                same.append(c)
                left_out += size
            elif count * 2 <= df.height:
                patched[c] = changed
                left_out += size * (1 - count / df.height)
        if left_out < SELECTION_MIN_SHARE * df.estimated_size():
            return None
        stored: list[pl.Series] = [rows.alias(BASE_ROW)]
        for c in df.columns:
            if c in patched:
                values = pl.select(pl.when(patched[c]).then(df[c])).to_series().alias(c)
                stored += [values, patched[c].alias(CHANGED_PREFIX + c)]
            elif c not in same:
                stored.append(df[c])
        return pl.DataFrame(stored)

    def _expand(self, chain: list[tuple[pl.DataFrame, CheckpointMeta, Path]], root: pl.DataFrame) -> pl.DataFrame:
        """The frame the first selection of `chain` stands for. `chain` holds the selections down from it (each the
        base of the one before, as stored: BASE_ROW and the columns it changed), `root` the frame under the last.

        The row positions are composed first (integers), then each column is taken once from the level that holds
        it, with the patches of the levels above applied: a text column is gathered once for the whole chain,
        not once per level (a filter's checkpoint in a chain of ten read by a step in another process)."""
        # Per level: the rows of that level each row of the result is; None where they are all of its rows, in
        # order (under a mapper), so nothing is gathered there. The last entry is into the root.
        at: list[pl.Series | None] = [None]
        below = [stored.height for stored, _meta, _path in chain[1:]] + [root.height]
        for (stored, _meta, _path), height in zip(chain, below, strict=True):
            rows = stored[BASE_ROW] if at[-1] is None else stored[BASE_ROW].gather(at[-1])
            every_row = rows.len() == height and rows.equals(pl.int_range(0, height, dtype=rows.dtype, eager=True))
            at.append(None if every_row else rows)

        def take(series: pl.Series, where: pl.Series | None) -> pl.Series:
            return series if where is None else series.gather(where)

        top_meta = chain[0][1]
        assert top_meta.columns is not None
        columns = []
        for c in top_meta.columns:
            patches: list[tuple[pl.Series, pl.Series]] = []  # (changed, values), from the top level down
            value = None
            for level, (stored, meta, _path) in enumerate(chain):
                if c not in stored.columns:
                    continue
                if c in (meta.patched or []):
                    patches.append((take(stored[CHANGED_PREFIX + c], at[level]), take(stored[c], at[level])))
                    continue
                value = take(stored[c], at[level])
                break
            if value is None:
                value = take(root[c], at[-1])
            if patches and not any((changed & values.is_null()).any() for changed, values in patches):
                # A patch holds its new values where it changed and nulls elsewhere: the first non-null from the top
                # down is the text, in one pass (one copy of the texts, not one per patch).
                value = pl.select(pl.coalesce([*(values for _, values in patches), value])).to_series()
            else:  # a patch that set a text to null: the lowest first, the one above it wins where it changed
                for changed, values in reversed(patches):
                    value = pl.select(pl.when(changed).then(values).otherwise(value)).to_series()
            columns.append(value.alias(c))
        return pl.DataFrame(columns)

    def base_problem(self, meta: CheckpointMeta) -> str | None:
        """Why a selection cannot be rebuilt (None when it can, or is no selection): its base, and the base's own
        base, must be there with the bytes they had when it was written."""
        for _ in range(_MAX_CHAIN + 1):
            if meta.base is None:
                return None
            problem, base_meta = self._link_problem(meta)
            if problem is not None:
                return problem
            assert base_meta is not None
            meta = base_meta
        return f"corrupt: a chain of more than {_MAX_CHAIN} selections"

    def _link_problem(self, meta: CheckpointMeta) -> tuple[str | None, CheckpointMeta | None]:
        """(why the base of selection `meta` is not the one it was written from, or None; the base's sidecar)."""
        assert meta.base is not None
        base_path = Path(self.base_dir) / meta.base
        base_meta = CheckpointMeta.load(base_path)
        try:
            size = base_path.stat().st_size
        except OSError:
            size = None
        if base_meta is None or size is None:
            return f"its rows are rows of {meta.base}, which is missing", None
        if base_meta.xxh3 != meta.base_xxh3:
            return f"its rows are rows of {meta.base}, which was rewritten since", base_meta
        if size != base_meta.bytes:
            why = f"corrupt: its rows are rows of {meta.base}, which has {size} bytes"
            return f"{why}, its sidecar says {base_meta.bytes}", base_meta
        return None, base_meta

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

    def _load(self, path: Path, cache: bool = True, take: bool = False) -> tuple[pl.DataFrame, CheckpointMeta]:
        hit = FRAMES.entry(path, take=take)
        if hit is not None:
            return hit[1], hit[0]
        cache = cache and not take  # a frame read for the last time is not kept
        chain: list[tuple[pl.DataFrame, CheckpointMeta, Path]] = []  # selections, from `path` down to the root
        current = path
        while True:
            if len(chain) > _MAX_CHAIN:
                raise CorruptCheckpointError(f"checkpoint {path}: a chain of more than {_MAX_CHAIN} selections")
            data, meta = self._read_verified(current)
            df = self._decode(data, current, meta)
            if meta.input is not None:
                df = self._read_input(df, meta, current)  # checks the rows it stands for
                if cache:
                    FRAMES.put(current, meta, df)
                break
            if df.height != meta.rows:
                raise CorruptCheckpointError(f"checkpoint {current} has {df.height} rows, its sidecar says {meta.rows}")
            if meta.base is None:
                break
            chain.append((df, meta, current))
            problem = self._link_problem(meta)[0]  # the links beyond it are checked as the loop follows them
            if problem is not None:
                error = MissingCheckpointError if "missing" in problem else CorruptCheckpointError
                raise error(f"checkpoint {current}: {problem}")
            current = Path(self.base_dir) / meta.base
            hit = FRAMES.entry(current)
            if hit is not None:
                meta, df = hit
                break
        # `df`, `meta`: the root (a whole checkpoint, an input reference's rows, or a frame this process holds)
        for level, (stored, selection, at) in enumerate(chain):
            below = chain[level + 1][1] if level + 1 < len(chain) else meta
            below_rows = below.rows if level + 1 < len(chain) else df.height
            if below.xxh3 != selection.base_xxh3:
                raise CorruptCheckpointError(
                    f"checkpoint {at}: its base {selection.base} was rewritten since it was written"
                )
            rows = stored[BASE_ROW]
            if rows.len() and int(rows.max()) >= below_rows:  # type: ignore[arg-type]
                raise CorruptCheckpointError(
                    f"checkpoint {at} selects row {rows.max()} of {selection.base}, which has {below_rows} rows"
                )
        if not chain:
            return df, meta
        top_meta = chain[0][1]
        df = self._expand(chain, df)
        if cache:
            FRAMES.put(path, top_meta, df)  # rebuilt: the next selection of it, or the next read, rebuilds nothing
        return df, top_meta

    @staticmethod
    def _read_input(pointer: pl.DataFrame, meta: CheckpointMeta, path: Path) -> pl.DataFrame:
        """The rows an input reference stands for, read again by its reader (which checks the input's hash)."""
        read = INPUT_READERS.get(meta.input or "")
        if read is None:
            raise CorruptCheckpointError(
                f"checkpoint {path} refers to input rows read by {meta.input!r}, a reader this process does not have"
            )
        if pointer.height != 1 or pointer["reader"][0] != meta.input:
            raise CorruptCheckpointError(f"checkpoint {path} is not the input reference its sidecar says")
        try:
            df = read(json.loads(pointer["args"][0]))
        except (MissingCheckpointError, CorruptCheckpointError) as exc:
            raise type(exc)(f"checkpoint {path}: {exc}") from exc
        if df.height != meta.rows:
            raise CorruptCheckpointError(f"checkpoint {path}: its input gives {df.height} rows, it says {meta.rows}")
        return df

    def read(self, path: Path, where: pl.Expr | None = None, *, cache: bool = True) -> pl.DataFrame:
        """The checkpoint's rows (verified). `cache=False`: what it rebuilds stays out of FRAMES (a reader beside
        the steps must not evict the frames they read next)."""
        df, _ = self._load(path, cache=cache)
        return df if where is None else df.filter(where)

    def read_base(self, path: Path, take: bool = False) -> Base:
        """A checkpoint as `read` returns it, with the sidecar it was read with (what a selection of it records).
        `take`: this process reads it no more (`FrameCache`): its frame leaves `FRAMES`."""
        df, meta = self._load(path, take=take)
        return Base(path, meta, df)

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
            self.write(out.dropped, dropped_path, out.fingerprint, base=out.base)
        else:  # a re-run that drops nothing must not leave an older run's dropped rows behind
            dropped_path.unlink(missing_ok=True)
            meta_path(dropped_path).unlink(missing_ok=True)
        dropped = None if out.dropped is None else out.dropped.height
        return self.write(
            out.kept, self.path(asset_key, partition), out.fingerprint, dropped=dropped, base=out.base, input=out.input
        )


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
