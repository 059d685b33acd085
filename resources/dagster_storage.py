"""The embedded instance's storage: Dagster's SQLite storage with one pooled engine per database file.

Dagster's SQLite storages open a new SQLAlchemy engine (and a new SQLite connection) for every statement
batch: storing one event opens the run's database and the index two or three times, and nothing compiled is
reused, because SQLAlchemy caches compiled statements per engine. A range run over 8 shards and 6 assets
spends about 1.2 s of its 1.8 s on that (`python bench/dagster_storage.py`). These subclasses keep the same
files, schema, migrations and locking, and change only how a connection is obtained: one engine per (process,
database file), whose pool keeps a few connections open, with `synchronous=NORMAL` (still durable across a
process crash in WAL mode; the journal mode itself is Dagster's). They also turn on Dagster's event batching and
write a batch (a step's materializations of its shards, a run's planned materializations) in one transaction per
database, as Dagster's PostgreSQL storage does, where Dagster's SQLite storage stores them one by one.

Each SQLite database Dagster opens (the runs', the schedules', the event index, each run's events) is checked
against the migration scripts: Dagster builds an alembic `ScriptDirectory` per check and per stamp, and each
parses its ~90 revision files again (9 times in a `sluice run` on a fresh home, 4 in every step process a
multiprocess run forks). The scripts are files of the installed Dagster, so this module keeps one
`ScriptDirectory` per Dagster alembic config's content for the process (`_memoize_dagster_migrations`: the three
storages' alembic.ini files are the same bytes, so one parse serves them all), and the forkserver parses them
once for every step process it forks (`warm_migrations`).

A database Dagster is about to create is created first in WAL mode (`_create_in_wal_mode` for the runs' and the
schedules' databases, `_initdb` for the event index and the run template), the mode Dagster switches it to once
its tables exist: in SQLite's default rollback-journal mode each statement of the schema waited for its journal
to be synced (256 fsyncs opening a fresh instance, 94 now). With the single parse, opening a fresh instance (its
modules imported) went from a median of 0.41 s to 0.31 s (10 alternating rounds, 2 cores).

Configured in the `dagster.yaml` Sluice writes under `$SLUICE_HOME/dagster_home` (`storage: custom`); the web
server, the daemon and `dagster job execute` read the same file and import this module from the project.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as db
from alembic.config import Config
from alembic.script import ScriptDirectory
from dagster import __version__ as dagster_version
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import ALEMBIC_SCRIPTS_LOCATION, get_alembic_config
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy.pool import NullPool

from resources.run_checks import CheckedRunStorage

# Run databases a long-lived process (the web server) keeps engines for; the least recently used is closed.
MAX_ENGINES = 32
# Dagster's event batching (`DAGSTER_EVENT_BATCH_SIZE`, off unless set): the events of one batch (a step's
# materializations of its shards, a run's planned materializations) reach `store_event_batch` together, at most
# this many at a time. Set by the event log storage below, which writes a batch in one transaction per database.
EVENT_BATCH_SIZE = 200

_engines: OrderedDict[tuple[int, str], db.Engine] = OrderedDict()
_lock = threading.Lock()


def _memoize_dagster_migrations() -> None:
    """`ScriptDirectory.from_config` returns one object per alembic config file content (each file read once) for
    Dagster's own script location
    (`dagster._core.storage.sql.ALEMBIC_SCRIPTS_LOCATION`), so its parsed revision map is reused; any other
    location (a user's alembic) is read as alembic reads it."""
    if getattr(ScriptDirectory.from_config, "_sluice_memoized", False):
        return
    original = ScriptDirectory.from_config.__func__  # type: ignore[attr-defined]
    scripts: dict[bytes | None, ScriptDirectory] = {}
    contents: dict[str, bytes] = {}  # config file -> its bytes, read once
    lock = threading.Lock()

    def from_config(cls: type[ScriptDirectory], config: Config) -> ScriptDirectory:
        if cls is not ScriptDirectory or config.get_main_option("script_location") != ALEMBIC_SCRIPTS_LOCATION:
            return original(cls, config)
        name = config.config_file_name
        with lock:
            # Dagster's three SQLite storages ship byte-identical alembic.ini files: one parse serves the three
            if name and name not in contents:
                contents[name] = Path(name).read_bytes()
            key = contents[name] if name else None
            script = scripts.get(key)
            if script is None:
                script = scripts[key] = original(cls, config)
            return script

    from_config._sluice_memoized = True  # type: ignore[attr-defined]
    ScriptDirectory.from_config = classmethod(from_config)  # type: ignore[assignment,method-assign]


_memoize_dagster_migrations()


def warm_migrations() -> None:
    """Parse Dagster's migration scripts for its three SQLite storages now (`pipeline_defs.forkserver`)."""
    from dagster._core.storage.event_log.sqlite import sqlite_event_log
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.schedules.sqlite import sqlite_schedule_storage

    for module in (sqlite_event_log, sqlite_run_storage, sqlite_schedule_storage):
        ScriptDirectory.from_config(get_alembic_config(module.__file__)).get_current_head()


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def pooled_engine(conn_string: str) -> db.Engine:
    """The process's engine for one database file (a forked child makes its own, never reusing the parent's)."""
    key = (os.getpid(), conn_string)
    with _lock:
        engine = _engines.get(key)
        if engine is not None:
            _engines.move_to_end(key)
            return engine
        engine = db.create_engine(
            conn_string,
            pool_size=2,
            max_overflow=16,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        db.event.listen(engine, "connect", _on_connect)
        _engines[key] = engine
        while len(_engines) > MAX_ENGINES:
            _, old = _engines.popitem(last=False)
            old.dispose()
        return engine


def dispose_engines(prefix: str = "") -> None:
    """Close the pooled connections to databases whose connection string starts with `prefix`."""
    with _lock:
        for key in [k for k in _engines if k[1].startswith(prefix)]:
            _engines.pop(key).dispose()


@contextmanager
def _transaction(engine: db.Engine) -> Iterator[db.Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


class PooledSqliteRunStorage(CheckedRunStorage, SqliteRunStorage):
    """A run for a partition that is not a shard, or of the whole job without one, is refused before it is
    stored (`run_checks.check_run`; Dagster's `dagster job execute --tags` checks neither)."""

    @contextmanager
    def connect(self) -> Iterator[db.Connection]:
        with _transaction(pooled_engine(self._conn_string)) as conn:
            yield conn

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> PooledSqliteRunStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


class PooledSqliteScheduleStorage(SqliteScheduleStorage):
    @contextmanager
    def connect(self) -> Iterator[db.Connection]:
        with _transaction(pooled_engine(self._conn_string)) as conn:
            yield conn

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> PooledSqliteScheduleStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


def _entry_events(events: Sequence[EventLogEntry], ids: Sequence[int]) -> list[tuple[EventLogEntry, int]]:
    """The events whose asset-key rows a batch must write. Each asset event overwrites its key's row with the
    columns its type sets, so of a key's events of one type only the last one's row is left: Dagster's own
    batched writer (PostgreSQL's) writes that one alone. A key with events of several types keeps them all."""
    by_key: dict[str, list[int]] = {}
    for i, event in enumerate(events):
        key = event.get_dagster_event().asset_key
        by_key.setdefault(key.to_string() if key is not None else "", []).append(i)
    keep: list[int] = []
    for at in by_key.values():
        one_type = len({events[i].dagster_event_type for i in at}) == 1
        keep += at[-1:] if one_type else at
    return [(events[i], ids[i]) for i in sorted(keep)]


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Run databases start as a copy of a template (`run_template_path`) made by Dagster's own `_initdb` once per
    Dagster version: creating the schema and stamping its migration revision costs ~70 ms per run otherwise.
    `has_table`, which Dagster asks before every dynamic-partition lookup, remembers the tables it found."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # While a job holds them still (`partitions_held`): partitions definition -> its keys in order, and as a set
        self._sluice_partitions: dict[str, tuple[list[str], frozenset[str]]] | None = None
        self._sluice_tables: set[str] = set()  # tables `has_table` found (Dagster's __init__ may already ask)
        self._sluice_asset_columns: set[str] = set()  # columns of the asset-key index found
        # The instance reads this at every event; a user's own setting (0: off) is kept.
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))
        super().__init__(base_dir, inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """What `store_event` does for each event, in one transaction on the run's database and one on the
        index, instead of one or two per event. Batches of one run's asset events only (what Dagster batches);
        anything else is stored event by event."""
        if not events:
            return
        if len({e.run_id for e in events}) != 1 or not all(
            e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS for e in events
        ):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            # one INSERT ... RETURNING for the batch (SQLAlchemy's insertmanyvalues), ids in the rows' order
            insert = SqlEventLogStorageTable.insert().returning(
                SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
            )
            ids = [row[0] for row in conn.execute(insert, rows)]
            self._store_asset_event_tags(conn, events, ids)
            for event, event_id in _entry_events(events, ids):
                self._store_asset_event(conn, event, event_id)

    def _initdb(self, engine: db.Engine, for_index_shard: bool = False) -> None:
        """Dagster's, on a database still empty switched to WAL mode first (`_create_in_wal_mode`); one that
        holds tables already is left in its mode."""
        with engine.connect() as conn:
            if not conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        super()._initdb(engine, for_index_shard=for_index_shard)

    def _has_asset_key_col_on_connection(self, conn: db.Connection, column_name: str) -> bool:
        """Dagster inspects the asset-key table's columns before storing each asset event; a column found stays."""
        if column_name in self._sluice_asset_columns:
            return True
        present = super()._has_asset_key_col_on_connection(conn, column_name)
        if present:
            self._sluice_asset_columns.add(column_name)
        return present

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.Connection]:
        with self._db_lock:
            engine = pooled_engine(self.conn_string_for_shard(shard))  # lazy: opens nothing until connected
            if shard not in self._initialized_dbs:
                copied = shard != INDEX_SHARD_NAME and self._start_from_template(self.path_for_shard(shard))
                if not copied:  # a template copy is at this Dagster version's head revision already
                    self._initdb(engine)
                self._initialized_dbs.add(shard)
            with _transaction(engine) as conn:
                yield conn

    def run_template_path(self) -> str:
        return os.path.join(self._base_dir, f".run-template-dagster-{dagster_version}.sqlite")

    def _start_from_template(self, path: str) -> bool:
        """Copy the template to a run database not yet on disk (making the template first if needed); False when
        the database was already there."""
        if os.path.exists(path):
            return False
        template = self.run_template_path()
        if not os.path.exists(template):
            scratch = f"{template}.{os.getpid()}.{threading.get_ident()}.tmp"
            engine = db.create_engine(f"sqlite:///{scratch}", poolclass=NullPool)
            self._initdb(engine)
            with engine.connect() as conn:  # fold the write-ahead log into the file, which is then copied alone
                conn.execute(db.text("PRAGMA wal_checkpoint(TRUNCATE)"))
            engine.dispose()
            for suffix in ("-wal", "-shm"):
                with suppress(FileNotFoundError):
                    os.unlink(scratch + suffix)
            os.replace(scratch, template)
        scratch = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        shutil.copyfile(template, scratch)
        try:
            os.link(scratch, path)  # never over a database another process created meanwhile
        except FileExistsError:
            return False
        finally:
            os.unlink(scratch)
        return True

    @contextmanager
    def partitions_held(self) -> Iterator[None]:
        """Inside, the dynamic partitions are read once per partitions definition: a range run asks whether
        its first and last keys exist and lists all keys for every step and output (~480 queries, 0.16 s of a
        10-op `sluice run`). `sluice run` holds them while its runs execute in this process: it registered the
        job's shards before the first run, under the instance lock. A key this process adds or deletes meanwhile
        re-reads its definition; another process's change is seen after the block."""
        self._sluice_partitions = {}
        try:
            yield
        finally:
            self._sluice_partitions = None

    def _held_partitions(self, partitions_def_name: str) -> tuple[list[str], frozenset[str]] | None:
        held = self._sluice_partitions
        if held is None:
            return None
        found = held.get(partitions_def_name)
        if found is None:
            keys = list(super().get_dynamic_partitions(partitions_def_name))
            found = held[partitions_def_name] = (keys, frozenset(keys))
        return found

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        held = self._held_partitions(partitions_def_name)
        return super().get_dynamic_partitions(partitions_def_name) if held is None else list(held[0])

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        held = self._held_partitions(partitions_def_name)
        if held is None:
            return super().has_dynamic_partition(partitions_def_name, partition_key)
        return partition_key in held[1]

    def add_dynamic_partitions(self, partitions_def_name: str, partition_keys: Sequence[str]) -> None:
        super().add_dynamic_partitions(partitions_def_name, partition_keys)
        if self._sluice_partitions is not None:
            self._sluice_partitions.pop(partitions_def_name, None)

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        super().delete_dynamic_partition(partitions_def_name, partition_key)
        if self._sluice_partitions is not None:
            self._sluice_partitions.pop(partitions_def_name, None)

    def has_table(self, table_name: str) -> bool:
        if table_name in self._sluice_tables:
            return True
        with pooled_engine(self.conn_string_for_shard(INDEX_SHARD_NAME)).connect() as conn:
            present = bool(conn.dialect.has_table(conn, table_name))
        if present:
            self._sluice_tables.add(table_name)
        return present

    def wipe(self) -> None:
        dispose_engines(self.conn_string_for_shard(""))  # the run files are deleted; their engines go first
        super().wipe()

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)


