"""Where Sluice keeps what it writes locally: everything lives under one home, `$SLUICE_HOME` (default `./.sluice`).

Two checkouts or two test runs never share a Dagster instance or checkpoints unless they point at the same home.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# What earlier versions wrote; a home holding exactly one of these is brought up to date.
_DAGSTER_YAML_V1 = """\
# Written by Sluice on first use: an embedded SQLite instance under $SLUICE_HOME.
telemetry:
  enabled: false
run_monitoring:
  enabled: false
"""

_DAGSTER_YAML_V2 = """\
# Written by Sluice on first use: an embedded SQLite instance under $SLUICE_HOME. Dagster's SQLite layout;
# resources/dagster_storage.py keeps one pooled connection per database file instead of one per statement.
telemetry:
  enabled: false
run_monitoring:
  enabled: false
storage:
  custom:
    module: resources.dagster_storage
    class: PooledSqliteStorage
    config:
      base_dir: {base_dir}
"""

# Since: Dagster's compute logs, mirrored to the terminal by a thread (resources/compute_logs.py), not by `tail`.
_DAGSTER_YAML = (
    _DAGSTER_YAML_V2
    + """\
compute_logs:
  module: resources.compute_logs
  class: MirroredComputeLogManager
  config:
    base_dir: {logs_dir}
"""
)


class SluiceHome(BaseSettings):
    """Paths under the Sluice home. `SLUICE_HOME` overrides the default `./.sluice`."""

    model_config = SettingsConfigDict(env_prefix="SLUICE_", extra="ignore")

    home: Path = Field(Path(".sluice"), description="Root of everything Sluice writes locally.")

    @property
    def root(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    def ensure_dagster_home(self) -> Path:
        """Create the SQLite Dagster instance directory on first use and point DAGSTER_HOME at it."""
        home = self.dagster_home
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        base_dir = json.dumps(str(home))
        earlier = (_DAGSTER_YAML_V1, _DAGSTER_YAML_V2.format(base_dir=base_dir))
        if not config.exists() or config.read_text() in earlier:
            config.write_text(_DAGSTER_YAML.format(base_dir=base_dir, logs_dir=json.dumps(str(home / "storage"))))
        os.environ["DAGSTER_HOME"] = str(home)
        return home


def sluice_home() -> SluiceHome:
    return SluiceHome()


def adopt_home(root: str | os.PathLike[str]) -> None:
    """Work under the home `root` from now on in this process (`SLUICE_HOME`), unless it is already this
    process's home. A step process (a Celery worker's, above all) calls it with the home of the run's
    `sluice run`: `${SLUICE_HOME}` in recipes and every default path under the home then resolve as there."""
    if SluiceHome().root != Path(root).expanduser().resolve():
        os.environ["SLUICE_HOME"] = str(root)
