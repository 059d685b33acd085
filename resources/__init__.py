"""Dagster resources of Sluice: storage (checkpoints), settings, compute pools, monitoring.

The names below are imported on first use (PEP 562), so that a tool importing one light module of this package
(`resources.hardware`, `resources.settings`) does not import Dagster with `resources.storage`.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "CheckpointStore": "resources.storage",
    "ParquetCheckpointIOManager": "resources.storage",
    "atomic_write": "resources.storage",
    "SluiceHome": "resources.settings",
    "sluice_home": "resources.settings",
}

__all__ = ["CheckpointStore", "ParquetCheckpointIOManager", "SluiceHome", "atomic_write", "sluice_home"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'resources' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
