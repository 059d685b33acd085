from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from resources.monitor import MB, NVML


def _fake_pynvml(devices: list[tuple[str, float, int, int]]) -> types.ModuleType:
    """A stand-in for `pynvml` with GPUs given as (name, utilisation %, used bytes, total bytes)."""
    module = types.ModuleType("pynvml")
    module.nvmlInit = lambda: None
    module.nvmlDeviceGetCount = lambda: len(devices)
    module.nvmlDeviceGetHandleByIndex = lambda i: i
    module.nvmlDeviceGetName = lambda h: devices[h][0].encode()
    module.nvmlSystemGetDriverVersion = lambda: "550.54.15"
    module.nvmlDeviceGetUtilizationRates = lambda h: SimpleNamespace(gpu=devices[h][1], memory=0)
    module.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=devices[h][2], total=devices[h][3])
    return module


FAKE_GPUS = [("Fake GPU A", 40.0, 1000 * MB, 8000 * MB), ("Fake GPU B", 80.0, 3000 * MB, 8000 * MB)]


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, float, int, int]]]:
    """Two fake GPUs behind the monitor's NVML reader; the real one is back after the test."""
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(FAKE_GPUS))
    NVML.reset()
    yield FAKE_GPUS
    NVML.reset()
