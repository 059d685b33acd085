from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory: pytest.TempPathFactory):
    """The demo corpus, built once per test session by `build_demo_corpus` (~15-20 s on 2 cores) and shared by
    every module that reads it. Read-only: a test that changes its files works on a copy."""
    from pipeline_defs.corpus import build_demo_corpus

    return build_demo_corpus(tmp_path_factory.mktemp("demo_corpus"))


@pytest.fixture
def sluice_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Sluice home (and Dagster instance) per test: nothing shared with the user's `.sluice`."""
    home = tmp_path / "sluice_home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    return home


@pytest.fixture
def fsync_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every file `os.fsync` is called on from here on (each fsync still happens)."""
    calls: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls
