from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sluice_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Sluice home (and Dagster instance) per test: nothing shared with the user's `.sluice`."""
    home = tmp_path / "sluice_home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    return home
