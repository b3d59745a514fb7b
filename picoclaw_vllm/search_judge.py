"""The step judgement `--search` uses, over the report's gates (reports.gates) and intervals.

The one adapter between the sweep's search (sweeps.search, which must not import reports) and
the gates: `step_judge(gates)` is a sweeps.engine.StepJudge. It judges each latency gate on the
interval of its statistic over the step's measured records (a percentile: the order-statistic
interval; a mean: Student's t), so PASS means the interval lies within the limit and FAIL
beyond it, else INCONCLUSIVE. Counted figures (timed-out turns, the output token rate) are
judged on their value. The error rate fails when its Wilson interval lies above the limit and
passes when the step's own rate is within it (a 1 % limit could otherwise never pass below
~370 requests). To be replaced by reports' own interval judgement (issue 19) when it lands.
"""

from __future__ import annotations

from pathlib import Path

from loadtests.records import RequestRecord, read_records
from picoclaw_vllm.intervals import (
    Estimate,
    Outcome,
    exact,
    judge,
    mean_interval,
    proportion_interval,
    quantile_interval,
)
from reports.gates import Gates
from sweeps.engine import StepJudge
from sweeps.run_layout import ResultRow
from sweeps.sample_budget import metric_values

QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def gated_quantiles(gates: Gates) -> tuple[tuple[str, float], ...]:
    """The (metric, quantile) pairs the gates judge: what a step's sample budget must bound."""
    return tuple((g.metric, QUANTILES[g.stat]) for g in gates.latency if g.stat in QUANTILES)


def _number(row: ResultRow, key: str) -> float | None:
    value = row.get(key)
    try:
        return None if value in (None, "") else float(str(value))
    except ValueError:
        return None


def _window(records: list[RequestRecord], row: ResultRow) -> list[RequestRecord]:
    end = _number(row, "window_end_unix")
    return [r for r in records if not r.warmup and (end is None or r.start_unix <= end)]


def _statistic(records: list[RequestRecord], metric: str, stat: str) -> Estimate:
    values = metric_values(records, metric)
    if stat in QUANTILES:
        return quantile_interval(values, QUANTILES[stat])
    if stat == "mean":
        return mean_interval(values)
    return exact(max(values) if values else None, len(values))  # "max"


def judge_records(
    gates: Gates, records: list[RequestRecord], row: ResultRow
) -> tuple[Outcome, str | None, str]:
    """(outcome, binding gate key, detail) of one step; the binding gate is the first that
    failed, else the first inconclusive one."""
    verdicts: list[tuple[str, Outcome, str]] = []
    for g in gates.latency:
        est = _statistic(records, g.metric, g.stat)
        verdicts.append((g.key, judge(est, g.max_ms, "<="), f"{g.key} {est.text()} ≤ {g.max_ms:g}"))
    n = len(records)
    if gates.max_error_rate_pct is not None:
        failed = sum(1 for r in records if not r.ok)
        est = proportion_interval(failed, n)
        limit = gates.max_error_rate_pct / 100
        outcome = Outcome.INCONCLUSIVE if est.value is None else Outcome.PASS
        if est.value is not None and est.value > limit:
            outcome = Outcome.FAIL if (est.low or 0) > limit else Outcome.INCONCLUSIVE
        verdicts.append(("error_rate_pct", outcome, f"error rate {failed}/{n}"))
    if gates.max_turns_timed_out is not None:
        timed_out = sum(1 for r in records if r.turn_timed_out)
        outcome = judge(exact(timed_out, n), gates.max_turns_timed_out, "<=")
        verdicts.append(("turns_timed_out", outcome, f"{timed_out} turn(s) timed out"))
    if gates.min_output_tokens_per_s is not None:
        rate = _number(row, "output_throughput")
        outcome = judge(exact(rate, n), gates.min_output_tokens_per_s, ">=")
        verdicts.append(("output_tokens_per_s", outcome, f"output {rate} tok/s"))
    detail = "; ".join(f"{text}: {o.value}" for _, o, text in verdicts)
    for wanted in (Outcome.FAIL, Outcome.INCONCLUSIVE):
        for key, outcome, _ in verdicts:
            if outcome == wanted:
                return wanted, key, detail
    return Outcome.PASS, None, detail


def step_judge(gates: Gates) -> StepJudge:
    def judge_step(
        step_id: str, records_path: Path, row: ResultRow
    ) -> tuple[Outcome, str | None, str]:
        return judge_records(gates, _window(read_records(records_path), row), row)

    return judge_step
