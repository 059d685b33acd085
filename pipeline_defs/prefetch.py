"""The source's parse of stale input shards, started by `sluice run` before its Dagster runs.

Before the first step runs, `sluice run` spends about a second in Python that holds the GIL: opening (or
creating) the Dagster instance, planning, registering partitions, starting the first run. The source's parse is
mostly polars work that does not hold it. So when the job's source has stale shards, a thread parses them, in
input order, while the rest starts; the source step then takes each shard's rows from here (`take`) instead of
parsing it again, provided the shard's bytes still hash to what was parsed. Nothing else changes: the step checks
its accounting, writes its checkpoint and records its materialization as before, with `prefetched: true` and the
parse's own seconds in its metadata.

Only for steps that run in this process (the in-process executor without shard workers); at most `budget_bytes`
of parsed frames wait here at once, so a large input is parsed ahead by a few shards, not read into memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline_defs.shards import Shard, ShardRead, read_shard, shard_content_hash

BUDGET_BYTES = 512 << 20  # parsed frames waiting for the source step, at most


@dataclass
class Parsed:
    read: ShardRead
    content_hash: str
    seconds: float


class SourcePrefetch:
    """A thread parsing `shards` in order; `take` hands each one's rows to the source step once."""

    def __init__(self, shards: Sequence[Shard], text_key: str, budget_bytes: int = BUDGET_BYTES) -> None:
        self.text_key = text_key
        self.budget_bytes = budget_bytes
        self._shards = list(shards)
        self._position = {s.key: i for i, s in enumerate(self._shards)}
        self._done: dict[str, Parsed | None] = {}  # None: the parse failed (the step parses it itself)
        self._next = 0  # shards before this position are taken (or skipped by the step): not parsed, not held
        self._held = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sluice-source-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for i, shard in enumerate(self._shards):
            with self._cond:
                # Wait while the frames already parsed (and not yet taken) fill the budget.
                self._cond.wait_for(lambda: self._stopped or self._held < self.budget_bytes)
                if self._stopped:
                    return
                if i < self._next:
                    continue  # the step went past it
            t0 = time.perf_counter()
            try:
                before = shard_content_hash(shard)
                read = read_shard(shard, self.text_key)
                parsed = Parsed(read, before, time.perf_counter() - t0)
                if shard_content_hash(shard) != before:  # the file changed while it was read
                    parsed = None
            except Exception:  # the step parses the shard again and reports the error itself
                parsed = None
            with self._cond:
                if i < self._next or self._stopped:
                    continue
                self._done[shard.key] = parsed
                self._held += _size(parsed)
                self._cond.notify_all()

    def take(self, shard: Shard, content_hash: str) -> Parsed | None:
        """The parse of `shard` (waiting for it if it is under way), or None: not prefetched, failed, or its bytes
        do not hash to `content_hash` (the step then parses the shard itself)."""
        with self._cond:
            at = self._position.get(shard.key)
            if at is None or at < self._next:
                return None
            # The step takes shards in input order: those before this one that it has not taken, it never will.
            for skipped in self._shards[self._next : at]:
                self._held -= _size(self._done.pop(skipped.key, None))
            self._next = at
            self._cond.notify_all()
            self._cond.wait_for(lambda: shard.key in self._done or self._stopped or not self._thread.is_alive())
            self._next = at + 1
            parsed = self._done.pop(shard.key, None)
            self._held -= _size(parsed)
            self._cond.notify_all()
        if parsed is None or parsed.content_hash != content_hash:
            return None
        return parsed

    def stop(self) -> None:
        """No more parses; what is held is dropped."""
        with self._cond:
            self._stopped = True
            self._done.clear()
            self._held = 0
            self._cond.notify_all()


def _size(parsed: Parsed | None) -> int:
    if parsed is None:
        return 0
    return int(parsed.read.kept.estimated_size()) + int(parsed.read.quarantined.estimated_size())


_current: SourcePrefetch | None = None
_lock = threading.Lock()


def start(shards: Sequence[Shard], text_key: str) -> SourcePrefetch | None:
    """Start parsing `shards` for this process's next source step (replacing any earlier prefetch)."""
    global _current
    with _lock:
        if _current is not None:
            _current.stop()
        _current = SourcePrefetch(shards, text_key) if shards else None
        return _current


def take(shard: Shard, content_hash: str) -> Parsed | None:
    """The prefetched parse of `shard`, if `sluice run` started one in this process and it matches."""
    current = _current
    return None if current is None else current.take(shard, content_hash)


def stop() -> None:
    global _current
    with _lock:
        if _current is not None:
            _current.stop()
        _current = None
