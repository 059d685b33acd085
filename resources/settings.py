"""Where Sluice keeps what it writes locally: everything lives under one home, `$SLUICE_HOME` (default `./.sluice`).

Two checkouts or two test runs never share a Dagster instance or checkpoints unless they point at the same home.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_DAGSTER_YAML = """\
# Written by Sluice on first use: an embedded SQLite instance under $SLUICE_HOME.
telemetry:
  enabled: false
run_monitoring:
  enabled: false
"""


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
        if not config.exists():
            config.write_text(_DAGSTER_YAML)
        os.environ["DAGSTER_HOME"] = str(home)
        return home


def sluice_home() -> SluiceHome:
    return SluiceHome()
