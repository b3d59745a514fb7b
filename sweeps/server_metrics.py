"""What vLLM itself did during a load step, from `/metrics` (and the GPU when there is one).

`StepSampler` scrapes `/metrics` every `interval_s` in a thread while a step runs; `figures`
turns the samples taken in the measured window (after the warm-up) into the server columns
of a results row: running/waiting requests (max, mean), the mean time in vLLM's queue, KV
cache usage max, and the growth of the preemption, prompt and generation token counters,
and the prefix cache hit rate. Gauges sum over engines (KV usage takes the max); counters
are the last minus the first sample of the window.

The means of running and waiting requests come from vLLM's per-request time histograms by
Little's law (requests/s x mean seconds per request), not from the sampled gauges: a busy
API server answers `/metrics` mostly between requests, so on the CPU vLLM the gauges read
0.07-0.23 running with one user whose request was in the engine 86 % of the time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from picoclaw_vllm.nvml import GpuReader, NvmlReader
from picoclaw_vllm.vllm_api.metrics import (
    GENERATION_TOKENS,
    KV_USAGE,
    PREEMPTIONS,
    PREFIX_HITS,
    PREFIX_QUERIES,
    PROMPT_TOKENS,
    QUEUE_TIME,
    RUNNING,
    RUNNING_TIME,
    WAITING,
)
from picoclaw_vllm.vllm_api.metrics import parse as parse_metrics


def parse_prometheus(text: str) -> dict[str, float]:
    """Metric name -> value summed over label sets (names as scraped, `_total` kept), read
    with the doctor's vocabulary: KV use is the fullest engine's, an old release's
    preemption counter stands under the new name."""
    metrics = parse_metrics(text)
    values: dict[str, float] = {}
    for sample in metrics.samples:
        if not math.isnan(sample.value):
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    kv = metrics.kv_usage
    for name in KV_USAGE:
        values.pop(name, None)
    if kv is not None:
        values[KV_USAGE[0]] = kv
    preemptions = metrics.preemptions
    if preemptions is not None:
        values[PREEMPTIONS[0]] = preemptions
    return values


@dataclass(frozen=True)
class GpuUsage:
    """All local GPUs at one moment, in a results row's terms (the doctor's full per-GPU
    picture is picoclaw_vllm.nvml.GpuSnapshot, read by its GpuReader)."""

    memory_used_mib: float
    utilization_pct: float | None


class GpuUsageReader(Protocol):
    def read(self) -> GpuUsage | None:
        """The GPUs' state now (memory summed, utilization averaged), or None without a GPU."""


class NoGpu:
    def read(self) -> GpuUsage | None:
        return None


class NvmlUsageReader:
    """Local NVIDIA GPUs through the doctor's NVML probe (or a recording); None without one."""

    def __init__(self, source: GpuReader | None = None) -> None:
        self.source: GpuReader = source or NvmlReader()

    def read(self) -> GpuUsage | None:
        gpus = self.source.read().gpus
        if not gpus:
            return None
        utils = [g.utilization_percent for g in gpus if g.utilization_percent is not None]
        return GpuUsage(
            memory_used_mib=sum(g.used_mib for g in gpus),
            utilization_pct=sum(utils) / len(utils) if utils else None,
        )


@dataclass(frozen=True)
class ServerSample:
    """One scrape of vLLM's /metrics (metric name -> value) and the GPUs, at a moment
    (picoclaw_vllm.vllm_api.metrics.Sample is one line of that text)."""

    at: float  # time.monotonic()
    metrics: dict[str, float]
    gpu: GpuUsage | None = None


def _kv(metrics: dict[str, float]) -> float | None:
    for name in KV_USAGE:
        if name in metrics:
            return metrics[name]
    return None


def _delta(first: ServerSample, last: ServerSample, name: str) -> float | None:
    if name not in first.metrics or name not in last.metrics:
        return None
    return last.metrics[name] - first.metrics[name]


