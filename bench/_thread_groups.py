"""What a thread of a `sluice run` process is, from its name: shared by bench/_timed_run.py (Python's thread names,
in-process) and bench/timeline.py (the OS's, from /proc, where Python's own threads have none of their own)."""

from __future__ import annotations


def thread_group(name: str) -> str:
    """What a thread is, from its Python name (Sluice's threads) or its OS name (the native libraries')."""
    if name == "MainThread":
        return "main thread"
    if name.startswith("sluice-"):
        base = name.rstrip("0123456789").rstrip("_-")
        return base if base in ("sluice-prefetch", "sluice-checkpoint", "sluice-export-ahead") else "sluice-monitors"
    if name.startswith("polars-") and name[7:].isdigit():
        return "polars pool"
    if name.startswith("async-executor"):
        return "polars async executor"
    if name.startswith(("tokio-", "polars-")):
        return "polars io"
    return "other"
