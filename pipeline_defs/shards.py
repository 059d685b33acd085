"""Input shards: `dataset_path` (a file, a directory or a glob of JSONL / JSONL.gz / Parquet) split into shards
by bytes (default 64MB) or by rows (`PartitionSpec`). A shard is a Dagster partition.

Shard keys are `<relative path>@<shard index>`: the same input gives the same keys, so materializations stay
valid, and appending a file adds keys without renaming others. Input order = files sorted by relative path,
then rows; `shard_order` recovers it from the keys alone. A JSONL shard by bytes is the lines that *start* in
byte range [i*B, (i+1)*B) of the file; a range in which no line starts has no shard (its index is skipped).

By bytes, consecutive JSONL files (plain or .gz) smaller than B (a .gz file: decompressed) are packed into
shards of at most B (`partition.pack`, on by default): a pack is read as its files' lines one after the other,
and its key is its first file's with the number of files after it, `<relative path>@00000+<n>`. Row ids and
quarantine lines still name each row's own file and line. A directory of a thousand 1 MB files is then ~16
shards, not a thousand steps per op. A file appended after the others joins the last pack (renaming that one)
or starts a new one. Consecutive Parquet files of one Arrow schema smaller than B (their row groups' bytes, as
the footer gives them) are packed the same way, read file by file and concatenated; a pack never mixes JSONL
and Parquet, nor two Parquet schemas (concatenating those would add null fields a file's rows do not have).

Each file is scanned once (line offsets, row counts) and the result cached in a manifest under
`$SLUICE_HOME/cache/shards`, keyed by the file's path, size and mtime, so finding a shard by key costs O(shard).

Reading a shard never loses a row: a line that is not a JSON object with a string text field goes to the
quarantine frame with its file, line, field and reason; everything else is kept. JSONL is parsed by polars'
native JSON reader; only lines it rejects, or whose values it may have coerced (a number read into a string
column, an int into a float column, a nested null, a duplicate key, a row with both an absent key and a JSON
null), take a per-line Python path (Python's json: the last of duplicate keys wins, and is counted). Every
field other than the text keeps its JSON value and type: a field whose rows disagree on its type (or that
some rows lack) is held as JSON text and listed in the `RAW_JSON` column, and the exporter writes it back
verbatim. A manifest is trusted while the file's size and mtime are unchanged.
"""

from __future__ import annotations

import errno
import glob
import io
import json
import math
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import xxhash

from ops_library.columns import DROP_KIND, DROP_OP, DROP_REASON, INTERNAL_PREFIX, QUARANTINED, ROW_ID
from pipeline_defs.recipe import PartitionSpec
from resources.checkpoint_files import (
    CorruptCheckpointError,
    InputRef,
    MissingCheckpointError,
    register_input_reader,
)
from resources.settings import sluice_home

FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".jsonl.gz": "jsonl.gz",
    ".json.gz": "jsonl.gz",
    ".parquet": "parquet",
}
QUARANTINE_SCHEMA = {
    ROW_ID: pl.String,
    "file": pl.String,
    "line": pl.Int64,
    "field": pl.String,
    DROP_OP: pl.String,
    DROP_KIND: pl.String,
    DROP_REASON: pl.String,
    "raw": pl.String,
}
SOURCE_OP = "source"
# Names of the fields of a row that hold JSON text (their values disagreed on type within the shard);
# a List(String) column, absent when there are none. The exporter writes those fields back verbatim.
RAW_JSON = f"{INTERNAL_PREFIX}raw_json__"
# Deeper JSON is quarantined before any parser sees it: nesting costs polars' schema inference super-linear
# time and memory, and Python's json a RecursionError.
MAX_NESTING = 100
# 2: a .jsonl.gz shard by bytes records its decompressed length (`Shard.end`); 3: a Parquet shard by bytes its
# row groups' bytes, and the manifest the file's schema (`_parquet_schema`)
MANIFEST_VERSION = 3
_BOM = b"\xef\xbb\xbf"


class DatasetError(ValueError):
    pass


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    return None


@dataclass(frozen=True)
class InputFile:
    path: Path
    relpath: str
    fmt: str


@dataclass(frozen=True)
class Shard:
    key: str
    file: InputFile
    index: int
    start: int  # first row (0-based) of the file in this shard
    stop: int  # one past the last row
    offset: int = 0  # plain JSONL: byte offset of the shard's first line
    # plain JSONL: byte offset one past its last line (-1: end of file); a whole .jsonl.gz file: its
    # decompressed length (-1: not known, by rows); Parquet by bytes: its row groups' bytes
    end: int = -1
    # A pack: whole small files of one kind read as one shard (`file` is the first's, rows count over them all).
    members: tuple[Shard, ...] = ()

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ShardRead:
    """A shard as read: the rows to process, the quarantined ones (`QUARANTINE_SCHEMA`), and how many kept rows
    had a duplicate key in some JSON object (the last value was kept, as Python's json does)."""

    kept: pl.DataFrame
    quarantined: pl.DataFrame
    duplicate_key_rows: int = 0

    def __iter__(self) -> Iterator[pl.DataFrame]:
        # Transitional: callers written for the old `(kept, quarantined)` tuple can still unpack it.
        return iter((self.kept, self.quarantined))


def _missing(dataset_path: str, path: Path) -> DatasetError:
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 reports a loop this way
            return DatasetError(f"dataset_path {dataset_path!r} is a symlink loop")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return DatasetError(f"dataset_path {dataset_path!r} is a symlink loop")
            return DatasetError(f"dataset_path {dataset_path!r} is a broken symlink (to {os.readlink(path)!r})")
    return DatasetError(f"dataset_path {dataset_path!r} does not exist")


def discover_files(dataset_path: str) -> list[InputFile]:
    """The input files of `dataset_path`, sorted by relative path (that is the input order)."""
    path = Path(dataset_path)
    if glob.has_magic(dataset_path):
        root = Path(dataset_path.split("*")[0].split("?")[0].split("[")[0])
        root = root if root.is_dir() else root.parent
        candidates = [Path(p) for p in glob.glob(dataset_path, recursive=True)]
    elif path.is_dir():
        root = path
        candidates = [p for p in path.rglob("*") if p.is_file()]
    elif path.is_file():
        root = path.parent
        candidates = [path]
    else:
        raise _missing(dataset_path, path)
    files = []
    for p in candidates:
        fmt = _format_of(p)
        if fmt and p.is_file() and not p.name.startswith((".", "_")):  # hidden, temp and manifest files
            files.append(InputFile(p, p.relative_to(root).as_posix(), fmt))
    if not files:
        raise DatasetError(
            f"dataset_path {dataset_path!r} holds no input files (looked for {', '.join(sorted(FORMATS))})"
        )
    return sorted(files, key=lambda f: f.relpath)


