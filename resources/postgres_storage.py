"""The production profile's storage (deploy/dagster.yaml, `storage: custom`): Dagster's PostgreSQL storage, with
the run storage refusing a run of a recipe's job that could only fail before it is stored, as the embedded
instance's does (`resources.run_checks.check_run`: a partition that is not a registered shard, or the whole
job without a partition). Everything else is dagster-postgres's own: schema, migrations, the URL built from
`postgres_db`. Kept apart from `dagster_storage` so that the embedded instance never imports dagster-postgres."""

from __future__ import annotations

from typing import Any

from dagster._core.storage.base_storage import DagsterStorage
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from resources.run_checks import CheckedRunStorage


class CheckedPostgresRunStorage(CheckedRunStorage, PostgresRunStorage):
    pass


class CheckedPostgresStorage(DagsterPostgresStorage):
    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ):
        # DagsterPostgresStorage.__init__ with the checked run storage (calling it would open a second one)
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = CheckedPostgresRunStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._event_log_storage = PostgresEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._schedule_storage = PostgresScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._run_storage.registered = self._event_log_storage.get_dynamic_partitions
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> CheckedPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
