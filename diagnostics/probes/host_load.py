"""How starved the doctor's own host is: its timer's lag, the load average, a local vLLM's
CPU use. Measured over about half a second, alongside the other probes."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import dataclass

import psutil

TIMER_SLEEP_S = 0.010
TIMER_SAMPLES = 5
CPU_WINDOW_S = 0.5


@dataclass(frozen=True)
class HostLoad:
    timer_lag_s: float  # median oversleep of a 10 ms sleep (idle: well under 1 ms)
    worst_lag_s: float
    load_1m: float | None
    cores: int
    vllm_cores: float | None  # CPU cores a local vLLM (its whole process tree) used meanwhile
    vllm_pids: tuple[int, ...] = ()


def _tree_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    total += t.user + t.system
    return total


def measure(vllm_pids: list[int]) -> HostLoad:
    start, cpu_start = time.monotonic(), _tree_cpu_s(vllm_pids)
    lags = []
    for _ in range(TIMER_SAMPLES):
        before = time.monotonic()
        time.sleep(TIMER_SLEEP_S)
        lags.append(max(0.0, time.monotonic() - before - TIMER_SLEEP_S))
    time.sleep(max(0.0, CPU_WINDOW_S - (time.monotonic() - start)))
    wall = time.monotonic() - start
    share = (_tree_cpu_s(vllm_pids) - cpu_start) / wall if vllm_pids and wall > 0 else None
    try:
        load: float | None = os.getloadavg()[0]
    except OSError:
        load = None
    return HostLoad(
        statistics.median(lags), max(lags), load, os.cpu_count() or 1, share, tuple(vllm_pids)
    )
