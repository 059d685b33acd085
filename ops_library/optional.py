"""Optional packages of the ops: one check that says which package an op lacks and how to get it."""

from __future__ import annotations

import importlib.util


def missing_package(op: str, module: str, requirement: str, purpose: str) -> str | None:
    """None when `module` can be imported, else a one-line message for recipe validation."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return (
        f"{op}: needs the Python package {requirement} ({purpose}), which is not installed: pip install '{requirement}'"
    )
