"""Confidence intervals for the figures a verdict rests on, and the three outcomes of a limit.

Every figure a gate, a capacity or a recommendation uses is an `Estimate`: the point value,
an interval at a stated confidence, the number of samples (requests, turns, runs or time
windows) it rests on, and how the interval was made. A side the data cannot bound is None, and
a figure with an unbounded side never reads as a bare number (`Estimate.text`).

- Percentiles: the distribution-free binomial order-statistic interval (`quantile_interval`).
  With n sorted samples, [x(l), x(u)] covers the q-quantile with probability
  P(l <= B < u), B ~ Binomial(n, q); each side is bounded only when its tail probability can
  be kept within (1 - confidence) / 2 (a two-sided 95 % p95 needs 72 samples for its upper
  bound, a p99 needs 368).
- Means and rates from several values (repeats, time windows): Student's t (`mean_interval`).
- Proportions (error rates, hit rates): Wilson's score interval (`proportion_interval`).
- Differences between two samples (two settings): a bootstrap interval
  (`difference_interval`, scipy.stats.bootstrap).

`judge` turns an estimate and a limit into pass (the interval lies within the limit), fail
(it lies beyond) or inconclusive (it straddles the limit, or the needed side is unbounded).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypedDict

import numpy as np
from scipy import stats

CONFIDENCE = 0.95

Method = Literal["order statistic", "t", "wilson", "bootstrap", "exact", "none"]
Direction = Literal["<=", ">="]


class EstimateJson(TypedDict):
    value: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float
    method: str
    needs: int | None


@dataclass(frozen=True)
class Estimate:
    """A figure with its interval. `low`/`high` None: that side cannot be bounded from `n`
    samples at `confidence` (`needs` then says how many samples would bound it)."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float = CONFIDENCE
    method: Method = "none"
    needs: int | None = None

    @property
    def bounded(self) -> bool:
        return self.value is not None and self.low is not None and self.high is not None

    @property
    def half_width(self) -> float | None:
        if not self.bounded:
            return None
        assert self.low is not None and self.high is not None
        return (self.high - self.low) / 2

    @property
    def relative_half_width(self) -> float | None:
        """Half the interval's width over the value (inf for a zero value with a width)."""
        hw = self.half_width
        if hw is None or self.value is None:
            return None
        if self.value == 0:
            return 0.0 if hw == 0 else math.inf
        return hw / abs(self.value)

    def as_json(self) -> EstimateJson:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "confidence": self.confidence,
            "method": self.method,
            "needs": self.needs,
        }

    @classmethod
    def from_json(cls, data: EstimateJson) -> Estimate:
        return cls(
            value=data["value"],
            low=data["low"],
            high=data["high"],
            n=int(data["n"]),
            confidence=float(data["confidence"]),
            method=_method(data["method"]),
            needs=data["needs"],
        )

    def text(self, fmt: Callable[[float], str] = "{:,.1f}".format, what: str = "") -> str:
        """`1,878.4 [1,702.0–2,046.9] (n = 26)`, or why there is no interval."""
        if self.value is None:
            return f"not measured (n = {self.n})"
        if self.bounded:
            assert self.low is not None and self.high is not None
            return f"{fmt(self.value)} [{fmt(self.low)}–{fmt(self.high)}] (n = {self.n})"
        need = f", needs ≥ {self.needs}" if self.needs else ""
        subject = f" for {what}" if what else ""
        known = ""
        if self.low is not None:
            known = f"; at least {fmt(self.low)}"
        elif self.high is not None:
            known = f"; at most {fmt(self.high)}"
        return f"not enough samples{subject} (n = {self.n}{need}){known}"


def _method(name: str) -> Method:
    for m in ("order statistic", "t", "wilson", "bootstrap", "exact", "none"):
        if name == m:
            return m
    return "none"


