"""The embedded instance's compute logs: Dagster's local layout, mirrored to the terminal by a thread.

Dagster's `LocalComputeLogManager` points a step's stdout and stderr file descriptors at files under
`base_dir` (what the UI's stdout/stderr tabs read) and mirrors each file back to the terminal with a `tail -F`
subprocess, plus a Python watcher process per `tail` that kills it if the run dies. A `sluice run` captures both
streams in each of its runs: 16 processes started per 4-run job, 8 of them Python interpreters, each start
competing with the run for the same cores; and `tail` polls once a second, so what a step printed last can be
lost when it is stopped (dagster-io/dagster#23336).

`MirroredComputeLogManager` writes the same files at the same paths, so the UI, `dagster` and Dagster's
stock manager read them as before. The mirror is a thread of the run's own process that copies what the file
gained to the terminal every `MIRROR_INTERVAL_S`, and copies the rest when the capture ends, so nothing written
is lost and nothing outlives the process. A child process that inherited the redirected descriptor keeps
writing to the file, as with Dagster's manager.

Configured in the `dagster.yaml` Sluice writes under `$SLUICE_HOME/dagster_home` (`compute_logs:`).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import IO, Any

from dagster._core.execution.compute_logs import should_disable_io_stream_redirect
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._serdes import ConfigurableClassData
from dagster._utils import ensure_file, touch_file

# How often the mirror copies new output to the terminal while a capture is open.
MIRROR_INTERVAL_S = 0.05
_CHUNK = 1 << 16


def _fileno(stream: IO[Any]) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # pytest's capture, a closed stream
        return None
    return fd if isinstance(fd, int) else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _pump(reader: IO[bytes], out: int, stop: threading.Event) -> None:
    """Copy what `reader` gains to `out` until `stop` is set, then what is left. A terminal that went away
    (EPIPE, a closed descriptor) stops the copying, never the capture."""
    broken = False
    while True:
        finished = stop.is_set()  # read before draining: all that was written before `stop` is then copied
        while chunk := reader.read(_CHUNK):
            if not broken:
                try:
                    _write_all(out, chunk)
                except OSError:
                    broken = True
        if finished:
            return
        stop.wait(MIRROR_INTERVAL_S)


@contextmanager
def mirrored(stream: IO[Any], path: str) -> Iterator[None]:
    """Point `stream`'s file descriptor at the end of `path` (created if missing) for the block, and copy what
    it gains to where the descriptor pointed before. Without a descriptor (a stream that is not a file), the
    block runs with nothing captured, as with Dagster's manager."""
    ensure_file(path)
    fd = _fileno(stream)
    if fd is None or should_disable_io_stream_redirect():
        yield
        return
    stream.flush()
    original = os.dup(fd)
    stop = threading.Event()
    try:
        with open(path, "ab") as sink, open(path, "rb") as reader:
            reader.seek(0, os.SEEK_END)  # what an earlier capture of the same key wrote was shown then
            pump = threading.Thread(target=_pump, args=(reader, original, stop), name="sluice-log-mirror", daemon=True)
            pump.start()
            os.dup2(sink.fileno(), fd)
            try:
                yield
            finally:
                try:
                    stream.flush()
                finally:
                    os.dup2(original, fd)
                    stop.set()
                    pump.join()
    finally:
        os.close(original)


class MirroredComputeLogManager(LocalComputeLogManager):
    """`LocalComputeLogManager` (same config, files and reading) whose capture mirrors with a thread."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> MirroredComputeLogManager:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Iterator[CapturedLogContext]:
        outpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        errpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        with ExitStack() as stack:
            stack.enter_context(mirrored(sys.stdout, outpath))
            stack.enter_context(mirrored(sys.stderr, errpath))
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))  # as Dagster's: the UI knows the capture ended