# --- gzip ------------------------------------------------------------------------------------------------------


def _gunzip_chunks(path: Path) -> Iterator[bytes]:
    """The decompressed bytes of a .gz file (every member) in pieces; a truncated or corrupt stream is a
    one-line DatasetError naming the file and its last complete line."""
    lines = 0

    def fail(what: str) -> DatasetError:
        return DatasetError(f"{path}: {what} after line {lines} (the last good line); re-create or remove the file")

    member, empty = zlib.decompressobj(zlib.MAX_WBITS | 16), True
    with open(path, "rb") as fh:
        for compressed in iter(lambda: fh.read(1 << 20), b""):
            empty = False
            while compressed:
                try:
                    out = member.decompress(compressed)
                except zlib.error as exc:
                    raise fail(f"truncated or corrupt gzip stream ({exc})") from None
                lines += out.count(b"\n")
                yield out
                compressed = b""
                if member.eof and member.unused_data:  # another gzip member follows
                    compressed = member.unused_data
                    member = zlib.decompressobj(zlib.MAX_WBITS | 16)
    if not member.eof and not empty:
        raise fail("truncated or corrupt gzip stream (it ends before its end-of-stream marker)")


def _gunzip(path: Path) -> bytes:
    return b"".join(_gunzip_chunks(path))


# --- shards and their manifest --------------------------------------------------------------------------------

# (index, start row, stop row, byte offset, byte end) per shard of one file
_Entry = tuple[int, int, int, int, int]
_MEMO: dict[str, list[_Entry]] = {}
# A Parquet file's schema hash by `_file_stamp`, recorded with its entries (`_entries`).
_SCHEMAS: dict[str, str] = {}


def make_key(relpath: str, index: int) -> str:
    return f"{relpath}@{index:05d}"


def pack_key(relpath: str, more: int) -> str:
    """A pack's key: its first file's first shard, and how many files follow it in the pack."""
    return f"{make_key(relpath, 0)}+{more}"


def shard_order(key: str) -> tuple[str, int]:
    """Files in path order, a file's shards in index order (a pack sorts as its first file). A key not of the
    `<relpath>@<index>[+<files>]` form (a typo in a `dagster/partition` tag) sorts by its text before any
    index, so the error that names it can be built."""
    relpath, _, index = key.rpartition("@")
    index, plus, more = index.partition("+")
    well_formed = index.isdigit() and (not plus or more.isdigit())
    return (relpath, int(index)) if well_formed else (key, -1)


def _as_spec(spec: PartitionSpec | int | None) -> PartitionSpec:
    # An int (rows per shard) or None (the default) are accepted while callers move to passing the spec.
    if isinstance(spec, PartitionSpec):
        return spec
    return PartitionSpec() if spec is None else PartitionSpec(size=spec)


def _line_start_at_or_after(fh: BinaryIO, pos: int, size: int) -> int:
    """The first line start at or after byte `pos` (`size` if none)."""
    if pos <= 0 or pos >= size:
        return min(max(pos, 0), size)
    fh.seek(pos - 1)
    while True:
        chunk = fh.read(1 << 16)
        if not chunk:
            return size
        cut = chunk.find(b"\n")
        if cut >= 0:
            return fh.tell() - len(chunk) + cut + 1


_NEWLINE = ord("\n")
_READ_CHUNK = 1 << 22


def _read_range(fh: BinaryIO, start: int, stop: int) -> Iterator[memoryview]:
    """Bytes [start, stop) of `fh`, in chunks read into one reused buffer (each valid until the next is read): a
    fresh 4 MiB `bytes` per read had its pages faulted in each time. With numpy's count instead of `bytes.count`,
    listing the 446 MB of four copies of the bench corpus on a fresh home took 0.32 s of the main thread instead
    of 0.70 s, and hashing them 0.13 s instead of 0.39 s."""
    fh.seek(start)
    left = stop - start
    view = memoryview(bytearray(min(max(left, 1), _READ_CHUNK)))
    while left > 0:
        n = fh.readinto(view[: min(left, len(view))])  # type: ignore[attr-defined]
        if not n:
            return
        left -= n
        yield view[:n]


def _lines_in(fh: BinaryIO, start: int, stop: int, size: int) -> int:
    """Lines starting in [start, stop), stop being a line start or the end of the file."""
    hits = np.empty(min(max(stop - start, 1), _READ_CHUNK), np.bool_)
    lines, last = 0, _NEWLINE
    for chunk in _read_range(fh, start, stop):
        data = np.frombuffer(chunk, np.uint8)
        lines += int(np.count_nonzero(np.equal(data, _NEWLINE, out=hits[: len(data)])))
        last = chunk[-1]
    return lines + (stop == size and last != _NEWLINE)


def _jsonl_by_bytes(path: Path, size: int, shard_bytes: int) -> list[_Entry]:
    """Shard i: the lines starting in [i*B, (i+1)*B). One pass over the file, counting newlines per shard."""
    entries: list[_Entry] = []
    with open(path, "rb") as fh:
        offset, first_row = 0, 0
        while offset < size:
            index = offset // shard_bytes
            end = _line_start_at_or_after(fh, (index + 1) * shard_bytes, size)
            rows = _lines_in(fh, offset, end, size)
            entries.append((index, first_row, first_row + rows, offset, end))
            first_row, offset = first_row + rows, end
    return entries


