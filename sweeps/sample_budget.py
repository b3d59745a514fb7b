"""When a step has measured enough: the sample budget of `--precision` / `--min-requests`.

A step in budget mode runs until every gated percentile's interval (intervals.quantile_interval)
is bounded on both sides and its relative half-width is at most the precision's target, and
until it holds `min_requests` measured requests (`min_turns` whole agent turns), or until
its maximum time. Which (metric, quantile) pairs are gated is given as plain data by the
command layer (the report's gates), e.g. (("ttft", 0.95), ("turn_latency", 0.95)).
Only requests started after the warm-up count (the load is at its target count then).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.records import RequestRecord
from picoclaw_vllm.intervals import quantile_interval, quantile_needs

PRECISIONS = {"coarse": 0.25, "normal": 0.10, "tight": 0.05}
GatedQuantile = tuple[str, float]  # (metric: ttft|itl|tpot|e2el|turn_latency, quantile)
DEFAULT_GATED: tuple[GatedQuantile, ...] = (("e2el", 0.5),)  # when no gate names a percentile


@dataclass(frozen=True)
class SampleBudget:
    precision: float | None = None  # relative half-width target of every gated percentile
    min_requests: int = 0
    min_turns: int = 0
    gated: tuple[GatedQuantile, ...] = ()

    @property
    def active(self) -> bool:
        return self.precision is not None or self.min_requests > 0 or self.min_turns > 0


def metric_values(records: Sequence[RequestRecord], metric: str) -> list[float]:
    ok = [r for r in records if r.ok and not r.warmup]
    if metric == "turn_latency":
        return [r.turn_latency_ms for r in ok if r.turn_latency_ms is not None]
    if metric == "itl":
        return [gap for r in ok for gap in (r.itl_ms or [])]
    values = [getattr(r, f"{metric}_ms", None) for r in ok]
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


@dataclass(frozen=True)
class BudgetState:
    met: bool
    fraction: float  # 0..1: how far the step is from its budget (the least advanced part)
    text: str  # e.g. "ttft p95 ±14 % (target 10 %), 61/100 requests"


def state(budget: SampleBudget, records: Sequence[RequestRecord]) -> BudgetState:
    measured = [r for r in records if r.ok and not r.warmup]
    parts: list[str] = []
    fractions: list[float] = []
    if budget.min_requests:
        fractions.append(min(1.0, len(measured) / budget.min_requests))
        parts.append(f"{len(measured)}/{budget.min_requests} requests")
    if budget.min_turns:
        turns = len(metric_values(records, "turn_latency"))
        fractions.append(min(1.0, turns / budget.min_turns))
        parts.append(f"{turns}/{budget.min_turns} turns")
    if budget.precision is not None:
        for metric, q in budget.gated or DEFAULT_GATED:
            values = metric_values(records, metric)
            est = quantile_interval(values, q)
            name = f"{metric} p{q * 100:g}"
            rel = est.relative_half_width
            if rel is None:
                need = quantile_needs(q)
                fractions.append(min(0.99, len(values) / need))
                parts.append(f"{name} unbounded ({len(values)}/{need})")
            else:
                fractions.append(1.0 if rel <= budget.precision else budget.precision / rel)
                parts.append(f"{name} ±{rel:.0%} (target {budget.precision:.0%})")
    if not fractions:
        return BudgetState(True, 1.0, "")
    low = min(fractions)
    return BudgetState(low >= 1.0, low, ", ".join(parts))
