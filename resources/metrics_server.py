"""Live, read-only machine metrics over HTTP: JSON per section, and Prometheus text for scrapers.

    GET /resources/cpu | /resources/memory | /resources/network | /resources/gpu | /resources/all
    GET /health
    GET /metrics          (Prometheus text exposition format 0.0.4)

Starlette and uvicorn come with dagster-webserver, so this adds no dependency. Snapshots are cached for
`ttl_seconds`, so a burst of requests reads the machine once. Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from resources.monitor import SystemSnapshot, snapshot

if TYPE_CHECKING:  # starlette is imported by create_app: the `sluice` command registers this module's CLI
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8787


class HealthInfo(BaseModel):
    status: str = "ok"
    uptime_seconds: float
    snapshot_age_seconds: float | None = None
    """How old the cached snapshot is; None before the first one."""


class SnapshotCache:
    """The latest snapshot, re-read when older than `ttl_seconds`; concurrent requests share one read."""

    def __init__(self, ttl_seconds: float = 1.0, source: Callable[[], SystemSnapshot] = snapshot) -> None:
        self.ttl_seconds = ttl_seconds
        self.source = source
        self._lock = threading.Lock()
        self._value: SystemSnapshot | None = None
        self._at = 0.0

    def get(self) -> SystemSnapshot:
        with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.ttl_seconds:
                self._value, self._at = self.source(), time.monotonic()
            return self._value

    @property
    def age(self) -> float | None:
        return None if self._value is None else time.monotonic() - self._at


# --- Prometheus text ------------------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(
        self, name: str, kind: str, help_text: str, values: Iterable[tuple[dict[str, str], float]] | float
    ) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in [({}, values)] if isinstance(values, int | float) else values:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(
                f"{name}{{{label_text}}} {_format_value(value)}" if labels else f"{name} {_format_value(value)}"
            )

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_prometheus(snap: SystemSnapshot) -> str:
    """The snapshot as Prometheus gauges and counters, prefixed `sluice_`."""
    out = _Exposition()
    cpu, mem, net, gpu = snap.cpu, snap.memory, snap.network, snap.gpu
    out.metric("sluice_cpu_percent", "gauge", "Machine CPU busy percent.", cpu.percent)
    out.metric(
        "sluice_cpu_core_percent",
        "gauge",
        "Busy percent per logical CPU.",
        [({"cpu": str(i)}, p) for i, p in enumerate(cpu.per_cpu_percent)],
    )
    out.metric("sluice_cpu_logical_cores", "gauge", "Logical CPUs.", cpu.logical_cores)
    out.metric(
        "sluice_load_average",
        "gauge",
        "System load average.",
        [({"period": p}, v) for p, v in zip(("1m", "5m", "15m"), cpu.load_average, strict=True)],
    )
    out.metric("sluice_memory_total_bytes", "gauge", "Total physical memory.", mem.total_bytes)
    out.metric("sluice_memory_used_bytes", "gauge", "Physical memory in use (total - available).", mem.used_bytes)
    out.metric("sluice_memory_available_bytes", "gauge", "Physical memory available.", mem.available_bytes)
    out.metric("sluice_memory_percent", "gauge", "Physical memory used percent.", mem.percent)
    out.metric("sluice_swap_used_bytes", "gauge", "Swap in use.", mem.swap_used_bytes)
    out.metric("sluice_process_resident_memory_bytes", "gauge", "RSS of the metrics server.", mem.process_rss_bytes)
    out.metric("sluice_network_sent_bytes_total", "counter", "Bytes sent, all interfaces.", net.bytes_sent)
    out.metric("sluice_network_received_bytes_total", "counter", "Bytes received, all interfaces.", net.bytes_recv)
    out.metric("sluice_network_sent_bytes_per_second", "gauge", "Send rate.", net.sent_bytes_per_s)
    out.metric("sluice_network_received_bytes_per_second", "gauge", "Receive rate.", net.recv_bytes_per_s)
    out.metric("sluice_gpu_count", "gauge", "GPUs NVML reports (0 without NVML).", len(gpu.devices))
    labels = [{"gpu": str(d.index), "name": d.name} for d in gpu.devices]
    out.metric(
        "sluice_gpu_utilization_percent",
        "gauge",
        "GPU busy percent.",
        [(lab, d.utilization_percent) for lab, d in zip(labels, gpu.devices, strict=True)],
    )
    out.metric(
        "sluice_gpu_memory_used_bytes",
        "gauge",
        "GPU memory in use.",
        [(lab, d.memory_used_bytes) for lab, d in zip(labels, gpu.devices, strict=True)],
    )
    out.metric(
        "sluice_gpu_memory_total_bytes",
        "gauge",
        "GPU memory.",
        [(lab, d.memory_total_bytes) for lab, d in zip(labels, gpu.devices, strict=True)],
    )
    out.metric("sluice_snapshot_timestamp_seconds", "gauge", "When the figures were read.", snap.timestamp.timestamp())
    return out.text()


# --- the app --------------------------------------------------------------------------------------------------


def create_app(ttl_seconds: float = 1.0, source: Callable[[], SystemSnapshot] = snapshot) -> Starlette:
    """The ASGI app. Handlers are plain functions, so Starlette runs them (and the blocking reads) in its thread
    pool. Only GET (and the HEAD Starlette adds) is routed: anything else is 405, unknown paths 404."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    cache = SnapshotCache(ttl_seconds, source)
    started = time.monotonic()

    def section(pick: Callable[[SystemSnapshot], BaseModel]) -> Callable[[Request], JSONResponse]:
        def endpoint(request: Request) -> JSONResponse:
            return JSONResponse(pick(cache.get()).model_dump(mode="json"))

        return endpoint

    def health(request: Request) -> JSONResponse:
        info = HealthInfo(
            uptime_seconds=round(time.monotonic() - started, 3),
            snapshot_age_seconds=None if cache.age is None else round(cache.age, 3),
        )
        return JSONResponse(info.model_dump(mode="json"))

    def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse(render_prometheus(cache.get()), media_type=PROMETHEUS_CONTENT_TYPE)

    routes = [
        Route("/resources/cpu", section(lambda s: s.cpu), methods=["GET"]),
        Route("/resources/memory", section(lambda s: s.memory), methods=["GET"]),
        Route("/resources/network", section(lambda s: s.network), methods=["GET"]),
        Route("/resources/gpu", section(lambda s: s.gpu), methods=["GET"]),
        Route("/resources/all", section(lambda s: s), methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.cache = cache
    return app


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1): reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The warning printed when the endpoints are bound beyond this machine; None on a loopback address."""
    if is_loopback(host):
        return None
    return (
        f"warning: sluice serve-metrics is binding {host}:{port}, beyond this machine: its endpoints are "
        "unauthenticated, so anyone who can reach that address can read this machine's metrics. "
        f"Keep the default {DEFAULT_HOST} and put an authenticating proxy in front to share them."
    )


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, ttl_seconds: float = 1.0) -> None:
    """Run the app with uvicorn until interrupted; warn on stderr when `host` is not a loopback address."""
    import uvicorn

    warning = exposure_warning(host, port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    uvicorn.run(create_app(ttl_seconds), host=host, port=port, log_level="info")


def _cmd_serve_metrics(args: argparse.Namespace) -> int:
    serve(args.host, args.port, args.ttl)
    return 0


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register `serve-metrics [--host H] [--port N] [--ttl S]` on an argparse subparsers object (its handler is
    `args.fn(args)`)."""
    parser = subparsers.add_parser("serve-metrics", help="serve live machine metrics as JSON and Prometheus text")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"interface to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--ttl", type=float, default=1.0, help="seconds a snapshot is reused (default 1.0)")
    parser.set_defaults(fn=_cmd_serve_metrics)
    return parser
