"""Engine settings: defaults, the recipe's `engine:` mapping, `SLUICE_*` variables over both."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from resources.engine import EngineSettings
from resources.hardware import Hardware

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pools.md"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EngineSettings.model_fields:
        monkeypatch.delenv(f"SLUICE_{name.upper()}", raising=False)


def test_defaults() -> None:
    s = EngineSettings()
    assert (s.monitor_interval_s, s.memory_safety_factor, s.cpu_safety_factor) == (1.0, 0.8, 1.0)
    assert (s.adaptive_batch_size, s.max_batch_size, s.min_batch_size) == (True, None, 1)
    assert (s.shard_workers, s.max_parallel_runs, s.step_timeout_s) == (1, None, None)


def test_the_recipe_overrides_the_defaults() -> None:
    s = EngineSettings.from_recipe({"max_parallel_runs": 3, "memory_safety_factor": 0.5})
    assert (s.max_parallel_runs, s.memory_safety_factor) == (3, 0.5)
    assert EngineSettings.from_recipe(None) == EngineSettings()


def test_the_environment_overrides_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_MAX_PARALLEL_RUNS", "1")
    monkeypatch.setenv("SLUICE_ADAPTIVE_BATCH_SIZE", "false")
    s = EngineSettings.from_recipe({"max_parallel_runs": 3, "step_timeout_s": 60})
    assert (s.max_parallel_runs, s.adaptive_batch_size, s.step_timeout_s) == (1, False, 60.0)


def test_unknown_and_invalid_keys_are_errors() -> None:
    with pytest.raises(ValidationError, match="max_parallel_run\n  Extra inputs are not permitted"):
        EngineSettings.from_recipe({"max_parallel_run": 3})
    with pytest.raises(ValidationError, match="memory_safety_factor"):
        EngineSettings.from_recipe({"memory_safety_factor": 1.5})


def test_other_sluice_variables_are_not_engine_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_HOME", "/tmp/elsewhere")
    assert EngineSettings() == EngineSettings.from_recipe({})


def test_cpu_safety_factor_shrinks_the_cpus_the_planner_hands_out() -> None:
    hw = Hardware.fake(cpus=32)
    assert EngineSettings(cpu_safety_factor=0.5).usable(hw).cpus == 16
    assert EngineSettings(cpu_safety_factor=0.1).usable(Hardware(cpus=2, memory_gb=4.0)).cpus == 1
    assert EngineSettings().usable(hw) == hw


def test_docs_show_the_current_settings_table() -> None:
    assert EngineSettings.table() in DOCS.read_text()
