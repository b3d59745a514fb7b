"""The step judgement `--search` uses: the report's own (reports.verdict.judge_step_records).

`step_judge(gates)` has the shape of sweeps.engine.StepJudge (the sweep and the report do not
import each other: the command layer hands it in). Each gate figure is judged on its interval
over the step's measured records, as the report judges it: PASS when the interval lies within
the limit, FAIL beyond it, else INCONCLUSIVE (the search then measures the level again with a
larger sample budget, and records a level still inconclusive as unsettled, never as passing:
sweeps.search).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from picoclaw_vllm.intervals import Outcome
from picoclaw_vllm.run_layout import ResultRow
from reports.gates import Gates
from reports.verdict import judge_step_records

Judgement = tuple[Outcome, str | None, str]
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


def step_judge(
    gates: Gates, confidence: float | None = None
) -> Callable[[str, Path, ResultRow], Judgement]:
    def judge_step(_step_id: str, records_path: Path, row: ResultRow) -> Judgement:
        typed = {key: _typed(value) for key, value in row.items()}
        return judge_step_records(records_path, typed, gates, confidence)

    return judge_step