def _jsonl_by_rows(path: Path, size: int, rows_per_shard: int) -> list[_Entry]:
    """Shard i: lines [i*R, (i+1)*R); the byte offset of every R-th line start is recorded on one pass."""
    if size == 0:
        return []
    starts, pos, seen, next_cut, last = [0], 0, 0, rows_per_shard, b"\n"
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            newlines, at = chunk.count(b"\n"), -1
            while seen + newlines >= next_cut:  # the next_cut-th newline is in this chunk
                k = next_cut - seen
                for _ in range(k):
                    at = chunk.find(b"\n", at + 1)
                seen, newlines = seen + k, newlines - k
                starts.append(pos + at + 1)
                next_cut += rows_per_shard
            seen += newlines
            pos += len(chunk)
            last = chunk[-1:]
    total = seen + (last != b"\n")
    starts = [s for s in starts if s < size]
    ends = [*starts[1:], size]
    return [
        (i, i * rows_per_shard, min((i + 1) * rows_per_shard, total), off, end)
        for i, (off, end) in enumerate(zip(starts, ends, strict=True))
    ]


def _gz_rows(path: Path) -> tuple[int, int]:
    """The lines of a .gz file, and its decompressed length."""
    lines, size, last = 0, 0, b"\n"
    for chunk in _gunzip_chunks(path):
        lines += chunk.count(b"\n")
        size += len(chunk)
        last = chunk[-1:]
    return lines + (last != b"\n"), size


def _parquet_entries(path: Path, spec: PartitionSpec) -> tuple[list[_Entry], str]:
    """The file's shards (by bytes: consecutive row groups, `end` their bytes) and its schema's hash."""
    try:
        file = pq.ParquetFile(path)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from exc
    meta, schema = file.metadata, _schema_hash(file)
    n = meta.num_rows
    if spec.shard_bytes is None:
        assert spec.size is not None
        return [(i, s, min(s + spec.size, n), 0, -1) for i, s in enumerate(range(0, n, spec.size))], schema
    entries: list[_Entry] = []
    start, acc, row = 0, 0, 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        row += group.num_rows
        acc += group.total_compressed_size if hasattr(group, "total_compressed_size") else group.total_byte_size
        if acc >= spec.shard_bytes:
            entries.append((len(entries), start, row, 0, acc))
            start, acc = row, 0
    if row > start:
        entries.append((len(entries), start, row, 0, acc))
    return entries, schema


def _schema_hash(file: pq.ParquetFile) -> str:
    return xxhash.xxh3_64_hexdigest(file.schema_arrow.remove_metadata().serialize().to_pybytes())


def _entries(f: InputFile, spec: PartitionSpec) -> list[_Entry]:
    """The shards of one file, from the manifest cache when the file is unchanged (same size and mtime)."""
    st = f.path.stat()
    mode = f"bytes={spec.shard_bytes}" if spec.shard_bytes is not None else f"rows={spec.size}"
    ident = f"{MANIFEST_VERSION}|{f.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{f.fmt}|{mode}"
    digest = xxhash.xxh3_64_hexdigest(ident.encode())
    if digest in _MEMO:
        return _MEMO[digest]
    schema = None
    # one manifest per (file, shard rule), overwritten when the file changes: the cache does not grow
    name = xxhash.xxh3_64_hexdigest(f"{f.path.resolve()}|{mode}".encode())
    cache = sluice_home().root / "cache" / "shards" / f"{name}.json"
    try:
        stored = json.loads(cache.read_text())
        if stored.get("ident") == ident:
            entries = [tuple(e) for e in stored["shards"]]
            if f.fmt == "parquet":
                _SCHEMAS[_file_stamp(f.path, st)] = stored["schema"]
            _MEMO[digest] = entries  # type: ignore[assignment]
            return entries  # type: ignore[return-value]
    except (OSError, ValueError, KeyError):
        pass
    if f.fmt == "parquet":
        entries, schema = _parquet_entries(f.path, spec)
        _SCHEMAS[_file_stamp(f.path, st)] = schema
    elif f.fmt == "jsonl.gz":
        n, size = _gz_rows(f.path)
        if spec.size is None:  # by bytes: the whole file, one shard (a .gz stream cannot be seeked)
            entries = [(0, 0, n, 0, size)] if n else []
        else:
            entries = [(i, s, min(s + spec.size, n), 0, -1) for i, s in enumerate(range(0, n, spec.size))]
    elif spec.shard_bytes is not None:
        entries = _jsonl_by_bytes(f.path, st.st_size, spec.shard_bytes)
    else:
        assert spec.size is not None
        entries = _jsonl_by_rows(f.path, st.st_size, spec.size)
    _MEMO[digest] = entries
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"ident": ident, "shards": entries} | ({"schema": schema} if schema else {})))
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only home only costs a rescan next time
    return entries


def _shards_of(f: InputFile, spec: PartitionSpec) -> list[Shard]:
    return [Shard(make_key(f.relpath, i), f, i, a, b, off, end) for i, a, b, off, end in _entries(f, spec)]


def _packable(shard: Shard, spec: PartitionSpec) -> bool:
    """A whole file smaller than the shard size, where shards are cut by bytes and packing is on: a plain JSONL
    file's one shard ending before the first cut (so at the file's end), a .jsonl.gz file whose decompressed
    length is below it, or a Parquet file whose row groups' bytes are: its only shard is its first."""
    limit = spec.shard_bytes
    fits = limit is not None and shard.offset == 0 and 0 <= shard.end < limit
    return spec.pack and fits and (shard.file.fmt in ("jsonl", "jsonl.gz") or shard.index == 0)


def _pack_kind(shard: Shard) -> str:
    """What a pack may hold together: JSONL lines (plain and .gz), or Parquet files of one schema."""
    if shard.file.fmt != "parquet":
        return "jsonl"
    return "parquet:" + _parquet_schema(shard.file)


def _parquet_schema(f: InputFile) -> str:
    """The hash of the file's Arrow schema, as its manifest recorded it (read from the footer if not cached)."""
    stamp = _file_stamp(f.path, f.path.stat())
    schema = _SCHEMAS.get(stamp)
    if schema is None:
        schema = _SCHEMAS[stamp] = _schema_hash(pq.ParquetFile(f.path))
    return schema


def _file_stamp(path: Path, st: os.stat_result) -> str:
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _pack(run: list[Shard]) -> Shard:
    first = run[0]
    rows = sum(m.rows for m in run)
    return Shard(pack_key(first.file.relpath, len(run) - 1), first.file, 0, 0, rows, members=tuple(run))


