"""The embedded instance's pooled SQLite storage: Dagster's own layout and schema, one engine per database file."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

from resources import dagster_storage, run_checks
from resources.dagster_storage import PooledSqliteEventLogStorage, _entry_events
from resources.settings import _DAGSTER_YAML_V1, SluiceHome

PARTS = dg.StaticPartitionsDefinition(["a", "b", "c"])


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run())
def numbers(context):
    for k in context.partition_keys:
        context.add_asset_metadata({"shard": k}, partition_key=k)
    return dg.MaterializeResult(metadata={"shards": len(context.partition_keys)})


def _instance(home: Path) -> dg.DagsterInstance:
    SluiceHome(home=home).ensure_dagster_home()
    return dg.DagsterInstance.get()


def test_a_fresh_home_uses_the_pooled_storage_and_dagster_stock_storage_reads_what_it_wrote(
    sluice_home: Path,
) -> None:
    instance = _instance(sluice_home)
    assert isinstance(instance._event_storage, PooledSqliteEventLogStorage)
    tags = {"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "c"}
    result = dg.materialize([numbers], instance=instance, tags=tags)
    assert result.success
    # Dagster's stock SQLite storage over the same directory sees the same run and materializations.
    stock = DagsterSqliteStorage.from_local(str(sluice_home / "dagster_home"))
    records = stock.event_log_storage.fetch_materializations(dg.AssetKey("numbers"), limit=10).records
    assert sorted(r.partition_key for r in records) == ["a", "b", "c"]
    assert [r.dagster_run.run_id for r in stock.run_storage.get_run_records()] == [result.run_id]


def test_an_engine_is_made_once_per_database_file_and_process(sluice_home: Path, monkeypatch) -> None:
    made: list[str] = []
    real = dagster_storage.db.create_engine
    monkeypatch.setattr(dagster_storage.db, "create_engine", lambda url, **kw: made.append(url) or real(url, **kw))
    dagster_storage.dispose_engines()
    instance = _instance(sluice_home)
    for _ in range(3):
        assert dg.materialize([numbers], instance=instance, partition_key="a").success
    # three runs: the runs, index and schedules databases, one per run, whatever the number of events, and one
    # that makes the run-database template
    assert len(made) == len(set(made)) == 3 + 3 + 1
    assert sum(".run-template-" in url for url in made) == 1
    monkeypatch.setattr(dagster_storage.os, "getpid", lambda: -1)  # a forked child never reuses its parent's
    assert dg.materialize([numbers], instance=instance, partition_key="b").success
    assert len(made) > 7


def test_wipe_closes_the_pooled_run_databases_before_deleting_them(sluice_home: Path) -> None:
    instance = _instance(sluice_home)
    assert dg.materialize([numbers], instance=instance, partition_key="a").success
    instance.wipe()
    assert not list((sluice_home / "dagster_home" / "history" / "runs").glob("*-*.db"))
    result = dg.materialize([numbers], instance=instance, partition_key="b")
    assert result.success
    assert len(instance.get_run_records()) == 1


def test_a_home_from_an_earlier_version_is_upgraded_and_a_user_edited_file_is_left_alone(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "dagster_home").mkdir(parents=True)
    (old / "dagster_home" / "dagster.yaml").write_text(_DAGSTER_YAML_V1)
    SluiceHome(home=old).ensure_dagster_home()
    assert "PooledSqliteStorage" in (old / "dagster_home" / "dagster.yaml").read_text()
    edited = tmp_path / "edited"
    (edited / "dagster_home").mkdir(parents=True)
    (edited / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    SluiceHome(home=edited).ensure_dagster_home()
    assert (edited / "dagster_home" / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_run_databases_start_from_a_template_that_dagster_reads_as_current(sluice_home: Path) -> None:
    from dagster._core.storage.event_log.sqlite import sqlite_event_log
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._core.storage.sql import check_alembic_revision, get_alembic_config

    instance = _instance(sluice_home)
    runs = [dg.materialize([numbers], instance=instance, partition_key=k).run_id for k in ("a", "b")]
    storage = instance._event_storage
    assert Path(storage.run_template_path()).is_file()
    stock = SqliteEventLogStorage(storage._base_dir)
    config = get_alembic_config(sqlite_event_log.__file__)
    for run_id in runs:
        with stock.run_connection(run_id) as conn:
            db_revision, head = check_alembic_revision(config, conn)
        assert db_revision == head
        steps = [e for e in stock.get_logs_for_run(run_id) if e.dagster_event and e.dagster_event.is_step_success]
        assert len(steps) == 1


def test_an_existing_run_database_is_never_replaced_by_the_template(sluice_home: Path) -> None:
    instance = _instance(sluice_home)
    run_id = dg.materialize([numbers], instance=instance, partition_key="a").run_id
    events = len(instance.all_logs(run_id))
    fresh = PooledSqliteEventLogStorage(instance._event_storage._base_dir)  # another process's view: nothing cached
    assert fresh._start_from_template(fresh.path_for_shard(run_id)) is False
    assert len(fresh.get_logs_for_run(run_id)) == events > 0


def test_has_table_answers_for_the_index_and_remembers_only_tables_found(sluice_home: Path) -> None:
    storage = _instance(sluice_home)._event_storage
    assert storage.has_table("dynamic_partitions") is True
    assert storage.has_table("no_such_table") is False
    assert storage._sluice_tables == {"dynamic_partitions"}


def _index_events(storage, event_type: dg.DagsterEventType) -> list[tuple[str, str | None]]:
    records = storage.get_event_records(dg.EventRecordsFilter(event_type=event_type), ascending=True)
    return [(r.asset_key.to_string(), r.partition_key) for r in records]


def test_a_range_run_writes_its_asset_events_in_batches_as_dagster_would_one_by_one(
    sluice_home: Path, tmp_path: Path, monkeypatch
) -> None:
    batches: list[int] = []
    real = PooledSqliteEventLogStorage.store_event_batch
    monkeypatch.setattr(
        PooledSqliteEventLogStorage,
        "store_event_batch",
        lambda self, events: batches.append(len(events)) or real(self, events),
    )
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    instance = _instance(sluice_home)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == str(dagster_storage.EVENT_BATCH_SIZE)
    tags = {"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "c"}
    run_id = dg.materialize([numbers], instance=instance, tags=tags).run_id
    assert batches == [3, 3]  # the run's planned materializations, then the step's materializations
    # Dagster's stock storage, one event at a time, over another home: the same events, the same asset row.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    stock_home = tmp_path / "stock"
    stock_home.mkdir()
    stock = dg.DagsterInstance.local_temp(str(stock_home))
    stock_run = dg.materialize([numbers], instance=stock, tags=tags).run_id
    seen = []
    for storage, run in ((instance.event_log_storage, run_id), (stock.event_log_storage, stock_run)):
        planned = _index_events(storage, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        materialized = _index_events(storage, dg.DagsterEventType.ASSET_MATERIALIZATION)
        assert sorted(planned) == sorted(materialized) == [('["numbers"]', k) for k in "abc"]
        in_run = [e.dagster_event_type for e in storage.get_logs_for_run(run)]
        assert in_run.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 3
        [record] = storage.get_asset_records([dg.AssetKey("numbers")])
        entry = record.asset_entry
        assert entry.last_run_id == run
        assert entry.last_materialization.dagster_event.partition == materialized[-1][1]  # the last event's row
        last = storage.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_MATERIALIZATION), ascending=True
        )[-1]
        assert entry.last_materialization_storage_id == last.storage_id  # the row points at the event's own id
        assert storage.get_materialized_partitions(dg.AssetKey("numbers")) == {"a", "b", "c"}
        seen.append((planned, materialized, len(in_run)))
    assert seen[0] == seen[1]


def test_a_user_who_turns_event_batching_off_gets_event_by_event_writes(sluice_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    called: list[int] = []
    monkeypatch.setattr(PooledSqliteEventLogStorage, "store_event_batch", lambda self, events: called.append(1))
    instance = _instance(sluice_home)
    tags = {"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "c"}
    assert dg.materialize([numbers], instance=instance, tags=tags).success
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "0" and called == []
    assert len(_index_events(instance.event_log_storage, dg.DagsterEventType.ASSET_MATERIALIZATION)) == 3


def test_a_batch_writes_the_asset_row_of_each_key_s_last_event_and_every_event_of_a_key_with_mixed_types() -> None:
    def event(key: str, kind: dg.DagsterEventType) -> SimpleNamespace:
        dagster_event = SimpleNamespace(asset_key=dg.AssetKey(key))
        return SimpleNamespace(get_dagster_event=lambda: dagster_event, dagster_event_type=kind)

    mat, planned = dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    events = [event("x", planned), event("y", mat), event("x", planned), event("y", planned), event("z", mat)]
    kept = _entry_events(events, [10, 11, 12, 13, 14])
    assert [event_id for _, event_id in kept] == [11, 12, 13, 14]


DYN = dg.DynamicPartitionsDefinition(name="held_shards")


@dg.asset(partitions_def=DYN, backfill_policy=dg.BackfillPolicy.single_run())
def held(context):
    return dg.MaterializeResult(metadata={"shards": len(context.partition_keys)})


def _queries(monkeypatch) -> dict[str, int]:
    """Counts of the index queries behind the dynamic-partition lookups (Dagster's SQL implementation)."""
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    counts = {"get": 0, "has": 0}
    for name, attr in (("get", "get_dynamic_partitions"), ("has", "has_dynamic_partition")):
        real = getattr(SqlEventLogStorage, attr)

        def counted(self, *args, _real=real, _name=name):
            counts[_name] += 1
            return _real(self, *args)

        monkeypatch.setattr(SqlEventLogStorage, attr, counted)
    return counts


def test_held_partitions_are_read_once_and_this_process_s_changes_refresh_them(sluice_home: Path, monkeypatch) -> None:
    instance = _instance(sluice_home)
    storage = instance._event_storage
    instance.add_dynamic_partitions("held_shards", ["a", "b", "c"])
    counts = _queries(monkeypatch)
    other = PooledSqliteEventLogStorage(storage._base_dir)  # another process's storage over the same files
    with dagster_storage.partitions_held(instance):
        tags = {"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "c"}
        result = dg.materialize([held], instance=instance, tags=tags)
        assert result.success
        assert counts == {"get": 1, "has": 0}  # a range run asks many times; one read answers them all
        assert storage.has_dynamic_partition("held_shards", "b")
        assert not storage.has_dynamic_partition("held_shards", "z")
        other.add_dynamic_partitions("held_shards", ["d"])  # seen after the block
        assert list(instance.get_dynamic_partitions("held_shards")) == ["a", "b", "c"]
        instance.add_dynamic_partitions("held_shards", ["e"])  # this process's own: seen at once, in order
        assert list(instance.get_dynamic_partitions("held_shards")) == ["a", "b", "c", "d", "e"]
        instance.delete_dynamic_partition("held_shards", "a")
        assert not instance.has_dynamic_partition("held_shards", "a")
    other.delete_dynamic_partition("held_shards", "b")
    assert list(instance.get_dynamic_partitions("held_shards")) == ["c", "d", "e"]  # outside: every call reads
    assert counts["get"] == 4


def test_sluice_run_holds_the_registered_shards_while_its_runs_execute(
    sluice_home: Path, tmp_path: Path, monkeypatch
) -> None:
    # The demo-shaped recipe over three shards: its range runs never ask the index whether a key exists, and
    # list the keys once per definition for the whole job, not once per step and output.
    from pipeline_defs.execute import run_recipe

    data = tmp_path / "data.jsonl"
    data.write_text("".join(f'{{"id": {i}, "text": "document number {i} with some words in it"}}\n' for i in range(30)))
    recipe = tmp_path / "held.yaml"
    recipe.write_text(
        f"project_name: held\ndataset_path: {data}\nexport_path: {tmp_path / 'out.jsonl'}\npartition:\n  size: 10\n"
        "process:\n- whitespace_normalization_mapper:\n- text_length_filter:\n    min_len: 5\n"
        "- document_deduplicator:\n"
    )
    counts = _queries(monkeypatch)
    report = run_recipe(recipe, echo=lambda _: None)
    assert report.status == "completed" and report.runs == 4  # one per phase: rows, dedup index, apply, export
    assert counts["has"] == 0
    assert counts["get"] <= 4, counts  # sync, the shards and their order for the plan, once held for the runs


def test_dagster_s_migration_scripts_are_parsed_once_per_process_and_a_fresh_home_is_stamped_at_head(
    sluice_home: Path, tmp_path: Path, monkeypatch
) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from dagster._core.storage.event_log.sqlite import sqlite_event_log
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.schedules.sqlite import sqlite_schedule_storage
    from dagster._core.storage.sql import check_alembic_revision, get_alembic_config

    dagster_config = get_alembic_config(sqlite_event_log.__file__)
    assert ScriptDirectory.from_config(dagster_config) is ScriptDirectory.from_config(dagster_config)
    # the three storages' alembic.ini files are the same bytes: one parse serves them all
    for module in (sqlite_run_storage, sqlite_schedule_storage):
        config = get_alembic_config(module.__file__)
        assert config.config_file_name != dagster_config.config_file_name
        assert ScriptDirectory.from_config(config) is ScriptDirectory.from_config(dagster_config)
    (tmp_path / "versions").mkdir()
    (tmp_path / "script.py.mako").write_text("")
    other = Config()
    other.set_main_option("script_location", str(tmp_path))  # not Dagster's: read as alembic reads it
    assert ScriptDirectory.from_config(other) is not ScriptDirectory.from_config(other)

    dagster_storage.warm_migrations()  # what the forkserver does before it forks step processes
    parsed: list[str] = []
    load = ScriptDirectory._load_revisions

    def counting(self):  # type: ignore[no-untyped-def]
        parsed.append(self.dir)
        yield from load(self)

    monkeypatch.setattr(ScriptDirectory, "_load_revisions", counting)
    instance = _instance(sluice_home)  # creates and stamps the runs', schedules' and event index databases
    assert dg.materialize([numbers], instance=instance, partition_key="a").success  # and a run's database
    assert parsed == []
    head = ScriptDirectory.from_config(dagster_config).get_current_head()
    for storage in (instance.run_storage, instance.schedule_storage):
        assert storage.alembic_version() == (head, head)  # type: ignore[union-attr]
    with instance.event_log_storage.index_connection() as conn:  # type: ignore[attr-defined]
        assert check_alembic_revision(dagster_config, conn) == (head, head)


def test_a_fresh_home_s_databases_get_their_tables_in_wal_mode(sluice_home: Path, monkeypatch) -> None:
    """Each database Dagster creates is already in WAL mode when its schema is written (not in SQLite's
    rollback-journal default, where every statement of the schema waited for a journal sync)."""
    import sqlalchemy as sa
    from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
    from dagster._core.storage.runs.schema import RunStorageSqlMetadata
    from dagster._core.storage.schedules.schema import ScheduleStorageSqlMetadata

    modes: dict[str, str] = {}
    for metadata in (RunStorageSqlMetadata, SqlEventLogStorageMetadata, ScheduleStorageSqlMetadata):
        create_all = metadata.create_all

        def recording(bind, *args, _create_all=create_all, **kwargs):  # type: ignore[no-untyped-def]
            with bind.connect() as conn:
                modes[Path(bind.url.database).name] = conn.execute(sa.text("PRAGMA journal_mode")).scalar()
            return _create_all(bind, *args, **kwargs)

        monkeypatch.setattr(metadata, "create_all", recording)
    instance = _instance(sluice_home)
    assert dg.materialize([numbers], instance=instance, partition_key="a").success
    assert {"runs.db", "index.db", "schedules.db"} <= modes.keys(), modes
    assert set(modes.values()) == {"wal"}, modes


SHARDS = dg.DynamicPartitionsDefinition(name="toy_shards")


@dg.asset(partitions_def=SHARDS)
def toy(context) -> None:
    context.log.info(context.partition_key)


def test_a_run_for_an_unregistered_shard_is_refused_before_it_is_stored(sluice_home: Path) -> None:
    """A recipe job's runs carry `sluice/shards` (its partitions definition); the run storage refuses a partition
    or range end that is not registered there, and the whole job without a partition, so no failed run is left
    behind. Other runs are not checked."""
    instance = _instance(sluice_home)
    instance.add_dynamic_partitions("toy_shards", ["a.jsonl@00000", "b.jsonl@00000"])
    job_tags = {
        run_checks.SHARDS_TAG: "toy_shards",
        run_checks.SOURCE_TAG: "t.yaml",
        run_checks.ALL_JOB_TAG: "toy_all_job",
    }
    job = dg.define_asset_job("toy_job", selection=[toy], tags=job_tags)
    defs = dg.Definitions(assets=[toy], jobs=[job])
    resolved = defs.resolve_job_def("toy_job")
    for tags in (
        {"dagster/partition": "c.jsonl@00000"},
        {"dagster/partition": "typo"},
        {"dagster/asset_partition_range_start": "a.jsonl@00000", "dagster/asset_partition_range_end": "z@00001"},
    ):
        with pytest.raises(run_checks.UnknownShardError) as err:
            resolved.execute_in_process(instance=instance, tags=tags)
        bad = next(v for v in tags.values() if not v.startswith(("a.", "b.")))
        assert err.value.message == (
            f"partition {bad!r} is not a shard of toy (2 registered: a.jsonl@00000, b.jsonl@00000); "
            "`sluice partitions t.yaml` lists and registers them. No run was created."
        )
    with pytest.raises(run_checks.NoPartitionError) as no_partition:  # the whole job, no partition
        instance.create_run_for_job(resolved, tags=job_tags)  # as `dagster job execute -j toy_job` creates it
    assert no_partition.value.message == (
        """toy_job runs one shard or a range (--tags '{"dagster/partition": "a.jsonl@00000"}'); for every shard """
        "run: dagster job execute -m pipeline_defs -j toy_all_job. No run was created."
    )
    assert instance.get_run_records() == []
    assert resolved.execute_in_process(instance=instance, partition_key="b.jsonl@00000").success
    # a run of a job without the tag (not a recipe's) is not checked by Sluice
    assert dg.materialize([numbers], instance=instance, partition_key="a").success
    assert len(instance.get_run_records()) == 2
