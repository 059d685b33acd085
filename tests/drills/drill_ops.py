"""Ops for the fault-tolerance drills, loaded by recipes through `custom_operator_paths` (never imported by
the tests directly, so a subprocess and the test process register them the same way)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpOutput, OpParams
from ops_library.columns import ROW_ID
from ops_library.registry import register


@register("flaky_mapper")
class FlakyMapper(Mapper):
    """Leaves text unchanged, but its first `failures` calls (counted in a file) raise: an OSError
    (transient) or a ValueError (deterministic)."""

    class Params(OpParams):
        counter_dir: str = Field(description="Where the call counter lives.")
        failures: int = Field(2, description="Calls that fail before calls succeed.")
        error: str = Field("os", description="'os' (transient) or 'value' (deterministic).")
        fail_on_call: int | None = Field(None, description="Fail only this call (1-based), not the first ones.")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return text

    def run(self, df: pl.DataFrame) -> OpOutput:
        counter = Path(self.params.counter_dir) / "flaky.count"
        calls = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(calls))
        failing = calls == self.params.fail_on_call if self.params.fail_on_call else calls <= self.params.failures
        if failing:
            if self.params.error == "value":
                raise ValueError(f"deterministic drill failure on call {calls}")
            raise OSError(f"transient drill failure on call {calls}")
        return super().run(df)


@register("counting_mapper")
class CountingMapper(Mapper):
    """Upper-cases the first letter of each text and logs every call (pid, first row id) to a file."""

    class Params(OpParams):
        counter_dir: str = Field(description="Where calls.log lives.")
        sleep_s: float = Field(0.0, description="Seconds to sleep per call (to be killed mid-run).")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return text.str.slice(0, 1).str.to_uppercase() + text.str.slice(1)

    def run(self, df: pl.DataFrame) -> OpOutput:
        first = df[ROW_ID][0] if df.height else "-"
        started = time.time()
        time.sleep(self.params.sleep_s)
        out = super().run(df)
        # one line per call, written when it ends: pid, first row, start and end (epoch seconds)
        with open(Path(self.params.counter_dir) / "calls.log", "a") as fh:
            fh.write(f"{os.getpid()} {first} {started:.6f} {time.time():.6f}\n")
        return out