def _packed(shards: list[Shard], spec: PartitionSpec) -> list[Shard]:
    """Consecutive packable shards (whole small JSONL files) grouped in input order, each group holding at most
    `partition.bytes`: a corpus of many small files costs a step per shard-sized pack, not per file. A file
    appended after the others joins the last pack or starts one; only that pack's key changes."""
    limit = spec.shard_bytes or 0
    out: list[Shard] = []
    run: list[Shard] = []
    size = 0
    kind = ""

    def close() -> None:
        nonlocal size
        if run:
            out.append(run[0] if len(run) == 1 else _pack(run))
            run.clear()
        size = 0

    for shard in shards:
        if not _packable(shard, spec):
            close()
            out.append(shard)
            continue
        shard_kind = _pack_kind(shard)
        if size + shard.end > limit or (run and shard_kind != kind):
            close()
        kind = shard_kind
        run.append(shard)
        size += shard.end
    close()
    return out


def _discover(files: list[InputFile], spec: PartitionSpec) -> list[Shard]:
    return _packed([s for f in files for s in _shards_of(f, spec)], spec)


def discover_shards(dataset_path: str, spec: PartitionSpec | int | None) -> list[Shard]:
    """Every shard of `dataset_path` in input order. Each file is scanned once and cached (see module doc)."""
    spec = _as_spec(spec)
    return _discover(discover_files(dataset_path), spec)


def shard_for_key(dataset_path: str, spec: PartitionSpec | int | None, key: str) -> Shard:
    """Find a shard by its key, looking only at the file it names (its manifest, not its rows), unless the key
    is a pack's or names a file small enough to be packed: then at the packs of every file."""
    spec = _as_spec(spec)
    relpath, index = shard_order(key)
    files = discover_files(dataset_path)
    for f in files:
        if f.relpath == relpath:
            for shard in _shards_of(f, spec):
                if shard.index == index and shard.key == key and not _packable(shard, spec):
                    return shard
            break
    else:
        files = []  # no such file: no pack starts with it either
    for shard in _discover(files, spec):
        if shard.key == key:
            return shard
    raise DatasetError(f"partition {key!r} is not a shard of {dataset_path!r} (input changed since it was registered?)")


# A file whose mtime is at least this much older than the moment its bytes were hashed is "settled": any later
# write gives it a newer mtime (git's rule for racily clean files), so its hash is kept for this process.
SETTLED_NS = 2_000_000_000
# (file, shard bounds) -> (the file's stat when hashed, the hash): a job reads a shard's hash several times (the
# planner's fingerprints, the prefetch before and after its parse, the source step), each a pass over its bytes.
_HASHES: dict[tuple, tuple[tuple[int, ...], str]] = {}


def _stat_key(path: Path) -> tuple[int, ...]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def shard_content_hash(shard: Shard) -> str:
    """xxh3 of what the shard's rows are read from: its byte range (plain JSONL), the compressed file
    (.jsonl.gz), or the Parquet footer and the row groups holding its rows. O(shard), except .gz.

    Within a process the bytes of a shard are read once while its file stays as it was: the hash is reused when
    the file's device, inode, size, mtime and ctime are those it had when hashed and that mtime (and ctime) was
    already `SETTLED_NS` old then; a file written moments before is hashed every time."""
    if shard.members:  # a pack: its files' hashes (each kept as a shard's), in order
        h = xxhash.xxh3_64()
        for m in shard.members:
            h.update(f"{m.file.relpath}\0{m.rows}\0{shard_content_hash(m)}\n".encode())
        return h.hexdigest()
    key = (str(shard.file.path), shard.file.fmt, shard.start, shard.stop, shard.offset, shard.end)
    before = _stat_key(shard.file.path)
    hit = _HASHES.get(key)
    if hit is not None and hit[0] == before:
        return hit[1]
    started = time.time_ns()
    digest = _content_hash(shard)
    if before[3] < started - SETTLED_NS and before[4] < started - SETTLED_NS and _stat_key(shard.file.path) == before:
        _HASHES[key] = (before, digest)
    return digest


def _content_hash(shard: Shard) -> str:
    h = xxhash.xxh3_64()
    h.update(f"{shard.start}:{shard.stop}".encode())
    path = shard.file.path
    if shard.file.fmt == "parquet":
        meta = pq.ParquetFile(path).metadata
        first, last, row = None, None, 0
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            if row < shard.stop and row + group.num_rows > shard.start:  # a row group holding rows of the shard
                for c in (group.column(i) for i in range(group.num_columns)):
                    begin = c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset
                    first = begin if first is None else min(first, begin)
                    stop = begin + c.total_compressed_size
                    last = stop if last is None else max(last, stop)
            row += group.num_rows
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.seek(max(size - 8, 0))
            footer_len = int.from_bytes(fh.read(4), "little")
            fh.seek(max(size - 8 - footer_len, 0))
            h.update(fh.read())  # footer: schema, row-group layout, statistics
            if first is not None and last is not None:
                _hash_range(fh, h, first, last)
    elif shard.file.fmt == "jsonl.gz":
        with open(path, "rb") as fh:
            _hash_range(fh, h, 0, path.stat().st_size)
    else:
        with open(path, "rb") as fh:
            _hash_range(fh, h, shard.offset, shard.end if shard.end >= 0 else path.stat().st_size)
    return h.hexdigest()


def _hash_range(fh: BinaryIO, h: xxhash.xxh3_64, start: int, stop: int) -> None:
    for chunk in _read_range(fh, start, stop):
        h.update(chunk)


# --- reading -------------------------------------------------------------------------------------------------


def _quarantine(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)


def _member_at(shard: Shard, line: int) -> tuple[InputFile, int]:
    """The file and its 1-based line of a shard's 1-based `line` (a pack's lines count across its files)."""
    for m in shard.members:
        if line <= m.rows:
            return m.file, line
        line -= m.rows
    return shard.file, line


def _bad(shard: Shard, line: int, field: str | None, reason: str, raw: str) -> dict:
    file, line = _member_at(shard, line)
    return {
        ROW_ID: f"{file.relpath}:{line}",
        "file": str(file.path),
        "line": line,
        "field": field,
        DROP_OP: SOURCE_OP,
        DROP_KIND: QUARANTINED,
        DROP_REASON: reason,
        "raw": raw,
    }


def _type_name(v: object) -> str:
    return {dict: "object", list: "array", bool: "boolean", int: "number", float: "number"}.get(type(v), "?")


