"""Intervals on synthetic samples of known distributions (no server): coverage of the
order-statistic quantile interval, "not enough samples" instead of a number, and the three
outcomes of a limit."""

from __future__ import annotations

import numpy as np
import pytest

from picoclaw_vllm.intervals import (
    Estimate,
    Outcome,
    cv,
    difference_interval,
    judge,
    mean_interval,
    proportion_interval,
    quantile_interval,
    quantile_needs,
    scaled,
    separated,
)

# 95 % intervals over 400 simulated draws: the binomial interval is conservative, so its
# coverage lies at or above 95 %; 0.92 allows for the simulation's own noise
# (sd of a 400-draw coverage near 0.95 is about 0.011).
DRAWS = 400
COVERAGE_FLOOR = 0.92


@pytest.mark.parametrize(
    ("q", "n"),
    [(0.5, 40), (0.95, 200), (0.99, 800)],
)
@pytest.mark.parametrize("dist", ["exponential", "lognormal"])
def test_quantile_interval_covers_the_true_quantile_at_its_nominal_rate(
    q: float, n: int, dist: str
) -> None:
    rng = np.random.default_rng(7)
    if dist == "exponential":
        truth = -np.log(1 - q)  # scale 1
        draw = lambda: rng.exponential(1.0, n)  # noqa: E731
    else:
        from scipy import stats

        truth = float(np.exp(stats.norm.ppf(q)))
        draw = lambda: rng.lognormal(0.0, 1.0, n)  # noqa: E731
    covered = 0
    for _ in range(DRAWS):
        est = quantile_interval(list(draw()), q)
        assert est.bounded, est
        assert est.low is not None and est.high is not None
        covered += est.low <= truth <= est.high
    rate = covered / DRAWS
    assert COVERAGE_FLOOR <= rate <= 1.0, rate
    # Not absurdly wide either: the interval must miss sometimes for a p50 of 40 samples.
    if q == 0.5:
        assert rate < 0.995, rate


def test_too_few_samples_give_not_enough_never_a_bare_number() -> None:
    xs = [float(i) for i in range(1, 27)]  # 26 requests
    p99 = quantile_interval(xs, 0.99)
    assert p99.high is None and not p99.bounded
    assert p99.needs == quantile_needs(0.99) == 368
    text = p99.text(what="a p99")
    assert "not enough samples for a p99 (n = 26, needs ≥ 368)" in text
    p95 = quantile_interval(xs, 0.95)
    assert p95.needs == 72 and p95.high is None
    assert p95.low is not None and 20 <= p95.low <= 26  # the lower side is bounded
    assert "at least" in p95.text()
    enough = quantile_interval([float(i) for i in range(72)], 0.95)
    assert enough.bounded and enough.high == 71.0


def test_the_value_is_the_linear_interpolation_percentile() -> None:
    xs = list(range(1, 101))
    est = quantile_interval([float(x) for x in xs], 0.95)
    assert est.value == pytest.approx(float(np.percentile(xs, 95)))
    assert est.low is not None and est.high is not None
    assert est.low <= est.value <= est.high


def test_judge_gives_pass_fail_and_inconclusive() -> None:
    inside = Estimate(100.0, 90.0, 110.0, 100)
    assert judge(inside, 120, "<=") is Outcome.PASS
    assert judge(inside, 80, "<=") is Outcome.FAIL
    assert judge(inside, 105, "<=") is Outcome.INCONCLUSIVE
    assert judge(inside, 80, ">=") is Outcome.PASS
    assert judge(inside, 120, ">=") is Outcome.FAIL
    assert judge(inside, 95, ">=") is Outcome.INCONCLUSIVE
    # An unbounded upper side can still fail (its lower bound is beyond) but never pass.
    open_top = Estimate(2000.0, 1900.0, None, 26, needs=72)
    assert judge(open_top, 1800, "<=") is Outcome.FAIL
    assert judge(open_top, 10_000, "<=") is Outcome.INCONCLUSIVE
    assert judge(Estimate(None, None, None, 0), 1, "<=") is Outcome.INCONCLUSIVE


def test_mean_and_proportion_intervals() -> None:
    m = mean_interval([10.0, 12.0, 11.0, 13.0, 9.0])
    assert m.value == 11.0 and m.low is not None and m.high is not None
    assert m.low < 11.0 < m.high and m.n == 5
    assert not mean_interval([5.0]).bounded
    p = proportion_interval(0, 50)
    assert p.value == 0.0 and p.low == pytest.approx(0.0, abs=1e-12)
    assert p.high is not None and 0.05 < p.high < 0.1  # Wilson's upper bound for 0 of 50
    pct = scaled(p, 100)
    assert pct.high == pytest.approx(p.high * 100)


def test_difference_interval_separates_only_real_differences() -> None:
    """Over 40 pairs of samples from one distribution the p95 difference's interval excludes 0
    rarely (nominally 5 %; the percentile bootstrap of a tail quantile runs a little narrow, so
    up to 6 of 40 are allowed); over 40 pairs whose scale differs twofold, almost always."""
    rng = np.random.default_rng(3)

    def p95(x: np.ndarray, axis: int) -> np.ndarray:
        return np.percentile(x, 95, axis=axis)

    false_alarms = found = 0
    for _ in range(40):
        a = rng.exponential(100, 300)
        same = rng.exponential(100, 300)
        slower = rng.exponential(200, 300)
        tie = difference_interval(a, same, p95, resamples=500)
        assert tie.low is not None and tie.high is not None
        false_alarms += not tie.low <= 0 <= tie.high
        diff = difference_interval(slower, a, p95, resamples=500)
        assert diff.low is not None
        found += diff.low > 0
    assert false_alarms <= 6, false_alarms
    assert found >= 36, found


def test_separated_and_cv() -> None:
    a = Estimate(10.0, 9.0, 11.0, 30)
    b = Estimate(20.0, 18.0, 22.0, 30)
    assert separated(b, a) == 1 and separated(a, b) == -1
    assert separated(a, Estimate(10.5, 8.0, 12.0, 30)) == 0
    assert separated(a, Estimate(30.0, 25.0, None, 30)) == 0
    assert cv([10.0, 10.0, 10.0]) == 0.0
    c = cv([9.0, 11.0])
    assert c is not None and 0.14 < c < 0.15
    assert cv([1.0]) is None


def test_json_round_trip() -> None:
    est = quantile_interval([float(i) for i in range(100)], 0.9)
    assert Estimate.from_json(est.as_json()) == est