def figures(
    samples: Sequence[ServerSample],
    *,
    gauges_until: float = math.inf,
    request_rate: float | None = None,
) -> dict[str, float | None]:
    """The server columns of a results row from the samples of the measured window.

    The first sample is the window's baseline: counters grow from it to the last sample.
    Gauges are read from the samples after it taken up to `gauges_until` (the end of the last
    measured request), so that the idle seconds while the load generator exits do not pull
    the means down. With none taken while the load ran (a starved API server answered no
    scrape in time), the gauge columns are None, not the idle readings around the step: on
    two cores a TP=2 sweep once reported 0 running and 0 KV for steps that finished 375
    requests. With `request_rate` (the measured
    requests/s) and vLLM's request time histograms, the running and waiting means are
    `request_rate` x the mean seconds per request finished in the window.
    """
    cols: dict[str, float | None] = {
        "server_running_max": None,
        "server_running_mean": None,
        "server_waiting_max": None,
        "server_waiting_mean": None,
        "server_queue_ms_mean": None,
        "server_kv_cache_max": None,
        "server_preemptions": None,
        "server_prompt_tokens": None,
        "server_generation_tokens": None,
        "server_prefix_cache_hit_rate": None,
        "gpu_memory_used_max_mib": None,
        "gpu_utilization_mean": None,
    }
    if not samples:
        return cols
    gauges = [s for s in samples[1:] if s.at <= gauges_until]
    for key, name in (("running", RUNNING), ("waiting", WAITING)):
        values = [s.metrics[name] for s in gauges if name in s.metrics]
        if values:
            cols[f"server_{key}_max"] = max(values)
            cols[f"server_{key}_mean"] = sum(values) / len(values)
    first, last = samples[0], samples[-1]
    for key, name in (("running", RUNNING_TIME), ("waiting", QUEUE_TIME)):
        seconds = _delta(first, last, f"{name}_sum")
        finished = _delta(first, last, f"{name}_count")
        if seconds is None or not finished:
            continue
        if key == "waiting":
            cols["server_queue_ms_mean"] = 1000 * seconds / finished
        if request_rate is not None:
            cols[f"server_{key}_mean"] = request_rate * seconds / finished
    kv = [v for v in map(_kv, (s.metrics for s in gauges)) if v is not None]
    cols["server_kv_cache_max"] = max(kv) if kv else None
    cols["server_preemptions"] = _delta(first, last, PREEMPTIONS[0])
    cols["server_prompt_tokens"] = _delta(first, last, PROMPT_TOKENS)
    cols["server_generation_tokens"] = _delta(first, last, GENERATION_TOKENS)
    queries = _delta(first, last, PREFIX_QUERIES)
    hits = _delta(first, last, PREFIX_HITS)
    if queries and hits is not None:
        cols["server_prefix_cache_hit_rate"] = hits / queries
    gpus = [s.gpu for s in gauges if s.gpu is not None]
    if gpus:
        cols["gpu_memory_used_max_mib"] = max(g.memory_used_mib for g in gpus)
        utils = [g.utilization_pct for g in gpus if g.utilization_pct is not None]
        cols["gpu_utilization_mean"] = sum(utils) / len(utils) if utils else None
    return cols


Scrape = Callable[[], dict[str, float] | None]


class HttpScraper:
    """GET /metrics (no API key needed); None when the server does not answer."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.url = f"{base_url.rstrip('/')}/metrics"
        self._client = httpx.Client(timeout=timeout_s)

    def __call__(self) -> dict[str, float] | None:
        try:
            r = self._client.get(self.url)
        except httpx.HTTPError:
            return None
        return parse_prometheus(r.text) if r.status_code == 200 else None

    def close(self) -> None:
        self._client.close()


@dataclass
class StepSampler:
    """Samples in a background thread from `start()` until `stop()`; thread-safe reads."""

    scrape: Scrape
    gpu: GpuUsageReader = field(default_factory=NoGpu)
    interval_s: float = 0.5
    samples: list[ServerSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample_now(self) -> ServerSample | None:
        metrics = self.scrape()
        if metrics is None:
            return None
        sample = ServerSample(time.monotonic(), metrics, self.gpu.read())
        self.samples.append(sample)
        return sample

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_now()

    def start(self) -> None:
        self.sample_now()
        self._thread = threading.Thread(target=self._loop, name="metrics-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sample_now()

    def window(self, since: float) -> list[ServerSample]:
        """The samples from the last one before `since` on (the window's baseline) to the end."""
        samples = list(self.samples)
        before = [s for s in samples if s.at < since]
        inside = [s for s in samples if s.at >= since]
        return ([before[-1]] if before else []) + inside