def _check_record(obj: object, text_key: str) -> tuple[str | None, str | None]:
    if not isinstance(obj, dict):
        return f"line is a JSON {_type_name(obj)}, not an object", None
    if text_key not in obj:
        return f"missing field {text_key!r}", text_key
    value = obj[text_key]
    if value is None:
        return f"field {text_key!r} is null", text_key
    if not isinstance(value, str):
        return f"field {text_key!r} is a {_type_name(value)}, not a string", text_key
    return None, None


def json_text(expr: pl.Expr) -> pl.Expr:
    """Each value of `expr` as JSON text (polars' encoder: the same one `write_ndjson` uses)."""
    return pl.struct(expr.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")


# What polars makes of a non-string JSON value read into a string column (a number, a bool, an object).
_LOOKS_COERCED = r"^(?:-?[0-9][0-9.eE+\-]*|true|false)$|^[\[{]"
_STRING_TOKEN = r'"(?:[^"\\]|\\.)*"'
_SURROGATE_ESCAPE = r"\\u[dD][89a-fA-F]"
_INTEGERS = (pl.Int64, pl.Int128, pl.UInt64)
_INFER_ROWS = 100  # rows polars infers the schema from, first
_NATIVE_TRIES = 256  # parses of halves before the rest of a shard takes the per-line path
_NULLS_ARE_JSON = "__nulls_are_json"  # per native row: its null top-level fields were JSON nulls, not absent


def _unsure(expr: pl.Expr, dtype: pl.DataType, top: bool = False) -> pl.Expr:
    """True where polars' value may differ from Python's json: nested nulls (a missing key reads as null),
    strings that may be coerced numbers/bools/objects, integral floats (maybe a JSON int in a float column).
    A null top-level field is fine here: the key count tells an absent key from a JSON null."""
    if dtype == pl.String:
        inner = expr.str.contains(_LOOKS_COERCED)
    elif dtype == pl.Float64:
        inner = expr.round(0) == expr
    elif dtype in _INTEGERS or dtype == pl.Boolean:
        inner = pl.lit(False)
    elif isinstance(dtype, pl.List):
        inner = expr.list.eval(_unsure(pl.element(), dtype.inner)).list.any()
    elif isinstance(dtype, pl.Struct):
        parts = [_unsure(expr.struct.field(f.name), f.dtype) for f in dtype.fields]
        inner = pl.any_horizontal(parts) if parts else pl.lit(False)
    else:
        inner = pl.lit(True)
    if top:
        return pl.when(expr.is_null()).then(pl.lit(False)).otherwise(inner.fill_null(True))
    return (expr.is_null() | inner).fill_null(True)


def _has_struct(dtype: pl.DataType) -> bool:
    if isinstance(dtype, pl.Struct):
        return True
    return isinstance(dtype, pl.List) and _has_struct(dtype.inner)


def _key_count(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Object keys inside a value as polars holds it (a duplicate key in the input is held once)."""
    if isinstance(dtype, pl.Struct):
        fields = [_key_count(expr.struct.field(f.name), f.dtype) for f in dtype.fields]
        return pl.when(expr.is_not_null()).then(pl.sum_horizontal(pl.lit(len(dtype.fields), pl.Int64), *fields))
    if isinstance(dtype, pl.List) and _has_struct(dtype.inner):
        return expr.list.eval(_key_count(pl.element(), dtype.inner)).list.sum().cast(pl.Int64)
    return pl.lit(0, pl.Int64)


def _recount(
    target: pl.Series, lines: pl.Series, rows: pl.Series, pattern: str, repl: str | None = None, count: str = ""
) -> None:
    """Overwrite `target` on `rows` with an exact but slower check of those lines only: `pattern` found
    (repl None), or matches of `count` once `pattern` is replaced by `repl`."""
    at = rows.arg_true()
    if at.len():
        subset = lines.gather(at)
        exact = (
            subset.str.contains(pattern)
            if repl is None
            else subset.str.replace_all(pattern, repl).str.count_matches(count)
        )
        target.scatter(at, exact)


def _nesting(skeleton: str) -> int:
    depth = deepest = 0
    for c in skeleton:
        if c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def _joined(lines: pl.Series) -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"line": lines}).write_csv(buffer, include_header=False, quote_style="never")
    return buffer.getvalue()


def _native_chunks(
    lines: pl.Series, payload: bytes, infer: int | None
) -> tuple[list[tuple[int, pl.DataFrame]], list[int]]:
    """polars' NDJSON reader over the whole shard (`payload`: `lines` as bytes); where it fails, over halves,
    recursively, so a line it rejects, or lines whose types clash (a field that is a bool here and an int
    there), end up in chunks of their own. Returns the parsed chunks as (first line index, frame) and the
    lines left to the per-line path: those rejected alone, and any left when the tries run out."""
    chunks: list[tuple[int, pl.DataFrame]] = []
    left: list[int] = []
    tries = [_NATIVE_TRIES]

    def parse(at: int, count: int, data: bytes | None) -> None:
        tries[0] -= 1
        frame = _native(data if data is not None else _joined(lines.slice(at, count)), count, infer)
        if frame is not None:
            chunks.append((at, frame))
        elif count == 1 or tries[0] <= 0:
            left.extend(range(at, at + count))
        else:
            half = count // 2
            parse(at, half, None)
            parse(at + half, count - half, None)

    if lines.len():
        parse(0, lines.len(), payload)
    return chunks, left


def _judge(frame: pl.DataFrame, checks: pl.DataFrame, text_key: str) -> pl.DataFrame:
    """Per row of a native chunk: `sure` (polars' values are Python's), `fits` (the schema holds every key of the
    line: a schema inferred from more rows cannot do better) and whether its null top-level fields were JSON
    nulls rather than absent keys."""
    schema = frame.schema
    unsure = [_unsure(pl.col(c), t, top=True) for c, t in schema.items()]
    # Keys polars holds. A null top-level field was either absent from the line or a JSON null: the key count
    # tells which when all of a row's null fields are the one or all are the other.
    held = pl.sum_horizontal(
        *[pl.col(c).is_not_null().cast(pl.Int64) for c in schema],
        *[_key_count(pl.col(c), t).fill_null(0) for c, t in schema.items() if _has_struct(t)],
    )
    nulls = pl.sum_horizontal(*[pl.col(c).is_null().cast(pl.Int64) for c in schema])
    keys = pl.lit(checks["keys"])
    text_ok = pl.col(text_key).is_not_null() if schema.get(text_key) == pl.String else pl.lit(False)
    fits = (keys == held) | (keys == held + nulls)
    return frame.select(
        (~pl.any_horizontal(unsure) & fits & ~pl.lit(checks["surrogate"]) & ~pl.lit(checks["hold"]) & text_ok)
        .fill_null(False)
        .alias("sure"),
        ((keys == held + nulls) & (nulls > 0)).fill_null(False).alias(_NULLS_ARE_JSON),
        fits.fill_null(False).alias("fits"),
    )


class _Missing:
    pass


_ABSENT = _Missing()
_I64 = (-(2**63), 2**63 - 1)


def _matches(dtype: pl.DataType | None, values: list) -> bool:
    """Whether Python values (from the per-line path) can share a typed column of `dtype` exactly."""
    if dtype == pl.String:
        return all(type(v) is str for v in values)
    if dtype == pl.Boolean:
        return all(type(v) is bool for v in values)
    if dtype == pl.Int64:
        return all(type(v) is int and _I64[0] <= v <= _I64[1] for v in values)
    if dtype == pl.Float64:
        return all(type(v) is float and math.isfinite(v) for v in values)
    return False


def _python_dtype(values: list) -> pl.DataType | None:
    for dtype in (pl.String, pl.Boolean, pl.Int64, pl.Float64):
        if values and _matches(dtype, values):
            return dtype
    return None


def _assemble(
    natives: list[pl.DataFrame], records: list[dict], record_lines: list[int], shard: Shard, text_key: str
) -> pl.DataFrame:
    """One frame, in line order, of the native chunks (each: a `__line` column, the parsed fields and
    `_NULLS_ARE_JSON`) and the per-line rows. A field is typed when every row has it with one type;
    otherwise it is JSON text (null where a row has no such key) and listed in `RAW_JSON`. Row ids are
    `<file>:<line>`, the line counted in the row's own file (a pack's `__line` counts across its files)."""
    line = "__line"
    natives = [f for f in natives if f.height]
    names = list(dict.fromkeys(c for f in natives for c in f.columns if c not in (line, _NULLS_ARE_JSON)))
    names += [k for k in dict.fromkeys(k for r in records for k in r) if k not in names]
    if text_key not in names:
        names.append(text_key)
    native_cols: list[list[pl.Expr]] = [[pl.col(line)] for _ in natives]
    py_cols = [pl.Series(line, record_lines, dtype=pl.Int64)]
    raw: list[str] = []
    for name in names:
        values = [r.get(name, _ABSENT) for r in records]
        dtype: pl.DataType | None
        if name == text_key:
            dtype = pl.String
        elif natives:
            dtypes = {f.schema.get(name) for f in natives}
            dtype = dtypes.pop() if len(dtypes) == 1 else None
            absent = any(bool((f[name].is_null() & ~f[_NULLS_ARE_JSON]).any()) for f in natives if name in f.columns)
            if dtype is None or absent or (records and not _matches(dtype, values)):
                dtype = None
        else:
            dtype = _python_dtype(values)
        if dtype is not None:
            for cols in native_cols:
                cols.append(pl.col(name).cast(dtype))
            py_cols.append(pl.Series(name, values, dtype=dtype, strict=False))
            continue
        raw.append(name)
        text = (
            pl.when(pl.col(name).is_not_null())
            .then(json_text(pl.col(name)))
            .when(pl.col(_NULLS_ARE_JSON))
            .then(pl.lit("null"))
        )  # null: the row has no such key
        for f, cols in zip(natives, native_cols, strict=True):
            cols.append((text if name in f.columns else pl.lit(None, pl.String)).alias(name))
        py_cols.append(
            pl.Series(name, [None if v is _ABSENT else json.dumps(v, ensure_ascii=False) for v in values], pl.String)
        )
    frames = [f.select(cols) for f, cols in zip(natives, native_cols, strict=True)]
    if records:
        frames.append(pl.DataFrame(py_cols).select(line, *names))
    if not frames:
        df = pl.DataFrame(schema={line: pl.Int64, text_key: pl.String})
    else:
        df = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical").sort(line)
    if shard.members:
        rows = pl.Series([m.rows for m in shard.members], dtype=pl.Int64)
        ends, names = rows.cum_sum(), pl.Series([m.file.relpath for m in shard.members], dtype=pl.String)
        member = ends.search_sorted(df[line], side="left")  # the first file ending at or after the line
        before = (ends - rows).gather(member)
        df = df.with_columns(names.gather(member).alias("__file"), (pl.col(line) - before).alias(line))
        ids = pl.format("{}:{}", pl.col("__file"), pl.col(line)).alias(ROW_ID)
        df = df.select(ids, pl.exclude(line, "__file"))
    else:
        ids = pl.format("{}:{}", pl.lit(shard.file.relpath), pl.col(line)).alias(ROW_ID)
        df = df.select(ids, pl.exclude(line))
    if raw:
        df = df.with_columns(pl.lit(raw, dtype=pl.List(pl.String)).alias(RAW_JSON))
    return df


def _parse_line(raw: bytes, text: str | None, text_key: str) -> tuple[dict | None, str | None, str | None, bool]:
    """The per-line path: (record, reason, field, duplicate keys). Python's json, last duplicate key wins."""
    if text is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"invalid UTF-8 at byte {exc.start}", None, False
    if not text.strip():
        return None, "blank line", None, False
    duplicate = False

    def pairs(items: list[tuple[str, object]]) -> dict:
        nonlocal duplicate
        obj = dict(items)
        duplicate = duplicate or len(obj) != len(items)
        return obj

    try:
        obj = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        return None, f"malformed JSON: {exc.msg} at column {exc.colno}", None, False
    except RecursionError:
        return None, f"JSON nested deeper than {MAX_NESTING} levels", None, False
    reason, field = _check_record(obj, text_key)
    if reason:
        return None, reason, field, False
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None, "a string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)", None, False
    return obj, None, None, duplicate


def _split_lines(data: bytes, lines: int | None = None) -> tuple[pl.Series, list[bytes] | None]:
    """The lines of `data` as a String series (null where a line is empty or not UTF-8), and the raw byte
    lines when some are not UTF-8 (None otherwise: the common case is split by polars, not in Python).
    `lines`: how many lines `data` holds, when the caller counted them already (shard discovery did)."""
    if not data:
        return pl.Series("line", [], dtype=pl.String), None
    expected = lines if lines is not None else data.count(b"\n") + (not data.endswith(b"\n"))
    try:  # polars' CSV reader as a line splitter: no quoting, a separator JSON text never holds raw
        lines = pl.read_csv(
            io.BytesIO(data),
            has_header=False,
            separator="\x00",
            quote_char=None,
            new_columns=["line"],
            infer_schema=False,
        ).to_series()
        if lines.len() == expected:
            return lines.str.strip_suffix("\r") if b"\r" in data else lines, None
    except (pl.exceptions.PolarsError, ValueError):
        pass
    if data.endswith(b"\n"):
        data = data[:-1]
    raw = data.split(b"\n")
    texts: list[str | None] = []
    for line in raw:
        try:
            texts.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
    return pl.Series("line", texts, dtype=pl.String).str.strip_suffix("\r"), raw


def _native(payload: bytes, lines: int, infer: int | None) -> pl.DataFrame | None:
    """polars' NDJSON reader over the whole shard; None if it rejects it or loses the line alignment."""
    try:
        frame = pl.read_ndjson(io.BytesIO(payload), infer_schema_length=infer)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    return frame if frame.height == lines else None


def _parse_native(
    lines: pl.Series, payload: bytes, checks: pl.DataFrame, first: int, text_key: str, infer: int | None
) -> tuple[list[pl.DataFrame], list[int], int, list[int]]:
    """The rows polars reads as Python would (native frames with `__line`), the indexes of the others, how many
    of those the native parser rejected (their types clashed with the schema), and the indexes of the rows it read
    whose key count the schema does not hold."""
    chunks, slow = _native_chunks(lines, payload, infer)
    rejected, unfit = len(slow), []
    natives = []
    for at, frame in chunks:
        if not frame.width:
            slow.extend(range(at, at + frame.height))
            continue
        judged = _judge(frame, checks.slice(at, frame.height), text_key)
        unfit.extend(at + i for i in (~judged["fits"]).arg_true().to_list())
        line = pl.int_range(first + at, first + at + frame.height, dtype=pl.Int64).alias("__line")
        frame = frame.with_columns(line, judged[_NULLS_ARE_JSON])
        natives.append(frame if judged["sure"].all() else frame.filter(judged["sure"]))
        slow.extend(at + i for i in (~judged["sure"]).arg_true().to_list())
    return natives, sorted(slow), rejected, unfit


def _schema_lacks(lines: pl.Series, rows: list[int], natives: list[pl.DataFrame], sample: int = 20) -> bool:
    """Whether a schema inferred from more rows could read more of `rows` natively: some of them (a sample) hold
    a key the native frames lack. (A key count is also off for a text that opens with ':', ":mod:`x`", which no
    schema changes.)"""
    known = {c for f in natives for c in f.columns}
    for i in rows[:sample]:
        try:
            obj = json.loads(lines[i] or "")
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict) and set(obj) - known:
            return True
    return False


