"""Each gate figure of one step as an `Estimate` (value, interval, what it rests on), and what
would settle a gate whose interval straddles its limit.

What each interval treats as its sample:
- latency percentiles: the step's successful measured requests (ITL: every gap of every
  request; turn latency: every finished agent turn), order-statistic interval. Requests of one
  agent session are correlated, so an agent-workload interval is narrower than the truth would
  be with fully independent sessions; the report says "requests" / "turns" it rests on.
- latency means: Student's t over the same samples.
- error rate: Wilson over the measured requests.
- output tokens/s: without repeats, t over the batch means of `WINDOWS` equal time windows of
  the step (tokens finished in each window / its length); with repeats, t over the repeats.
- turns over the timeout: a count, exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from picoclaw_vllm.intervals import (
    Estimate,
    exact,
    mean_interval,
    proportion_interval,
    quantile_interval,
    quantile_needs,
    scaled,
)
from reports.gates import TURN_LATENCY, LatencyLimit
from reports.steps import Step

WINDOWS = 5  # time windows a step's throughput is split into for its batch means
QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def latency(step: Step, limit: LatencyLimit, confidence: float) -> Estimate:
    """A latency figure from the step's records; from results.csv alone it is unbounded."""
    samples = step.samples.values.get(limit.metric) if step.samples is not None else None
    if not samples:
        n = step.rests_on(limit.metric)
        q = QUANTILES.get(limit.stat)
        needs = quantile_needs(q, confidence) if q is not None else 2
        return Estimate(step.number(limit.column), None, None, n, confidence, "none", needs)
    if limit.stat == "max":
        est = exact(max(samples), len(samples))
    elif limit.stat == "mean":
        est = mean_interval(samples, confidence)
    else:
        est = quantile_interval(samples, QUANTILES[limit.stat], confidence)
    # the figure is the sweep's own (results.csv, from the same records); the interval the records'
    row = step.number(limit.column)
    if row is None or est.value is None:
        return est
    if est.method == "exact":
        return exact(row, est.n)
    return replace(est, value=row)


def error_rate_pct(step: Step, confidence: float) -> Estimate:
    total = step.completed + step.failed
    if total == 0:
        return Estimate(None, None, None, 0, confidence, "wilson", 1)
    return scaled(proportion_interval(step.failed, total, confidence), 100.0)


def output_tokens_per_s(step: Step, confidence: float, repeats: Sequence[Step] = ()) -> Estimate:
    """t over the repeats' throughputs when the step was repeated, else over time windows."""
    repeats = repeats or step.repeats
    if len(repeats) >= 2:
        values = [tps for r in repeats if (tps := r.number("output_throughput")) is not None]
        return mean_interval(values, confidence)
    value = step.number("output_throughput")
    finishes = step.samples.finishes if step.samples is not None else []
    windows = window_rates(finishes)
    if value is None or len(windows) < 2:
        return Estimate(value, None, None, len(windows), confidence, "t", 2)
    est = mean_interval(windows, confidence)
    assert est.low is not None and est.high is not None and est.value is not None
    # centred on the sweep's own figure (measured over the whole step), with the windows' width
    return Estimate(
        value, value - (est.value - est.low), value + (est.high - est.value), est.n, confidence, "t"
    )


def window_rates(finishes: Sequence[tuple[float, float]], windows: int = WINDOWS) -> list[float]:
    """Output tokens/s in each of `windows` equal spans between the first and last finish."""
    if len(finishes) < 2 * windows:
        return []
    ends = np.asarray([f[0] for f in finishes])
    tokens = np.asarray([f[1] for f in finishes])
    start, stop = float(ends.min()), float(ends.max())
    if stop <= start:
        return []
    width = (stop - start) / windows
    index = np.minimum(((ends - start) / width).astype(int), windows - 1)
    return [float(tokens[index == k].sum()) / width for k in range(windows)]


def turns_timed_out(step: Step) -> Estimate:
    return exact(step.number("turns_timed_out"), int(step.number("turns") or 0))


def settle_text(estimate: Estimate, limit: float, what: str, metric: str = "") -> str:
    """What would turn an inconclusive outcome into pass or fail, in plain words."""
    unit = "turns" if metric == TURN_LATENCY else "requests"
    if estimate.value is None:
        return f"measure the step (no {unit} were recorded)"
    if estimate.needs is not None and estimate.needs > estimate.n:
        return (
            f"needs ≥ {estimate.needs} {unit} to bound {what} (has {estimate.n}): "
            "a longer step or more repeats"
        )
    hw = estimate.half_width
    gap = abs(estimate.value - limit)
    if hw is None or hw == 0 or estimate.n == 0:
        return "a longer step or more repeats"
    if gap == 0:
        return f"{what} sits on the limit: no number of {unit} settles it"
    # an interval's width shrinks about as 1/sqrt(n)
    more = math.ceil(estimate.n * (hw / gap) ** 2)
    return f"about {more:,} {unit} (now {estimate.n:,}) would narrow the interval past the limit"