def _tail(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    return (1 - confidence) / 2


def quantile_interval(
    samples: Sequence[float], q: float, confidence: float = CONFIDENCE
) -> Estimate:
    """The q-quantile (0 < q < 1) with its distribution-free order-statistic interval.

    The value is the linear-interpolation percentile (numpy's default, as `vllm bench serve`
    reports it)."""
    if not 0 < q < 1:
        raise ValueError(f"quantile must be between 0 and 1, not {q}")
    xs = np.sort(np.asarray([s for s in samples if math.isfinite(s)], dtype=float))
    n = int(xs.size)
    if n == 0:
        return Estimate(
            None, None, None, 0, confidence, "order statistic", quantile_needs(q, confidence)
        )
    tail = _tail(confidence)
    value = float(np.percentile(xs, q * 100))
    # B = number of samples below the quantile ~ Binomial(n, q).
    # low = x(l) with P(B < l) <= tail: the largest such l (1-based), if l >= 1.
    # high = x(u) with P(B >= u) <= tail: the smallest such u, if u <= n.
    below = stats.binom.cdf(np.arange(0, n), n, q)  # below[k - 1] = P(B < k), k = 1..n
    low_ok = np.nonzero(below <= tail)[0]
    high_ok = np.nonzero(1 - below <= tail)[0]
    low = float(xs[low_ok[-1]]) if low_ok.size else None
    high = float(xs[high_ok[0]]) if high_ok.size else None
    needs: int | None = None
    if low is None or high is None:
        needs = quantile_needs(q, confidence)
    return Estimate(value, low, high, n, confidence, "order statistic", needs)


def quantile_needs(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest samples whose order statistics bound the q-quantile on both sides."""
    tail = _tail(confidence)
    # Upper side: P(B = n) = q^n <= tail; lower side: P(B = 0) = (1 - q)^n <= tail.
    return max(
        math.ceil(math.log(tail) / math.log(q)),
        math.ceil(math.log(tail) / math.log(1 - q)),
    )


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """The mean with Student's t interval (use for independent values: repeats, batch means)."""
    xs = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    n = int(xs.size)
    if n == 0:
        return Estimate(None, None, None, 0, confidence, "t", 2)
    mean = float(xs.mean())
    if n == 1:
        return Estimate(mean, None, None, 1, confidence, "t", 2)
    sem = float(xs.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(1 - _tail(confidence), n - 1)) * sem
    return Estimate(mean, mean - half, mean + half, n, confidence, "t")


def proportion_interval(hits: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """A proportion (0-1) with Wilson's score interval."""
    if n <= 0:
        return Estimate(None, None, None, 0, confidence, "wilson", 1)
    if not 0 <= hits <= n:
        raise ValueError(f"hits must be within 0..{n}, not {hits}")
    ci = stats.binomtest(hits, n).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(hits / n, float(ci.low), float(ci.high), n, confidence, "wilson")


def scaled(estimate: Estimate, factor: float) -> Estimate:
    """The same estimate in other units (e.g. a proportion as a percentage)."""

    def s(x: float | None) -> float | None:
        return None if x is None else x * factor

    lo, hi = s(estimate.low), s(estimate.high)
    if factor < 0:
        lo, hi = hi, lo
    return Estimate(
        s(estimate.value), lo, hi, estimate.n, estimate.confidence, estimate.method, estimate.needs
    )


def exact(value: float | None, n: int) -> Estimate:
    """A figure that is counted, not sampled (e.g. turns over a timeout): no interval needed."""
    return Estimate(value, value, value, n, CONFIDENCE, "exact")


def difference_interval(
    a: Sequence[float],
    b: Sequence[float],
    statistic: Callable[..., Any],
    confidence: float = CONFIDENCE,
    resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """statistic(a) - statistic(b) with a percentile bootstrap interval (independent samples).

    `statistic(x, axis=...)` reduces along an axis, as numpy's do:
    `lambda x, axis: np.percentile(x, 95, axis=axis)`."""
    xa = np.asarray(a, dtype=float)
    xb = np.asarray(b, dtype=float)
    n = int(min(xa.size, xb.size))
    if xa.size < 2 or xb.size < 2:
        return Estimate(None, None, None, n, confidence, "bootstrap", 2)
    value = float(statistic(xa, axis=-1) - statistic(xb, axis=-1))

    def diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> Any:
        return statistic(x, axis=axis) - statistic(y, axis=axis)

    res = stats.bootstrap(
        (xa, xb),
        diff,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Estimate(value, float(ci.low), float(ci.high), n, confidence, "bootstrap")


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


def judge(estimate: Estimate, limit: float, direction: Direction) -> Outcome:
    """pass: the interval lies within the limit; fail: beyond it; else inconclusive.

    `<=`: the figure must not exceed the limit (a latency); `>=`: it must reach it (a
    throughput). An unbounded side counts as reaching to infinity."""
    low = -math.inf if estimate.low is None else estimate.low
    high = math.inf if estimate.high is None else estimate.high
    if estimate.value is None:
        return Outcome.INCONCLUSIVE
    if direction == "<=":
        if high <= limit:
            return Outcome.PASS
        if low > limit:
            return Outcome.FAIL
        return Outcome.INCONCLUSIVE
    if low >= limit:
        return Outcome.PASS
    if high < limit:
        return Outcome.FAIL
    return Outcome.INCONCLUSIVE


def separated(a: Estimate, b: Estimate) -> int:
    """+1 when a lies wholly above b, -1 when wholly below, 0 when the intervals overlap (or
    either is unbounded): the strict, simple rule of non-overlapping intervals."""
    if not (a.bounded and b.bounded):
        return 0
    assert a.low is not None and a.high is not None and b.low is not None and b.high is not None
    if a.low > b.high:
        return 1
    if a.high < b.low:
        return -1
    return 0


def cv(values: Sequence[float]) -> float | None:
    """The coefficient of variation (sample std / mean) of repeated figures, None for < 2."""
    xs = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if xs.size < 2 or xs.mean() == 0:
        return None
    return float(xs.std(ddof=1) / abs(xs.mean()))