def _read_jsonl(shard: Shard, data: bytes, text_key: str) -> ShardRead:
    first = shard.start + 1
    # Discovery counted a plain JSONL shard's lines over these very bytes: no second count.
    series, raw_lines = _split_lines(data, shard.rows if shard.file.fmt == "jsonl" else None)
    n = series.len()
    text = pl.col("line")
    # One select, so polars runs the line checks side by side on its threads (each a pass over the shard).
    scan = pl.DataFrame({"line": series}).select(
        text.str.count_matches(r'"\s*:').fill_null(0).alias("keys"),  # an unescaped '"' then ':' ends every key
        text.str.contains(r'\\"\s*:').fill_null(False).alias("escaped_key"),
        text.str.contains(r"\u", literal=True).fill_null(False).alias("surrogate"),
        (~text.str.contains(r"\S")).fill_null(True).alias("hold"),  # blank, or not UTF-8
        text.str.count_matches(r"[\[{]").fill_null(0).alias("brackets"),
    )
    keys, surrogate = scan["keys"], scan["surrogate"]
    # A '\":' inside a string also counts; on those rows count the keys exactly, with strings emptied.
    _recount(keys, series, scan["escaped_key"], _STRING_TOKEN, '""', r'""\s*:')
    _recount(surrogate, series, surrogate, _SURROGATE_ESCAPE)
    checks = pl.DataFrame({"hold": scan["hold"], "brackets": scan["brackets"], "keys": keys, "surrogate": surrogate})
    many = (checks["brackets"] > MAX_NESTING).arg_true()
    skeleton = series.gather(many).str.replace_all(_STRING_TOKEN, '""')  # strings emptied: brackets stay
    deep = {i for i, sk in zip(many.to_list(), skeleton.to_list(), strict=True) if _nesting(sk) > MAX_NESTING}
    if deep:
        checks = checks.with_columns(pl.col("hold") | pl.Series([i in deep for i in range(n)]))
    # Lines the native parser must not see (blank, not UTF-8, too deep) stand in as `{}`, keeping alignment.
    if checks["hold"].any():
        native_input = pl.select(pl.when(~checks["hold"]).then(series).otherwise(pl.lit("{}"))).to_series()
        payload = _joined(native_input)
    else:
        native_input, payload = series, data
    # The schema is inferred from the first rows (cheap); a later field or type it lacks only makes those rows
    # unsure, and when they are many the shard is parsed again with the schema inferred from every row. (Rows
    # unsure for their values, such as a text that looks like a number, stay so under any schema.)
    natives, slow, rejected, unfit = _parse_native(native_input, payload, checks, first, text_key, _INFER_ROWS)
    misses = rejected + (len(unfit) if _schema_lacks(native_input, unfit, natives) else 0)
    if misses > _INFER_ROWS and misses * 100 > n:
        natives, slow, _, _ = _parse_native(native_input, payload, checks, first, text_key, None)

    def raw(i: int) -> bytes:
        return raw_lines[i] if raw_lines is not None else (series[i] or "").encode()

    bad: list[dict] = []
    records, record_lines, duplicates = [], [], 0
    for i in slow:
        line = raw(i).rstrip(b"\r")
        if i in deep:
            obj, reason, field, duplicate = None, f"JSON nested deeper than {MAX_NESTING} levels", None, False
        else:
            obj, reason, field, duplicate = _parse_line(line, series[i], text_key)
        if obj is None:
            shown = line.decode("utf-8", errors="backslashreplace")
            bad.append(_bad(shard, first + i, field, reason or "?", shown))
            continue
        records.append(obj)
        record_lines.append(first + i)
        duplicates += duplicate
    kept = _assemble(natives, records, record_lines, shard, text_key)
    return ShardRead(kept, _quarantine(bad), duplicates)


