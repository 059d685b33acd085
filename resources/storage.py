"""Checkpoints: each (asset, partition) is one Parquet file (zstd) under the Sluice home, written atomically.

A materialization *is* the checkpoint: downstream steps read it back through the IO manager. An op's output
has two parts, the rows that go on (`<partition>.parquet`) and the rows it removed, with their reasons
(`<partition>.dropped.parquet`); the export and the row accounting read the second.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
import polars as pl

from ops_library.base import OpOutput

UNPARTITIONED = "__all__"
# Input metadata key: the consumer wants every partition of a partitioned upstream, as {key: frame}.
LOAD_ALL_PARTITIONS = "sluice/load_all_partitions"


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


class CheckpointStore(dg.ConfigurableResource):
    """Parquet files under `base_dir`: `<asset key path>/<quoted partition>[.dropped].parquet`."""

    base_dir: str
    compression: str = "zstd"

    def path(self, asset_key: Sequence[str], partition: str | None, part: str = "kept") -> Path:
        name = quote(partition or UNPARTITIONED, safe="@")
        suffix = ".parquet" if part == "kept" else f".{part}.parquet"
        return Path(self.base_dir).joinpath(*asset_key) / f"{name}{suffix}"

    def write(self, df: pl.DataFrame, path: Path) -> None:
        with atomic_write(path) as tmp:
            df.write_parquet(tmp, compression=self.compression)  # type: ignore[arg-type]

    def read(self, path: Path, where: pl.Expr | None = None) -> pl.DataFrame:
        if not path.exists():
            raise MissingCheckpointError(f"checkpoint {path} does not exist")
        if where is None:
            return pl.read_parquet(path)
        return pl.scan_parquet(path).filter(where).collect()

    def read_dropped(self, asset_key: Sequence[str], partition: str | None) -> pl.DataFrame | None:
        path = self.path(asset_key, partition, "dropped")
        return pl.read_parquet(path) if path.exists() else None


class ParquetCheckpointIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames and `OpOutput`s as Parquet checkpoints; loads one partition, or all of them when the
    input asks for it (`AssetIn(metadata={LOAD_ALL_PARTITIONS: True})`, the shape of global stages)."""

    store: CheckpointStore

    def _key(self, context: dg.OutputContext | dg.InputContext) -> list[str]:
        return list(context.asset_key.path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        partition = context.partition_key if context.has_partition_key else None
        key = self._key(context)
        if isinstance(obj, OpOutput):
            self.store.write(obj.kept, self.store.path(key, partition))
            if obj.dropped is not None:
                self.store.write(obj.dropped, self.store.path(key, partition, "dropped"))
        elif isinstance(obj, pl.DataFrame):
            self.store.write(obj, self.store.path(key, partition))
        else:
            raise TypeError(f"{'/'.join(key)}: cannot checkpoint a {type(obj).__name__}")

    def load_input(self, context: dg.InputContext) -> Any:
        key = self._key(context)
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
