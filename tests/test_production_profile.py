"""The production profile without servers: `engine.executor`, pool limits applied when the code location loads,
deploy/dagster.yaml filled in by `sluice up`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipeline_defs.loader import apply_recipe_pool_limits, definitions_for, job_for_recipe
from pipeline_defs.recipe import RecipeError, load_recipe
from pipeline_defs.stack import DEPLOY_YAML, Stack, write_instance
from resources import settings
from tests.conftest import ROOT

DEMO = ROOT / "recipes" / "demo.yaml"
READMES = ROOT / "recipes" / "readmes.yaml"


def _recipe(tmp_path: Path, engine: str) -> Path:
    text = DEMO.read_text() + f"\nengine:\n  {engine}\n"
    path = tmp_path / "demo_engine.yaml"
    path.write_text(text)
    return path


def test_recipe_executor_celery_gives_its_job_the_celery_executor(sluice_home: Path, tmp_path: Path) -> None:
    path = _recipe(tmp_path, "executor: celery")
    defs = definitions_for([path])
    job = defs.resolve_job_def("demo_job")
    assert job.executor_def.name == "celery"
    plain = definitions_for([DEMO]).resolve_job_def("demo_job")
    assert plain.executor_def.name == "in_process"


def test_the_celery_executor_polls_its_steps_every_50_ms_not_every_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """dagster-celery's loop sleeps `TICK_SECONDS` between asking whether a step is done; the executor Sluice
    builds sets it (the 10-op bench recipe on 2 workers: 26.2 s at 1 s, 10.1 s at 50 ms, medians of 3). The loop
    must read the module's value when it sleeps, or setting it does nothing: this fails if dagster-celery stops."""
    import inspect

    from dagster_celery import core_execution_loop

    from pipeline_defs.loader import CELERY_POLL_SECONDS, executor_def

    monkeypatch.setattr(core_execution_loop, "TICK_SECONDS", 1)
    assert executor_def("celery").name == "celery"
    assert core_execution_loop.TICK_SECONDS == CELERY_POLL_SECONDS == 0.05
    source = inspect.getsource(core_execution_loop.core_celery_execution_loop)
    assert source.count("time.sleep(TICK_SECONDS)") == 1 and "TICK_SECONDS =" not in source


def test_a_step_process_with_another_home_rebuilds_the_job_under_the_home_of_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Celery worker that `sluice up` started has the stack's home; a run's steps must still write checkpoints
    and the export under the home of the `sluice run` that launched it (the pointer carries that home)."""
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path / "worker_home"))
    run_home = tmp_path / "run_home"
    job = job_for_recipe(str(DEMO), "in_process", str(run_home))
    with dg.build_resources({"store": job.resource_defs["demo_checkpoints"]}) as resources:
        assert Path(resources.store.base_dir) == run_home / "checkpoints"
    recipe = load_recipe(DEMO)
    assert Path(recipe.export_path) == run_home / "export" / "demo.jsonl"
    assert settings.sluice_home().root == run_home
    # the run's own process keeps its home: nothing to adopt
    job_for_recipe(str(DEMO), "in_process", str(run_home))
    assert os.environ["SLUICE_HOME"] == str(run_home)


def test_unknown_executor_is_a_one_line_recipe_error(tmp_path: Path) -> None:
    path = _recipe(tmp_path, "executor: dask")
    with pytest.raises(RecipeError, match=r"engine\.executor"):
        load_recipe(path)


def test_pool_limits_set_on_load_for_recipes_never_run(sluice_home: Path) -> None:
    home = sluice_home / "dagster_home"
    home.mkdir(parents=True)
    limits = apply_recipe_pool_limits([DEMO, READMES])
    assert "sluice/readmes/op00_clean_links_mapper" in limits
    with dg.DagsterInstance.get() as instance:
        for pool, limit in limits.items():
            assert instance.event_log_storage.get_concurrency_info(pool).slot_count == limit


def test_pool_limits_on_load_skipped_without_an_instance(sluice_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME")
    assert apply_recipe_pool_limits([DEMO]) == {}
    monkeypatch.setenv("DAGSTER_HOME", str(sluice_home / "absent"))
    assert apply_recipe_pool_limits([DEMO]) == {}
    assert not (sluice_home / "absent").exists()


def test_pool_limits_on_load_never_crash_the_load(sluice_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = sluice_home / "dagster_home"
    home.mkdir(parents=True)
    # an instance whose PostgreSQL is not there: the location must still load
    (home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_db:\n      hostname: 127.0.0.1\n      port: 1\n      username: x\n"
        "      password: ''\n      db_name: x\n      scheme: postgresql+psycopg2\n      params: {connect_timeout: 1}\n"
    )
    assert apply_recipe_pool_limits([DEMO]) == {}
    assert "pool limits not set on load" in caplog.text


def test_code_location_loads_without_dagster_home(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | {"SLUICE_HOME": str(tmp_path / "h")}
    out = subprocess.run(
        [sys.executable, "-c", "import pipeline_defs.definitions as d; print(len(d.pool_limits))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_up_fills_deploy_yaml_and_down_restores_the_embedded_instance(tmp_path: Path) -> None:
    from pipeline_defs.stack import restore_instance

    stack = Stack(root=tmp_path / "stack", home=tmp_path / "dagster_home")
    stack.ports = {"postgres": 5999, "redis": 6999, "webserver": 3999}
    stack.home.mkdir()
    (stack.home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    config = yaml.safe_load(write_instance(stack).read_text())
    assert config["storage"]["custom"]["class"] == "CheckedPostgresStorage"
    db = config["storage"]["custom"]["config"]["postgres_db"]
    assert db["port"] == 5999 and db["hostname"] == "127.0.0.1" and db["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    # the Dagster instance accepts the file as written
    source = yaml.safe_load(DEPLOY_YAML.read_text())
    assert source["storage"]["custom"]["config"]["postgres_db"]["port"] == {"env": "SLUICE_PG_PORT"}
    restore_instance(stack)
    assert (stack.home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_pool_limits_on_load_can_be_turned_off(sluice_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = sluice_home / "dagster_home"
    home.mkdir(parents=True)
    monkeypatch.setenv("SLUICE_POOL_LIMITS_ON_LOAD", "0")
    assert apply_recipe_pool_limits([DEMO]) == {}
    with dg.DagsterInstance.get() as instance:
        assert not any(k.startswith("sluice/demo/") for k in instance.event_log_storage.get_concurrency_keys())