def _jsonl_bytes(shard: Shard) -> bytes:
    """The bytes of the shard's lines, without a file's byte-order mark (encoding noise, not data); a pack's
    files one after the other, each ending in a newline."""
    if shard.members:
        parts = [_jsonl_bytes(m) for m in shard.members]
        return b"".join(data if data.endswith(b"\n") else data + b"\n" for data in parts)
    data = _file_bytes(shard)
    return data[len(_BOM) :] if shard.start == 0 and data.startswith(_BOM) else data


def _file_bytes(shard: Shard) -> bytes:
    """A one-file shard's bytes as they lie: a seek and one read for plain JSONL, a decompression for .gz."""
    if shard.file.fmt == "jsonl.gz":
        data = _gunzip(shard.file.path)
        if shard.start == 0 and shard.stop >= data.count(b"\n") + 1:
            return data
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        return b"\n".join(lines[shard.start : shard.stop])
    with open(shard.file.path, "rb") as fh:
        fh.seek(shard.offset)
        return fh.read(shard.end - shard.offset) if shard.end >= 0 else fh.read()


def _read_parquet(shard: Shard, text_key: str) -> ShardRead:
    df = pl.scan_parquet(shard.file.path).slice(shard.start, shard.rows).collect()
    ids = pl.format("{}:{}", pl.lit(shard.file.relpath), pl.int_range(shard.start + 1, shard.stop + 1)).alias(ROW_ID)
    df = df.select(ids, pl.all())
    every_row = pl.Series([True] * df.height, dtype=pl.Boolean)
    if text_key not in df.columns:
        reason, mask = f"missing field {text_key!r} (columns: {', '.join(df.columns[1:])})", every_row
    elif df.schema[text_key] != pl.String:
        reason, mask = f"field {text_key!r} is {df.schema[text_key]}, not a string", every_row
    else:
        reason, mask = f"field {text_key!r} is null", df[text_key].is_null()
    bad_rows = df.filter(mask)
    bad = [
        _bad(
            shard,
            int(rid.rpartition(":")[2]),
            text_key,
            reason,
            json.dumps(row, ensure_ascii=False, default=str),
        )
        for rid, row in zip(bad_rows[ROW_ID], bad_rows.drop(ROW_ID).iter_rows(named=True), strict=True)
    ]
    kept = df.filter(~mask)
    if text_key not in kept.columns or kept.schema[text_key] != pl.String:
        # no usable row: the text column as downstream ops expect it, not the file's other type
        kept = kept.with_columns(pl.lit(None, pl.String).alias(text_key))
    return ShardRead(kept, _quarantine(bad))


