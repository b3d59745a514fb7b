"""Acceptance gates: limits on a step's figures (percentiles, error rate, throughput), where
they come from, and how one step is judged. Not the per-request SLOs that goodput counts
(sweeps.step_figures.GoodputSlo).

Gates come from `key = value` pairs, given on the command line (`--slo ttft_p95_ms=500`) or in
a TOML/JSON file (top level or under a `[gates]` table):

    ttft_p95_ms = 500            # any of ttft/itl/tpot/e2el x mean/p50/p90/p95/p99, in ms (<=)
    itl_p95_ms = 50
    turn_latency_p95_ms = 120000 # agent workload: a whole turn (all LLM calls of one user
                                 # message), p50/p95/max, in ms (<=)
    turns_timed_out = 0          # agent workload: turns over PicoClaw's request_timeout (<=)
    invalid_tool_calls_pct = 0   # agent workload: answers with call markup left in content or
                                 # arguments PicoClaw cannot run, in % (<=; default 0)
    error_rate_pct = 1           # failed / all measured requests, in % (<=)
    output_tokens_per_s = 100    # output token throughput (>=)
    target_concurrency = 8       # the load the gates are judged at (closed loop) ...
    target_rate = 2.5            # ... or open loop, requests/s; neither: the best step
    doctor = true                # no doctor check may fail (default true)
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picoclaw_vllm import jsonfile
from picoclaw_vllm.errors import ConfigError
from picoclaw_vllm.intervals import CONFIDENCE, Estimate, Outcome
from picoclaw_vllm.run_layout import LATENCY_METRICS, STATS
from reports.document_types import GateConfig

TURN_LATENCY = "turn_latency"  # the agent workload's per-turn metric (run_layout.AGENT_COLUMNS)
TURN_STATS = ("p50", "p95", "max")
METRIC_NAMES = {
    "ttft": "TTFT",
    "itl": "ITL",
    "tpot": "TPOT",
    "e2el": "E2EL",
    TURN_LATENCY: "turn latency",
}
METRIC_WORDS = {
    "ttft": "time until the first words appear",
    "itl": "pause between streamed chunks",
    "tpot": "time per generated token",
    "e2el": "time for the whole answer",
    TURN_LATENCY: "time for a whole agent turn (every LLM call of one user message)",
}
STAT_NAMES = {
    "mean": "mean",
    "p50": "median",
    "p90": "p90",
    "p95": "p95",
    "p99": "p99",
    "max": "longest",
}
STAT_WORDS = {
    "mean": "on average",
    "p50": "for half of the requests",
    "p90": "for 90% of requests",
    "p95": "for 95% of requests",
    "p99": "for 99% of requests",
    "max": "for every one",
}
SCALAR_KEYS = (
    "error_rate_pct",
    "output_tokens_per_s",
    "turns_timed_out",
    "invalid_tool_calls_pct",
    "target_concurrency",
    "target_rate",
)


@dataclass(frozen=True)
class LatencyLimit:
    metric: str  # one of run_layout.LATENCY_METRICS
    stat: str  # one of run_layout.STATS
    max_ms: float

    @property
    def key(self) -> str:
        return f"{self.metric}_{self.stat}_ms"

    @property
    def column(self) -> str:
        return f"{self.metric}_ms_{self.stat}"

    @property
    def title(self) -> str:
        return f"{STAT_NAMES[self.stat]} {METRIC_NAMES[self.metric]} ≤ {self.max_ms:g} ms"


@dataclass(frozen=True)
class Gates:
    latency: tuple[LatencyLimit, ...] = ()
    max_error_rate_pct: float | None = None
    min_output_tokens_per_s: float | None = None
    max_turns_timed_out: float | None = None
    # none allowed unless set: judged on steps whose answers were scored (the agent workload)
    max_invalid_tool_calls_pct: float | None = 0.0
    target_concurrency: int | None = None
    target_rate: float | None = None
    doctor: bool = True
    confidence: float = CONFIDENCE  # of every interval a gate is judged on
    allow_inconclusive: bool = False  # an inconclusive gate does not fail the exit code

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Gates:
        """From `key: value` pairs as in the module docstring; unknown keys are a ConfigError."""
        latency: dict[str, LatencyLimit] = {}
        scalars: dict[str, float] = {}
        doctor = True
        for raw_key, raw in values.items():
            key = raw_key.strip().lower().replace("-", "_")
            if key == "doctor":
                doctor = _boolean(key, raw)
            elif key in SCALAR_KEYS:
                scalars[key] = _number(key, raw)
            elif (limit := _latency_key(key)) is not None:
                latency[limit[0] + limit[1]] = LatencyLimit(*limit, _number(key, raw))
            else:
                raise ConfigError(f"unknown gate {raw_key!r}; known: {known_keys()}")
        if "target_concurrency" in scalars and "target_rate" in scalars:
            raise ConfigError("give target_concurrency or target_rate, not both")
        concurrency = scalars.get("target_concurrency")
        if concurrency is not None and concurrency != int(concurrency):
            raise ConfigError(f"target_concurrency must be a whole number, not {concurrency:g}")
        return cls(
            latency=tuple(latency.values()),
            max_error_rate_pct=scalars.get("error_rate_pct"),
            min_output_tokens_per_s=scalars.get("output_tokens_per_s"),
            max_turns_timed_out=scalars.get("turns_timed_out"),
            max_invalid_tool_calls_pct=scalars.get("invalid_tool_calls_pct", 0.0),
            target_concurrency=int(concurrency) if concurrency is not None else None,
            target_rate=scalars.get("target_rate"),
            doctor=doctor,
        )

    @classmethod
    def from_file(cls, path: Path) -> Gates:
        return cls.from_values(read_gate_file(path))

    @property
    def target_label(self) -> str:
        if self.target_concurrency is not None:
            return f"{self.target_concurrency} concurrent users"
        if self.target_rate is not None:
            return f"{self.target_rate:g} requests/s"
        return "the best measured load"

    def as_dict(self) -> GateConfig:
        values: GateConfig = {limit.key: limit.max_ms for limit in self.latency}
        values.update(
            error_rate_pct=self.max_error_rate_pct,
            output_tokens_per_s=self.min_output_tokens_per_s,
            turns_timed_out=self.max_turns_timed_out,
            invalid_tool_calls_pct=self.max_invalid_tool_calls_pct,
            target_concurrency=self.target_concurrency,
            target_rate=self.target_rate,
            doctor=self.doctor,
        )
        return values


@dataclass(frozen=True)
class StepCheck:
    """One step-level gate judged on one sweep step: pass when the figure's interval lies
    within the limit, fail when beyond, inconclusive when it straddles (or cannot be bounded).
    Without an `estimate` the bare `passed` decides (a figure that is counted, not sampled)."""

    gate_id: str
    title: str
    measured: float | None
    threshold: float
    unit: str
    passed: bool
    rests_on: int | None = None
    notes: list[str] = field(default_factory=list)
    estimate: Estimate | None = None
    outcome: Outcome | None = None  # None: from `passed`
    settle: str = ""  # what would settle an inconclusive outcome

    @property
    def result(self) -> Outcome:
        if self.outcome is not None:
            return self.outcome
        return Outcome.PASS if self.passed else Outcome.FAIL

    @property
    def failed(self) -> bool:
        return self.result == Outcome.FAIL


def read_gate_file(path: Path) -> dict[str, Any]:
    try:
        text = jsonfile.read_text(path, max_bytes=1024 * 1024)
        data: Any = jsonfile.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except jsonfile.BadFile as e:
        raise ConfigError(f"gate file {path}: {e}") from None
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise ConfigError(f"gate file {path} is not valid TOML: {reason}") from None
    if isinstance(data, dict) and isinstance(data.get("gates"), dict):
        data = data["gates"]
    if not isinstance(data, dict):
        raise ConfigError(f"gate file {path} should hold key = value pairs")
    return data


def parse_slo_argument(text: str) -> dict[str, str]:
    """`ttft_p95_ms=500,itl_p95_ms=50` -> {"ttft_p95_ms": "500", "itl_p95_ms": "50"}."""
    pairs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--slo expects KEY=VALUE (or a gate file), got {part!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def known_keys() -> str:
    return ", ".join(
        ["ttft_p95_ms (any metric_stat_ms)", "turn_latency_p95_ms", *SCALAR_KEYS, "doctor"]
    )


def _latency_key(key: str) -> tuple[str, str] | None:
    if key.startswith(TURN_LATENCY + "_") and key.endswith("_ms"):
        stat = key[len(TURN_LATENCY) + 1 : -3]
        return (TURN_LATENCY, stat) if stat in TURN_STATS else None
    parts = key.split("_")
    if len(parts) != 3 or parts[2] != "ms":
        return None
    a, b = parts[0], parts[1]
    if a in LATENCY_METRICS and b in STATS:
        return a, b
    if b in LATENCY_METRICS and a in STATS:  # vLLM's own spelling: p95_ttft_ms
        return b, a
    return None


def _number(key: str, raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"gate {key} needs a number, not {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"gate {key} needs a finite number >= 0, not {raw!r}")
    return value


def _boolean(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"gate {key} needs true or false, not {raw!r}")
