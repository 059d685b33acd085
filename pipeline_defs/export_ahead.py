"""The export's side files, written ahead: each row step's dropped rows rendered while the later phases run.

The export writes every row step's dropped (and the source's quarantined) rows beside the kept ones, op by op,
as public JSONL: for a 10-op recipe on 110 MB of text, a hundred MB read back from the checkpoints and
rendered, on one core, at the end of the job. Those rows are final once their phase has run, and the phases
after it (the indexes, the dedup steps) leave a core idle. So `sluice run` (in-process steps only, where the
export runs in its process) hands each finished phase's dropped checkpoints (not those of the phase just before
the export) to a thread (`submit`), which reads
each one, counts its rows per op and kind, and renders its public rows to a spool file per op under the
checkpoint store; the export step stops the thread (`finish`) and takes each shard's rendering
(`ExportAhead.take`) instead of reading and rendering it, and copies the files' bytes into the side file, each
op's where that op's rows go: the same bytes, the same counts (`tests/test_export_ahead.py`).

A rendering is taken only while the checkpoint's sidecar is the one it was rendered from and the checkpoint's
chain of bases is intact (`CheckpointStore.base_problem`); anything else (a rewritten or missing checkpoint,
rows made from a parent row, an error) is read and rendered by the export itself, as without this module.
The spool files are removed with the job (`stop`), and a crashed job's are removed by the next one.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from ops_library.columns import DROP_KIND, DROP_OP, PARENT_ID
from pipeline_defs.export import by_op, public_dropped, write_jsonl
from resources.checkpoint_files import CheckpointMeta
from resources.storage import CheckpointStore

SPOOL_PREFIX = ".export-ahead-"
BUDGET_BYTES = 1 << 30  # spooled bytes, at most (on disk, beside the checkpoints)


@dataclass(frozen=True)
class Spooled:
    meta: CheckpointMeta  # the dropped checkpoint's sidecar the rows were read with
    rows: int
    counts: tuple[tuple[str, str, int], ...]  # (op, kind, rows), in the order the export counts them
    files: tuple[tuple[str, Path], ...]  # (op, its rows' public JSONL) per op that dropped rows, in step order


class ExportAhead:
    """A thread rendering dropped checkpoints in the order they are submitted, into `spool`."""

    def __init__(self, store: CheckpointStore, budget_bytes: int = BUDGET_BYTES) -> None:
        self.store = store
        self.budget_bytes = budget_bytes
        root = Path(store.base_dir)
        root.mkdir(parents=True, exist_ok=True)
        _sweep(root)
        self.spool = root / f"{SPOOL_PREFIX}{os.getpid()}-{id(self):x}"
        self.spool.mkdir(exist_ok=True)
        self._queue: deque[Path] = deque()
        self._done: dict[str, Spooled] = {}
        self._bytes = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="sluice-export-ahead", daemon=True)
        self._thread.start()

    def submit(self, paths: Iterable[Path]) -> None:
        with self._cond:
            self._queue.extend(paths)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopped or bool(self._queue))
                if self._stopped:
                    return
                path = self._queue.popleft()
                self._busy = True
            spooled = self._render(path, len(self._done))
            with self._cond:
                self._busy = False
                if spooled is not None:
                    self._done[str(path)] = spooled
                    self._bytes += sum(file.stat().st_size for _, file in spooled.files)
                    if self._bytes > self.budget_bytes:  # the export renders the rest itself
                        self._stopped = True
                self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is rendered (or the thread stopped); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._stopped or not (self._queue or self._busy), timeout)

    def _render(self, path: Path, n: int) -> Spooled | None:
        try:
            before = CheckpointMeta.load(path)
            if before is None:
                return None
            df = self.store.read(path, cache=False)  # the steps still running read from FRAMES
            if CheckpointMeta.load(path) != before or PARENT_ID in df.columns:
                return None  # rewritten while read; or rows made from a parent row, which the export counts
            by_kind = df.group_by(DROP_OP, DROP_KIND, maintain_order=True).len().iter_rows()
            counts = tuple((op, kind, rows) for op, kind, rows in by_kind)
            files = []
            for i, (op, rows) in enumerate(by_op(df)):
                out = self.spool / f"{n:06d}-{i}.jsonl"
                with open(out, "wb") as fh:
                    write_jsonl(public_dropped(rows), fh)
                files.append((op, out))
            return Spooled(before, df.height, counts, tuple(files))
        except Exception:  # the export reads it again and reports what is wrong with it
            return None

    def finish(self) -> ExportAhead:
        """Stop rendering (the item under way is finished); the renderings so far stay takeable."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()
        return self

    def take(self, path: Path) -> Spooled | None:
        """The rendering of dropped checkpoint `path`, when it is still what the checkpoint holds."""
        spooled = self._done.get(str(path))
        if spooled is None or CheckpointMeta.load(path) != spooled.meta:
            return None
        if self.store.base_problem(spooled.meta) is not None:
            return None
        return spooled

    def close(self) -> None:
        self.finish()
        shutil.rmtree(self.spool, ignore_errors=True)


def _sweep(root: Path) -> None:
    """Remove spools left by processes that are gone (a killed job)."""
    for old in root.glob(f"{SPOOL_PREFIX}*"):
        try:
            pid = int(old.name[len(SPOOL_PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not psutil.pid_exists(pid):
            shutil.rmtree(old, ignore_errors=True)


# --- this process's one (started by `sluice run`, taken by its export step) --------------------------------------

_CURRENT: ExportAhead | None = None
_LOCK = threading.Lock()


def start(store: CheckpointStore) -> ExportAhead:
    global _CURRENT
    with _LOCK:
        if _CURRENT is not None:
            _CURRENT.close()
        _CURRENT = ExportAhead(store)
        return _CURRENT


def submit(paths: Iterable[Path]) -> None:
    if _CURRENT is not None:
        _CURRENT.submit(paths)


def finish() -> ExportAhead | None:
    """The export step: this process's renderings, the thread stopped; None when there are none."""
    current = _CURRENT
    return current.finish() if current is not None else None


def stop() -> None:
    global _CURRENT
    with _LOCK:
        if _CURRENT is not None:
            _CURRENT.close()
        _CURRENT = None
