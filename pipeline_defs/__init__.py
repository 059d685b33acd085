"""Sluice's Dagster code location: `dagster dev -m pipeline_defs` or `-w workspace.yaml`.

`defs` is built on first access (PEP 562), so `sluice validate` or `import pipeline_defs.recipe` does not
load every recipe of the project.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "defs":
        from pipeline_defs.definitions import defs

        return defs
    raise AttributeError(f"module 'pipeline_defs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return ["defs"]