def _create_in_wal_mode(path: str) -> None:
    """A database not yet on disk is created empty in WAL mode, the mode Dagster switches it to right after
    creating its tables: created in SQLite's default rollback-journal mode, each of the ~60 statements of the
    schema and its stamp waited for a journal sync (256 fsyncs opening a fresh instance, 0.05-0.1 s)."""
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


class PooledSqliteStorage(DagsterSqliteStorage):
    """`storage: custom` for the embedded instance: Dagster's SQLite layout under `base_dir`, pooled engines."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = base_dir
        # (the event index is created by its storage's `_initdb`: Dagster creates it only when no file is there)
        for directory, name in ((_runs_directory(base_dir), "runs"), (_schedule_directory(base_dir), "schedules")):
            _create_in_wal_mode(os.path.join(directory, f"{name}.db"))
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = PooledSqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._run_storage.registered = self._event_log_storage.get_dynamic_partitions
        self._inst_data = inst_data
        DagsterStorage.__init__(self)  # DagsterSqliteStorage's own __init__ would open the unpooled storages first

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


@contextmanager
def partitions_held(instance: Any) -> Iterator[None]:
    """`PooledSqliteEventLogStorage.partitions_held` on the instance's event log storage; nothing for another
    storage (PostgreSQL's)."""
    storage = instance.event_log_storage
    if isinstance(storage, PooledSqliteEventLogStorage):
        with storage.partitions_held():
            yield
    else:
        yield
