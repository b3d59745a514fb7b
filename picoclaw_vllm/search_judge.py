"""The step judgement `--search` uses: the report's own (reports.verdict.judge_step_records).

`step_judge(gates)` is a sweeps.engine.StepJudge (sweeps must not import reports, so the
command layer hands it in). Each gate figure is judged on its interval over the step's measured
records, as the report judges it: PASS when the interval lies within the limit, FAIL beyond it,
else INCONCLUSIVE (the search then measures the level again with a larger sample budget, and
records a level still inconclusive as unsettled, never as passing: sweeps.search).
"""

from __future__ import annotations

from pathlib import Path

from picoclaw_vllm.intervals import Outcome
from reports.gates import Gates
from reports.verdict import judge_step_records
from sweeps.engine import StepJudge
from sweeps.run_layout import ResultRow

QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def gated_quantiles(gates: Gates) -> tuple[tuple[str, float], ...]:
    """The (metric, quantile) pairs the gates judge: what a step's sample budget must bound."""
    return tuple((g.metric, QUANTILES[g.stat]) for g in gates.latency if g.stat in QUANTILES)


def _typed(value: object) -> object:
    """A row read back from results.csv (a resumed search) holds text: numbers as numbers."""
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


def step_judge(gates: Gates, confidence: float | None = None) -> StepJudge:
    def judge_step(
        step_id: str, records_path: Path, row: ResultRow
    ) -> tuple[Outcome, str | None, str]:
        typed = {key: _typed(value) for key, value in row.items()}
        return judge_step_records(records_path, typed, gates, confidence)

    return judge_step