def read_shard(shard: Shard, text_key: str) -> ShardRead:
    """Rows to process and quarantined rows: every row of the shard is in exactly one of the two."""
    if shard.file.fmt == "parquet" and shard.members:  # Parquet files of one schema, one after the other
        reads = [_read_parquet(m, text_key) for m in shard.members]
        return ShardRead(pl.concat([r.kept for r in reads]), pl.concat([r.quarantined for r in reads]))
    if shard.file.fmt == "parquet":
        return _read_parquet(shard, text_key)
    return _read_jsonl(shard, _jsonl_bytes(shard), text_key)


# --- the source's checkpoint: a reference to the shard it read ---------------------------------------------------

# Bumped whenever `read_shard` would give other rows for the same bytes: an input reference written by another
# version is then not read back (its step runs again).
READER_VERSION = 1
SHARD_READER = "shard"


def shard_reference(shard: Shard, text_key: str, content_hash: str) -> InputRef | None:
    """The source's kept rows as an input reference (resources.storage) to `shard`, or None where reading the
    shard again costs more than reading a checkpoint: a .jsonl.gz shard is a decompression of its whole file."""
    if any(s.file.fmt == "jsonl.gz" for s in (shard, *shard.members)):
        return None
    args = {"version": READER_VERSION} | _shard_args(shard)
    if shard.members:
        args["members"] = [_shard_args(m) for m in shard.members]
    return InputRef(SHARD_READER, args | {"text_key": text_key, "xxh3": content_hash})


def _shard_args(shard: Shard) -> dict:
    f = shard.file
    path = str(f.path.absolute())  # read back from any working directory (a run worker's, a later `sluice run`'s)
    args = {"file": path, "relpath": f.relpath, "fmt": f.fmt, "key": shard.key, "index": shard.index}
    return args | {"start": shard.start, "stop": shard.stop, "offset": shard.offset, "end": shard.end}


def _shard_from_args(args: dict) -> Shard:
    f = InputFile(Path(args["file"]), args["relpath"], args["fmt"])
    members = tuple(_shard_from_args(m) for m in args.get("members", ()))
    return Shard(args["key"], f, args["index"], args["start"], args["stop"], args["offset"], args["end"], members)


def _read_reference(args: dict) -> pl.DataFrame:
    if args.get("version") != READER_VERSION:
        raise CorruptCheckpointError(f"written by input reader version {args.get('version')}, not {READER_VERSION}")
    shard = _shard_from_args(args)
    f = shard.file
    try:
        digest = shard_content_hash(shard)
    except OSError as exc:
        where = exc.filename or f.path
        raise MissingCheckpointError(f"its input {where} cannot be read ({exc.strerror or exc})") from exc
    if digest != args["xxh3"]:
        what = f"{f.path} and the {len(shard.members) - 1} files after it" if shard.members else f.path
        raise CorruptCheckpointError(f"its input {what} changed since the shard was read (rows {shard.key})")
    return read_shard(shard, args["text_key"]).kept


register_input_reader(SHARD_READER, _read_reference)
