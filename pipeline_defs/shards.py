"""Input shards: `dataset_path` (a file, a directory or a glob of JSONL / JSONL.gz / Parquet) split into
shards of `partition.size` rows of one file. A shard is a Dagster partition.

Shard keys are `<relative path>@<shard index>`: the same input gives the same keys, so materializations stay
valid, and appending a file adds keys without renaming any. Input order = files sorted by relative path, then
rows; `shard_order` recovers it from the keys alone.

Reading a shard never loses a row: a line that is not a JSON object with a string text field goes to the
quarantine frame with its file, line, field and reason; everything else is kept.
"""

from __future__ import annotations

import glob
import gzip
import io
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import xxhash

from ops_library.columns import DROP_KIND, DROP_OP, DROP_REASON, QUARANTINED, ROW_ID

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

    @property
    def rows(self) -> int:
        return self.stop - self.start


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
        raise DatasetError(f"dataset_path {dataset_path!r} does not exist")
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


def _open_binary(f: InputFile) -> io.BufferedIOBase:
    return gzip.open(f.path, "rb") if f.fmt == "jsonl.gz" else open(f.path, "rb")  # type: ignore[return-value]


def count_rows(f: InputFile) -> int:
    """Rows of a file: Parquet rows, or JSONL lines (a last line without newline counts)."""
    if f.fmt == "parquet":
        try:
            return pq.ParquetFile(f.path).metadata.num_rows
        except Exception as exc:
            raise DatasetError(f"{f.path}: not a readable Parquet file ({exc})") from exc
    lines, last = 0, b"\n"
    with _open_binary(f) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def shard_content_hash(shard: Shard) -> str:
    """xxh3 of the shard's rows as stored (JSONL lines, or the Parquet file and row range): what the source
    step's checkpoint is valid for."""
    h = xxhash.xxh3_64()
    if shard.file.fmt == "parquet":
        with open(shard.file.path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(f"{shard.start}:{shard.stop}".encode())
    else:
        with _open_binary(shard.file) as fh:
            for line in itertools.islice(fh, shard.start, shard.stop):
                h.update(line)
    return h.hexdigest()


def make_key(relpath: str, index: int) -> str:
    return f"{relpath}@{index:05d}"


def shard_order(key: str) -> tuple[str, int]:
    relpath, _, index = key.rpartition("@")
    return relpath, int(index)


def _rows_per_shard(spec: Any) -> int:
    return spec if isinstance(spec, int) else spec.size


def discover_shards(dataset_path: str, spec: Any) -> list[Shard]:
    size = _rows_per_shard(spec)
    shards = []
    for f in discover_files(dataset_path):
        n = count_rows(f)
        for i, start in enumerate(range(0, n, size)):
            shards.append(Shard(make_key(f.relpath, i), f, i, start, min(start + size, n)))
    return shards


def shard_for_key(dataset_path: str, spec: Any, key: str) -> Shard:
    """Find a shard by its key without counting every file: only the file it names."""
    size = _rows_per_shard(spec)
    relpath, index = shard_order(key)
    for f in discover_files(dataset_path):
        if f.relpath == relpath:
            n = count_rows(f)
            start = index * size
            if start >= n and not (n == 0 and index == 0):
                break
            return Shard(key, f, index, start, min(start + size, n))
    raise DatasetError(f"partition {key!r} is not a shard of {dataset_path!r} (input changed since it was registered?)")


# --- reading -------------------------------------------------------------------------------------------------


def _quarantine(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)


def _bad(shard: Shard, line: int, field: str | None, reason: str, raw: str) -> dict:
    return {
        ROW_ID: f"{shard.file.relpath}:{line}",
        "file": str(shard.file.path),
        "line": line,
        "field": field,
        DROP_OP: SOURCE_OP,
        DROP_KIND: QUARANTINED,
        DROP_REASON: reason,
        "raw": raw,
    }


def _column(name: str, values: list) -> pl.Series:
    """A column as polars infers it; if rows disagree on its type, keep every value as JSON text instead of
    coercing some of them to null."""
    try:
        return pl.Series(name, values, strict=True)
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        return pl.Series(name, [None if v is None else json.dumps(v, ensure_ascii=False) for v in values])


def _frame(records: list[dict], ids: list[str], text_key: str) -> pl.DataFrame:
    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(r))
    cols = [pl.Series(ROW_ID, ids, dtype=pl.String)]
    cols += [_column(n, [r.get(n) for r in records]) for n in names]
    df = pl.DataFrame(cols)
    if text_key not in df.columns:  # no valid row: keep the schema downstream ops expect
        return df.with_columns(pl.lit(None, pl.String).alias(text_key))
    return df


def _type_name(v: object) -> str:
    return {dict: "object", list: "array", bool: "boolean", int: "number", float: "number"}.get(type(v), "?")


def _read_jsonl(shard: Shard, text_key: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    records, ids, bad = [], [], []
    with _open_binary(shard.file) as fh:
        lines: Iterable[bytes] = itertools.islice(fh, shard.start, shard.stop)
        for lineno, raw in enumerate(lines, start=shard.start + 1):
            raw = raw.rstrip(b"\r\n")
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark is encoding noise, not data
            shown = raw.decode("utf-8", errors="backslashreplace")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad.append(_bad(shard, lineno, None, f"invalid UTF-8 at byte {exc.start}", shown))
                continue
            if not text.strip():
                bad.append(_bad(shard, lineno, None, "blank line", shown))
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                bad.append(_bad(shard, lineno, None, f"malformed JSON: {exc.msg} at column {exc.colno}", shown))
                continue
            reason, field = _check_record(obj, text_key)
            if reason:
                bad.append(_bad(shard, lineno, field, reason, shown))
                continue
            records.append(obj)
            ids.append(f"{shard.file.relpath}:{lineno}")
    return _frame(records, ids, text_key), _quarantine(bad)


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


def _read_parquet(shard: Shard, text_key: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    df = pl.scan_parquet(shard.file.path).slice(shard.start, shard.rows).collect()
    ids = pl.Series(ROW_ID, [f"{shard.file.relpath}:{i}" for i in range(shard.start + 1, shard.stop + 1)])
    df = df.insert_column(0, ids)
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
    return df.filter(~mask), _quarantine(bad)


@dataclass(frozen=True)
class ShardRead:
    """A shard as read: rows to process and quarantined rows (every row is in exactly one of the two)."""

    kept: pl.DataFrame
    quarantined: pl.DataFrame
    duplicate_key_rows: int = 0


def read_shard(shard: Shard, text_key: str) -> ShardRead:
    if shard.file.fmt == "parquet":
        return ShardRead(*_read_parquet(shard, text_key))
    return ShardRead(*_read_jsonl(shard, text_key))
