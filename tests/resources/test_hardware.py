"""Hardware detection: affinity-aware CPUs, available memory, GPUs through NVML (faked here), never raising."""

from __future__ import annotations

import os
import sys
import types
from types import SimpleNamespace

import pytest

from resources.hardware import GpuInfo, Hardware, detect_gpus, detect_hardware, usable_cpus

GIB = 1024**3


def fake_pynvml(*devices: tuple[str, str, float, float], fail_init: bool = False) -> types.ModuleType:
    """`pynvml` with GPUs given as (name, uuid, total GB, free GB)."""
    module = types.ModuleType("pynvml")

    def init() -> None:
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    module.nvmlInit = init
    module.nvmlShutdown = lambda: None
    module.nvmlDeviceGetCount = lambda: len(devices)
    module.nvmlDeviceGetHandleByIndex = lambda i: i
    module.nvmlDeviceGetName = lambda h: devices[h][0].encode()
    module.nvmlDeviceGetUUID = lambda h: devices[h][1]
    module.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(
        total=int(devices[h][2] * GIB), free=int(devices[h][3] * GIB), used=int((devices[h][2] - devices[h][3]) * GIB)
    )
    return module


TWO_GPUS = (("Fake H100", "GPU-aaaa-1111", 80.0, 70.0), ("Fake H100", "GPU-bbbb-2222", 80.0, 20.0))


def test_fake_hardware_is_two_gpus_of_20_gb_and_32_cpus_by_default() -> None:
    hw = Hardware.fake()
    assert (hw.cpus, hw.memory_gb, hw.gpu_count, hw.gpu_free_gb) == (32, 128.0, 2, 40.0)
    assert [g.index for g in hw.gpus] == [0, 1]
    assert "2 GPUs" in hw.describe()
    assert Hardware.fake(gpus=0).describe().endswith("no GPU")


def test_hardware_is_frozen_and_keeps_gpus_as_a_tuple() -> None:
    hw = Hardware(cpus=4, memory_gb=8.0, gpus=[GpuInfo(0, "g", 10.0, 5.0)])  # type: ignore[arg-type]
    assert isinstance(hw.gpus, tuple)
    assert hw.gpus[0].visible_id == "0"
    with pytest.raises(AttributeError):
        hw.cpus = 8  # type: ignore[misc]


def test_detect_hardware_counts_the_cpus_this_process_may_use() -> None:
    hw = detect_hardware()
    assert hw.cpus == usable_cpus() == len(os.sched_getaffinity(0))
    assert hw.memory_gb > 0


def test_gpus_come_from_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(*TWO_GPUS))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = detect_gpus()
    assert [(g.index, g.name, g.total_gb, g.free_gb, g.visible_id) for g in gpus] == [
        (0, "Fake H100", 80.0, 70.0, "GPU-aaaa-1111"),
        (1, "Fake H100", 80.0, 20.0, "GPU-bbbb-2222"),
    ]


@pytest.mark.parametrize(
    ("visible", "expected"),
    [("1", ["GPU-bbbb-2222"]), ("1,0", ["GPU-bbbb-2222", "GPU-aaaa-1111"]), ("GPU-aaaa", ["GPU-aaaa-1111"]), ("", [])],
)
def test_cuda_visible_devices_selects_and_orders_the_gpus(
    monkeypatch: pytest.MonkeyPatch, visible: str, expected: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(*TWO_GPUS))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    gpus = detect_gpus()
    assert [g.visible_id for g in gpus] == expected
    assert [g.index for g in gpus] == list(range(len(expected)))  # CUDA ordinals as this process sees them


def test_no_nvml_means_no_gpu_and_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(*TWO_GPUS, fail_init=True))
    assert detect_gpus() == []
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    assert detect_gpus() == []
    assert detect_hardware().gpus == ()


def test_a_failing_nvml_query_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = fake_pynvml(*TWO_GPUS)
    broken.nvmlDeviceGetMemoryInfo = lambda h: (_ for _ in ()).throw(RuntimeError("GPU is lost"))
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    assert detect_gpus() == []
