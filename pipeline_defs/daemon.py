"""The dagster-daemon that `sluice up` runs: Dagster's own (`dagster._daemon.cli`, the same commands and
options), with its backfill daemon pausing `SLUICE_BACKFILL_INTERVAL_S` seconds between iterations (default 5)
instead of Dagster's fixed 30.

An asset backfill launches a phase's runs at the first iteration after the runs of the phase before it have
finished, so with 30 s a UI "Materialize all" of a recipe (4 phases for the demo) sat idle ~30 s between phases:
the demo's backfill took minutes for seconds of work. Dagster has no setting for that pause: its backfill loop
reads `dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS` at each start. The same constant is the asset
daemon's interval where `auto_materialize.minimum_interval_seconds` is unset, so deploy/dagster.yaml sets that
one to Dagster's 30. An iteration with no backfill in progress is one query of the run storage.

    python -m pipeline_defs.daemon run -w workspace.yaml
"""

from __future__ import annotations

import math
import os

DEFAULT_BACKFILL_INTERVAL_S = 5


def backfill_interval_s() -> float:
    """`SLUICE_BACKFILL_INTERVAL_S`, a positive (finite) number of seconds; a bad value fails in one line naming it."""
    raw = os.environ.get("SLUICE_BACKFILL_INTERVAL_S", "").strip()
    if not raw:
        return DEFAULT_BACKFILL_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < math.inf:
        raise SystemExit(f"SLUICE_BACKFILL_INTERVAL_S={raw!r}: expected a positive number of seconds")
    return value


def apply_backfill_interval() -> float:
    """Set the pause of this process's backfill daemon loops (those started from here on); return it."""
    from dagster._daemon import controller

    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = interval = backfill_interval_s()
    return interval


def main() -> None:
    apply_backfill_interval()
    from dagster._daemon.cli import main as dagster_daemon

    dagster_daemon()


if __name__ == "__main__":
    main()
