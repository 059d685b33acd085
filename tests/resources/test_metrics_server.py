"""The live endpoints, served by a real uvicorn on a free local port and read with urllib."""

from __future__ import annotations

import argparse
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import uvicorn
from pydantic import BaseModel
from starlette.testclient import TestClient

from resources.metrics_server import (
    PROMETHEUS_CONTENT_TYPE,
    HealthInfo,
    SnapshotCache,
    add_cli,
    create_app,
    render_prometheus,
)
from resources.monitor import (
    CpuStats,
    GpuDeviceStats,
    GpuStats,
    MemoryStats,
    NetworkStats,
    SystemSnapshot,
    snapshot,
)

ROUTES: dict[str, type[BaseModel]] = {
    "/resources/cpu": CpuStats,
    "/resources/memory": MemoryStats,
    "/resources/network": NetworkStats,
    "/resources/gpu": GpuStats,
    "/resources/all": SystemSnapshot,
    "/health": HealthInfo,
}
# Longest wait for the server to start, answer or stop: only a hang takes this long, never a slow machine.
HANG_S = 120.0
# name{labels} value, the sample line of the text exposition format
SAMPLE_LINE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)\})? (?P<value>\S+)$'
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ttl_seconds=1.0), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + HANG_S
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=HANG_S)
    sock.close()
    assert not thread.is_alive()


def get(url: str, method: str = "GET") -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=HANG_S) as response:
            return response.status, response.headers["content-type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["content-type"], exc.read().decode()


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_json_routes_match_their_schema(base_url: str, route: str) -> None:
    status, content_type, body = get(base_url + route)
    assert status == 200 and content_type == "application/json"
    ROUTES[route].model_validate(json.loads(body))


def test_all_holds_every_section(base_url: str) -> None:
    snap = SystemSnapshot.model_validate_json(get(base_url + "/resources/all")[2])
    assert snap.cpu.logical_cores == len(snap.cpu.per_cpu_percent)
    assert snap.memory.total_bytes > 0
    assert snap.gpu.available == bool(snap.gpu.devices)


def test_metrics_is_prometheus_text(base_url: str) -> None:
    status, content_type, body = get(base_url + "/metrics")
    assert status == 200 and content_type == PROMETHEUS_CONTENT_TYPE
    assert body.endswith("\n")
    typed: dict[str, str] = {}
    samples: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"gauge", "counter"}
            typed[name] = kind
        else:
            match = SAMPLE_LINE.match(line)
            assert match, line
            assert match["name"] in typed, f"{match['name']} has no TYPE line before it"
            samples[line.rsplit(" ", 1)[0]] = float(match["value"])
    assert 0 <= samples["sluice_cpu_percent"] <= 100
    assert samples["sluice_memory_used_bytes"] > 0
    assert samples["sluice_network_received_bytes_total"] >= 0
    assert typed["sluice_network_received_bytes_total"] == "counter"
    assert samples["sluice_gpu_count"] == sum(1 for k in samples if k.startswith("sluice_gpu_memory_used_bytes{"))


def test_unknown_route_is_404_and_writes_are_refused(base_url: str) -> None:
    assert get(base_url + "/resources/disk")[0] == 404
    assert get(base_url + "/nope")[0] == 404
    assert get(base_url + "/resources/all", method="POST")[0] == 405
    assert get(base_url + "/resources/all", method="DELETE")[0] == 405


def test_gpu_lines_with_fake_gpus(fake_nvml: list[tuple[str, float, int, int]]) -> None:
    snap = snapshot()
    assert [d.name for d in snap.gpu.devices] == ["Fake GPU A", "Fake GPU B"]
    assert snap.gpu.driver_version == "550.54.15"
    assert snap.gpu.devices[1].memory_percent == 37.5
    text = render_prometheus(snap)
    assert f'sluice_gpu_memory_used_bytes{{gpu="1",name="Fake GPU B"}} {3000 * 1024 * 1024}' in text
    assert 'sluice_gpu_utilization_percent{gpu="0",name="Fake GPU A"} 40' in text
    assert "sluice_gpu_count 2" in text


def test_label_values_are_escaped() -> None:
    snap = snapshot().model_copy(deep=True)
    snap.gpu.devices = []
    assert "sluice_gpu_count 0" in render_prometheus(snap)
    odd = GpuDeviceStats(
        index=0,
        name='a "b"\\c\nd',
        utilization_percent=1,
        memory_used_bytes=1,
        memory_total_bytes=2,
        memory_percent=50,
    )
    snap.gpu.devices = [odd]
    assert 'name="a \\"b\\"\\\\c\\nd"' in render_prometheus(snap)


def test_snapshots_are_cached_for_the_ttl() -> None:
    calls: list[int] = []

    def source() -> SystemSnapshot:
        calls.append(1)
        return snapshot()

    client = TestClient(create_app(ttl_seconds=60, source=source))
    for route in ("/resources/cpu", "/resources/all", "/metrics"):
        assert client.get(route).status_code == 200
    assert len(calls) == 1
    cache = SnapshotCache(ttl_seconds=0, source=source)
    cache.get()
    cache.get()
    assert len(calls) == 3


def test_cli_registers_serve_metrics() -> None:
    parser = argparse.ArgumentParser(prog="sluice")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve-metrics"])
    assert (args.host, args.port, args.ttl) == ("127.0.0.1", 8787, 1.0)
    args = parser.parse_args(["serve-metrics", "--host", "0.0.0.0", "--port", "9100"])
    assert (args.host, args.port) == ("0.0.0.0", 9100)
    assert callable(args.fn)


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("127.0.0.2", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.20", True),
        ("metrics.example.org", True),
    ],
)
def test_binding_beyond_loopback_warns_that_endpoints_are_unauthenticated(
    host: str, warned: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11 item 15: the default stays 127.0.0.1; any other address prints a warning before serving."""
    import uvicorn

    served: list[tuple[str, int]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, log_level: served.append((host, port)))
    parser = argparse.ArgumentParser(prog="sluice")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve-metrics", "--host", host, "--port", "9100"])
    assert args.fn(args) == 0
    assert served == [(host, 9100)]
    err = capsys.readouterr().err
    if warned:
        assert f"binding {host}:9100" in err and "unauthenticated" in err
    else:
        assert err == ""


def test_the_default_host_serves_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    served: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, log_level: served.append(host))
    parser = argparse.ArgumentParser(prog="sluice")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve-metrics"])
    assert args.fn(args) == 0
    assert served == ["127.0.0.1"] and capsys.readouterr().err == ""
