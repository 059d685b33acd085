"""The checkpoint files' format, without Dagster: names, sidecars (`CheckpointMeta`), atomic writes, input
references, and where a checkpoint lies (`checkpoint_path`). `resources/storage.py` (the module docstring there
says what a checkpoint holds) writes and reads them as a Dagster resource; `sluice run` reads sidecars from here
before it imports Dagster (pipeline_defs/prefetch.py)."""

from __future__ import annotations

import base64
import json
import mmap
import os
import uuid
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl
import pyarrow as pa
import xxhash

UNPARTITIONED = "__all__"
# A selection's column: each row's position in the checkpoint it was selected from (see the module docstring).
BASE_ROW = "__sluice_base_row__"
# A selection's column `CHANGED_PREFIX + c`: the rows where text column `c` differs from the base's (where `c` is
# stored; null elsewhere, the base's value standing).
CHANGED_PREFIX = "__sluice_changed__:"
# A selection is written when the columns it leaves out hold at least this share of the frame's bytes.
SELECTION_MIN_SHARE = 0.5
_MAX_CHAIN = 256  # selections of selections: a longer chain is a damaged sidecar
# Input metadata key: the consumer wants every partition of a partitioned upstream, as {key: frame}.
LOAD_ALL_PARTITIONS = "sluice/load_all_partitions"
_SUFFIX = {"parquet": ".parquet", "arrow": ".arrow", "jsonl": ".jsonl"}
# Input references (module docstring): reader name -> function of its arguments giving the rows back, raising
# MissingCheckpointError / CorruptCheckpointError when the input is gone or no longer holds them.
INPUT_READERS: dict[str, Callable[[dict[str, Any]], pl.DataFrame]] = {}


def register_input_reader(name: str, read: Callable[[dict[str, Any]], pl.DataFrame]) -> None:
    INPUT_READERS[name] = read


def row_group_rows(df: pl.DataFrame) -> int:
    """Rows per Parquet row group: polars encodes (and decodes) a file's row groups in parallel, one per thread,
    so a shard is cut into at least as many as polars has threads (and into 128 MB pieces beyond that), never
    below 1,024 rows. One row group per shard encoded on one core: 0.20 s for 20k documents (55 MB) on 2 cores,
    against 0.10 s in two."""
    groups = max(pl.thread_pool_size(), -(-int(df.estimated_size()) // (128 << 20)))
    return max(1024, -(-df.height // groups))


@contextmanager
def atomic_write(path: Path, durable: bool = True):
    """Yield a temp path beside `path`; on success rename it over `path`, so readers never see half a file.

    `durable`: the bytes reach the disk (fsync) before the rename, so the file survives a power loss or an OS
    crash, not only a crash of the process (which loses nothing the kernel was handed). Checkpoints pass False
    (`CheckpointStore.write`): every read checks a checkpoint's size and hash against its sidecar, so one torn by
    a power loss reads as corrupt and is recomputed, and an fsync per file (hundreds in a run of the 10-op bench
    recipe, each waiting for a journal commit) held the background writers, and with them the steps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if durable:
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


@dataclass(frozen=True)
class Base:
    """A checkpoint as a step read it: its path, its sidecar, and the frame it holds."""

    path: Path
    meta: CheckpointMeta
    frame: pl.DataFrame


@dataclass(frozen=True)
class InputRef:
    """Rows that an input reader gives back from its arguments (an input reference, module docstring)."""

    reader: str
    args: dict[str, Any]


@dataclass
class StepOutput:
    """What a step hands the IO manager: rows that go on, rows dropped (with reasons), and its fingerprint;
    `base`: the checkpoint the step computed them from, so that both parts may be stored as selections of it;
    `input`: the kept rows are these input rows, stored as a reference to them."""

    kept: pl.DataFrame
    dropped: pl.DataFrame | None = None
    fingerprint: str = ""
    base: Base | None = None
    input: InputRef | None = None


@dataclass(frozen=True)
class CheckpointMeta:
    rows: int
    bytes: int
    xxh3: str
    fingerprint: str
    written_at: str
    # Rows of the step's dropped part written beside it (None: it dropped nothing), so a lost part is noticed.
    dropped: int | None = None
    # A selection (module docstring): the checkpoint its rows come from, relative to the checkpoint dir, the hash
    # of that checkpoint's bytes as read, and the frame's columns in order. None for a full checkpoint.
    base: str | None = None
    base_xxh3: str | None = None
    columns: list[str] | None = None
    # A selection's text columns stored only where they changed (CHANGED_PREFIX + column: the rows that did).
    patched: list[str] | None = None
    # A JSONL checkpoint's column types (its Arrow schema, base64), so that a read gives back the frame written:
    # JSON has no unsigned or 32-bit ints, and binary columns (a dedup's hashes) are written as hex text.
    schema: str | None = None
    # An input reference: the name of the reader of the arguments the file holds (`rows` counts the rows it
    # stands for, not the file's one row).
    input: str | None = None

    @classmethod
    def load(cls, path: Path) -> CheckpointMeta | None:
        try:
            return cls(**json.loads(meta_path(path).read_text()))
        except (OSError, ValueError, TypeError):
            return None


class Digest:
    """(bytes, xxh3) of bytes added in order: `file_digest` of a file, or of a file being written, from the bytes
    as they are written (the export's files are not read back: pipeline_defs/export.py)."""

    def __init__(self) -> None:
        self._hash = xxhash.xxh3_64()
        self.size = 0

    def add(self, data: bytes | memoryview | mmap.mmap) -> None:
        self._hash.update(data)
        self.size += len(data)

    def add_mapped(self, path: Path) -> None:
        """A file of ours that nothing changes meanwhile, hashed where it lies (mapped, not copied)."""
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    self.add(mapped)

    @property
    def value(self) -> tuple[int, str]:
        return self.size, self._hash.hexdigest()


def file_digest(path: Path) -> tuple[int, str]:
    """(bytes, xxh3) of a file, read in 1 MiB chunks."""
    digest = Digest()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.add(chunk)
    return digest.value


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _schema_text(df: pl.DataFrame) -> str:
    return base64.b64encode(df.clear().to_arrow().schema.serialize().to_pybytes()).decode("ascii")


def _schema_of(text: str) -> pl.Schema:
    arrow = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))
    return pl.DataFrame(pl.from_arrow(arrow.empty_table())).schema


def _hash(data: bytes) -> str:
    return xxhash.xxh3_64_hexdigest(data)


def checkpoint_path(
    base_dir: str, fmt: str, compression: str, asset_key: Sequence[str], partition: str | None, part: str = "kept"
) -> Path:
    """`<base_dir>/<asset key path>/<quoted partition>[.<part>].<format>` (`CheckpointStore.path`)."""
    name = quote(partition or UNPARTITIONED, safe="@")
    extra = "" if part == "kept" else f".{part}"
    suffix = _SUFFIX[fmt] + (".gz" if fmt == "jsonl" and compression == "gzip" else "")
    return Path(base_dir).joinpath(*asset_key) / f"{name}{extra}{suffix}"
