"""The `resources` package: its light modules import without Dagster, its names resolve on first use."""

import subprocess
import sys
from pathlib import Path

import resources
from resources.storage import CheckpointStore

ROOT = Path(__file__).resolve().parents[2]


def test_a_light_module_of_the_package_does_not_import_dagster() -> None:
    code = "import sys, resources.hardware, resources.settings; print('dagster' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_package_names_resolve_to_their_modules_objects() -> None:
    assert resources.CheckpointStore is CheckpointStore
    assert set(resources.__all__) == {
        "CheckpointStore",
        "ParquetCheckpointIOManager",
        "SluiceHome",
        "atomic_write",
        "sluice_home",
    }
    assert all(getattr(resources, name) is not None for name in resources.__all__)
    try:
        resources.not_a_name  # noqa: B018
    except AttributeError as exc:
        assert "not_a_name" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")
