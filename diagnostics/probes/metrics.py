"""vLLM's Prometheus /metrics text, parsed into the few numbers the doctor reads."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

QUEUE_TIME = "vllm:request_queue_time_seconds"  # histogram: seconds each request waited


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Metrics:
    samples: list[Sample] = field(default_factory=list)

    def total(self, *names: str) -> float | None:
        """Sum over labels of the first name present (names are old/new aliases)."""
        for name in names:
            values = [s.value for s in self.samples if s.name == name]
            if values:
                return sum(values)
        return None

    def labels_of(self, name: str) -> dict[str, str]:
        for s in self.samples:
            if s.name == name:
                return s.labels
        return {}

    @property
    def waiting(self) -> float | None:
        return self.total("vllm:num_requests_waiting")

    @property
    def running(self) -> float | None:
        return self.total("vllm:num_requests_running")

    @property
    def kv_usage(self) -> float | None:
        return self.total("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")

    @property
    def preemptions(self) -> float | None:
        return self.total("vllm:num_preemptions_total", "vllm:num_preemptions")

    def histogram_mean(self, name: str) -> float | None:
        total, count = self.total(f"{name}_sum"), self.total(f"{name}_count")
        return total / count if total is not None and count else None

    def histogram_mean_since(self, earlier: Metrics, name: str) -> float | None:
        """The mean of histogram `name`'s observations made between `earlier` and this scrape."""
        sums = self.total(f"{name}_sum"), earlier.total(f"{name}_sum")
        counts = self.total(f"{name}_count"), earlier.total(f"{name}_count")
        if sums[0] is None or sums[1] is None or counts[0] is None or counts[1] is None:
            return None
        observed = counts[0] - counts[1]
        return (sums[0] - sums[1]) / observed if observed > 0 else None


def parse(text: str) -> Metrics:
    metrics = Metrics()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(match.group("labels") or ""))
        metrics.samples.append(Sample(match.group("name"), labels, value))
    return metrics
