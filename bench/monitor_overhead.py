"""What a ResourceMonitor costs a step: a fixed CPU-bound workload (a pure-Python loop, ~2 s) without a monitor
and with one at 1 s and 0.1 s intervals, interleaved, medians of each.

Two overhead figures: the extra process CPU time against the unmonitored runs (what a step really pays, noisy on
a busy machine), and the sampler thread's own CPU time (exact, from `thread_time` around every sample) as a
share of the workload's CPU time.

Run: python bench/monitor_overhead.py [--repeats 5] [--iterations 36000000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from resources.monitor import ResourceMonitor


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    """Process CPU time: the workload plus, when monitored, the sampler thread."""
    sampler_cpu_s: float = 0.0
    samples: int = 0


def workload(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def measure(iterations: int, interval: float | None) -> Run:
    monitor = ResourceMonitor(interval) if interval is not None else None
    wall, cpu = time.perf_counter(), time.process_time()
    if monitor is not None:
        monitor.start()
    workload(iterations)
    if monitor is not None:
        monitor.stop()
    run = Run(time.perf_counter() - wall, time.process_time() - cpu)
    if monitor is not None:
        run.sampler_cpu_s, run.samples = monitor.sampler_cpu_seconds, len(monitor.samples)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=36_000_000)
    args = parser.parse_args()

    configs: dict[str, float | None] = {"none": None, "1 s": 1.0, "0.1 s": 0.1}
    runs: dict[str, list[Run]] = {name: [] for name in configs}
    measure(args.iterations // 10, 0.1)  # warm up: imports, NVML init, first /proc reads
    order = list(configs)
    for repeat in range(args.repeats):
        for name in order[repeat % 3 :] + order[: repeat % 3]:  # rotate, so no config always runs first
            runs[name].append(measure(args.iterations, configs[name]))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{n} {r[-1].cpu_s:.3f} s CPU" for n, r in runs.items()))

    base_cpu = statistics.median(r.cpu_s for r in runs["none"])
    base_min = min(r.cpu_s for r in runs["none"])
    print(
        f"\n{'monitor':<8}{'wall s':>8}{'CPU s':>8}{'min CPU':>9}{'samples':>8}{'extra CPU':>11}{'(by min)':>10}"
        f"{'sampler CPU':>13}{'per sample':>12}"
    )
    for name, rs in runs.items():
        cpu = statistics.median(r.cpu_s for r in rs)
        wall = statistics.median(r.wall_s for r in rs)
        low = min(r.cpu_s for r in rs)
        row = f"{name:<8}{wall:>8.3f}{cpu:>8.3f}{low:>9.3f}"
        if configs[name] is None:
            print(row)
            continue
        samples = statistics.median(r.samples for r in rs)
        sampler_share = statistics.median(r.sampler_cpu_s / (r.cpu_s - r.sampler_cpu_s) for r in rs)
        per_sample_ms = statistics.median(r.sampler_cpu_s / r.samples for r in rs) * 1000
        print(
            f"{row}{samples:>8.0f}{(cpu - base_cpu) / base_cpu:>10.2%} {(low - base_min) / base_min:>9.2%}"
            f"{sampler_share:>13.3%}{per_sample_ms:>9.3f} ms"
        )
    print(
        "\nextra CPU: median (and min) process CPU against the unmonitored runs, run-to-run noise included; "
        "sampler CPU: the sampler's own thread CPU time / the workload's CPU time (start and stop samples included)"
    )


if __name__ == "__main__":
    main()
