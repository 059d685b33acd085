"""The embedded instance's compute logs: Dagster's files, mirrored to the terminal by a thread of the run's process.

pytest replaces sys.stdout with an object that has no file descriptor, so each capture runs in a child Python
whose stdout and stderr are pipes to the test: what the test reads there is what a terminal would show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._core.storage.compute_log_manager import ComputeIOType

from resources.compute_logs import MirroredComputeLogManager
from resources.settings import _DAGSTER_YAML_V2, SluiceHome

ROOT = Path(__file__).resolve().parents[2]
LINES = 20_000


def _child(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_everything_written_during_a_capture_is_in_the_file_and_on_the_terminal(tmp_path: Path) -> None:
    # Python prints, raw writes to the descriptors, and a child process that inherits them; the last lines come
    # just before the capture ends, where a once-a-second `tail` loses output.
    code = f"""
import os, subprocess, sys
from resources.compute_logs import MirroredComputeLogManager
manager = MirroredComputeLogManager({str(tmp_path)!r})
print("before")
with manager.capture_logs(["run", "compute_logs", "step"]):
    for i in range({LINES}):
        print(f"out {{i}}")
    sys.stderr.write("err python\\n")
    os.write(2, b"err raw\\n")
    subprocess.run([sys.executable, "-c", "print('from a child')"], check=True)
    print("last")
print("after")
"""
    done = _child(code)
    lines = [f"out {i}" for i in range(LINES)]
    assert done.stdout.splitlines() == ["before", *lines, "from a child", "last", "after"]
    assert done.stderr.splitlines() == ["err python", "err raw"]
    logs = tmp_path / "run" / "compute_logs"
    assert (logs / "step.out").read_text().splitlines() == [*lines, "from a child", "last"]
    assert (logs / "step.err").read_text().splitlines() == ["err python", "err raw"]
    assert (logs / "step.complete").exists()


def test_a_capture_starts_no_process_and_restores_the_descriptors(tmp_path: Path) -> None:
    code = f"""
import os, psutil, sys
from resources.compute_logs import MirroredComputeLogManager
before = (os.fstat(1).st_ino, os.fstat(2).st_ino)
kids = []
with MirroredComputeLogManager({str(tmp_path)!r}).capture_logs(["r", "k"]):
    kids = psutil.Process().children(recursive=True)
    inside = (os.fstat(1).st_ino, os.fstat(2).st_ino)
print(len(kids), inside != before, (os.fstat(1).st_ino, os.fstat(2).st_ino) == before)
"""
    assert _child(code).stdout.split() == ["0", "True", "True"]


def test_a_second_capture_of_the_same_key_appends_and_shows_only_its_own_output(tmp_path: Path) -> None:
    code = f"""
from resources.compute_logs import MirroredComputeLogManager
manager = MirroredComputeLogManager({str(tmp_path)!r})
for attempt in ("first", "second"):
    with manager.capture_logs(["r", "k"]):
        print(attempt)
"""
    assert _child(code).stdout.splitlines() == ["first", "second"]
    assert (tmp_path / "r" / "k.out").read_text().splitlines() == ["first", "second"]


def test_the_embedded_instance_captures_a_run_s_output_where_dagster_reads_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = """
import dagster as dg
from resources.settings import SluiceHome

@dg.asset
def noisy():
    print("stdout of the step")
    return 1

SluiceHome().ensure_dagster_home()
print(dg.materialize([noisy], instance=dg.DagsterInstance.get()).run_id)
"""
    done = _child(code, {"SLUICE_HOME": str(home)})
    run_id = done.stdout.splitlines()[-1]
    assert "stdout of the step" in done.stdout  # mirrored to the terminal
    manager = dg.DagsterInstance.from_config(str(home / "dagster_home")).compute_log_manager
    assert isinstance(manager, MirroredComputeLogManager)
    assert manager._base_dir == str(home / "dagster_home" / "storage")  # Dagster's default place
    keys = manager.get_log_keys_for_log_key_prefix([run_id, "compute_logs"], ComputeIOType.STDOUT)
    data = b"".join(manager.get_log_data(key).stdout or b"" for key in keys)
    assert b"stdout of the step" in data
    assert all(manager.is_capture_complete(key) for key in keys)


def test_a_home_written_before_compute_logs_is_upgraded(tmp_path: Path) -> None:
    home = tmp_path / "home" / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(_DAGSTER_YAML_V2.format(base_dir=json.dumps(str(home))))
    SluiceHome(home=tmp_path / "home").ensure_dagster_home()
    text = (home / "dagster.yaml").read_text()
    assert "MirroredComputeLogManager" in text and "PooledSqliteStorage" in text
