"""`sluice up`'s dagster-daemon (pipeline_defs/daemon.py): Dagster's, with the backfill loop's pause set by
SLUICE_BACKFILL_INTERVAL_S. The pause is measured in Dagster's own loop (`execute_backfill_iteration_loop`),
with its iteration replaced by a no-op, so the test fails if Dagster stops reading the constant there."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from dagster._daemon import backfill, controller

from pipeline_defs import daemon
from tests.conftest import ROOT


class _Shutdown:
    """A shutdown event that records how long the loop asked to wait, and waits for nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return False

    def is_set(self) -> bool:
        return False


def _pauses(monkeypatch: pytest.MonkeyPatch, iterations: int = 3) -> list[float]:
    monkeypatch.setattr(backfill, "execute_backfill_iteration", lambda *a, **k: iter(()))
    monkeypatch.setattr(backfill, "get_current_timestamp", lambda: 1_000.0)  # an iteration takes no time
    shutdown = _Shutdown()
    loop = backfill.execute_backfill_iteration_loop(None, logging.getLogger("test"), shutdown)  # type: ignore[arg-type]
    while len(shutdown.waits) < iterations:
        next(loop)
    return shutdown.waits


@pytest.mark.parametrize(("value", "expected"), [(None, daemon.DEFAULT_BACKFILL_INTERVAL_S), ("0.5", 0.5), ("12", 12)])
def test_the_backfill_loop_pauses_the_interval_the_environment_sets(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float
) -> None:
    monkeypatch.setattr(controller, "DEFAULT_DAEMON_INTERVAL_SECONDS", controller.DEFAULT_DAEMON_INTERVAL_SECONDS)
    assert _pauses(monkeypatch) == [30, 30, 30]  # Dagster's own, before
    if value is None:
        monkeypatch.delenv("SLUICE_BACKFILL_INTERVAL_S", raising=False)
    else:
        monkeypatch.setenv("SLUICE_BACKFILL_INTERVAL_S", value)
    assert daemon.apply_backfill_interval() == expected
    assert _pauses(monkeypatch) == [expected] * 3


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_a_bad_interval_fails_in_one_line_naming_the_variable(value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline_defs.daemon", "run", "-w", "workspace.yaml"],
        cwd=ROOT,
        env={**os.environ, "SLUICE_BACKFILL_INTERVAL_S": value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"SLUICE_BACKFILL_INTERVAL_S={value!r}: expected a positive number of seconds"


def test_the_module_is_dagster_daemon_s_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline_defs.daemon", "run", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Run any daemons configured on the DagsterInstance" in proc.stdout
