"""vLLM's Prometheus /metrics text: its vocabulary (metric names, old and new aliases) and the
numbers read from it, for the doctor and the sweep alike (sweeps.server_metrics).

The text is read with prometheus_client's parser, the library vLLM writes it with: label
values hold any character (`}`, `,`, escaped quotes and backslashes), as the format allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

QUEUE_TIME = "vllm:request_queue_time_seconds"  # histogram: seconds each request waited
RUNNING_TIME = "vllm:request_inference_time_seconds"  # prefill + decode, per finished request
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
# new name first; a fraction per engine, so engines are not summed: the fullest one counts
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
PREEMPTIONS = ("vllm:num_preemptions_total", "vllm:num_preemptions")
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
PREFIX_QUERIES = "vllm:prefix_cache_queries_total"
PREFIX_HITS = "vllm:prefix_cache_hits_total"


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

    def highest(self, *names: str) -> float | None:
        """The largest value over labels of the first name present."""
        for name in names:
            values = [s.value for s in self.samples if s.name == name]
            if values:
                return max(values)
        return None

    def labels_of(self, name: str) -> dict[str, str]:
        for s in self.samples:
            if s.name == name:
                return s.labels
        return {}

    @property
    def waiting(self) -> float | None:
        return self.total(WAITING)

    @property
    def running(self) -> float | None:
        return self.total(RUNNING)

    @property
    def kv_usage(self) -> float | None:
        """KV cache use of the fullest engine (0..1): a fraction per engine, never summed."""
        return self.highest(*KV_USAGE)

    @property
    def preemptions(self) -> float | None:
        return self.total(*PREEMPTIONS)

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
    """Every sample of the text, named as written (`_total`, `_sum`, `_bucket` kept). A line
    the format does not allow (a proxy's error page, a cut answer) is skipped, not fatal."""
    try:
        return Metrics(list(_samples(text)))
    except ValueError:
        return Metrics([s for line in text.splitlines() for s in _line_samples(line)])


def _samples(text: str) -> Iterator[Sample]:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            yield Sample(s.name, dict(s.labels), float(s.value))


def _line_samples(line: str) -> list[Sample]:
    if not line.strip() or line.startswith("#"):
        return []
    try:
        return list(_samples(line + "\n"))
    except ValueError:
        return []
