"""Judges the gates: each step on its own, then the run at the target load, in plain words."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from picoclaw_vllm.intervals import Direction, Estimate, Outcome, judge
from picoclaw_vllm.run_layout import DoctorJson
from reports import estimates
from reports.document_types import GateResultEntry
from reports.gates import (
    METRIC_NAMES,
    METRIC_WORDS,
    STAT_NAMES,
    STAT_WORDS,
    TURN_LATENCY,
    Gates,
    StepCheck,
)
from reports.run_data import read_samples, window_end
from reports.steps import Step

PASS, FAIL, SKIP, INCONCLUSIVE = "pass", "fail", "skip", "inconclusive"
DOCTOR_FAILING_SEVERITIES = ("fail", "failure", "error", "critical")


@dataclass(frozen=True)
class GateResult:
    gate_id: str
    title: str
    status: str  # pass | fail | inconclusive | skip
    explanation: str  # for someone who has never heard of TTFT
    measured: float | None = None
    threshold: float | None = None
    unit: str = ""
    step_id: str | None = None
    setting_id: str | None = None
    load: float | None = None
    rests_on: int | None = None
    warnings: list[str] = field(default_factory=list)
    interval: Estimate | None = None
    settle: str = ""  # what would settle an inconclusive gate

    @property
    def passed(self) -> bool:
        return self.status in (PASS, SKIP)

    def as_json(self) -> GateResultEntry:
        return {
            "gate_id": self.gate_id,
            "title": self.title,
            "status": self.status,
            "explanation": self.explanation,
            "measured": self.measured,
            "threshold": self.threshold,
            "unit": self.unit,
            "step_id": self.step_id,
            "setting_id": self.setting_id,
            "load": self.load,
            "rests_on": self.rests_on,
            "warnings": list(self.warnings),
            "interval": self.interval.as_json() if self.interval is not None else None,
            "settle": self.settle,
        }


def judge_step(step: Step, gates: Gates, repeats: Sequence[Step] = ()) -> list[StepCheck]:
    """Every step-level gate on one step, each with its figure's interval and outcome
    (`repeats`: the step's repeats, itself included, when it was repeated)."""
    conf = gates.confidence
    checks = []
    for limit in gates.latency:
        what = "turns" if limit.metric == TURN_LATENCY else "requests"
        figure = f"{STAT_NAMES[limit.stat]} {METRIC_NAMES[limit.metric]}"
        checks.append(
            _check(
                limit.key,
                limit.title,
                estimates.latency(step, limit, conf),
                limit.max_ms,
                "<=",
                "ms",
                figure,
                limit.metric,
                [f"rests on {step.rests_on(limit.metric)} {what}"],
            )
        )
    if gates.max_error_rate_pct is not None:
        checks.append(
            _check(
                "error_rate_pct",
                f"error rate ≤ {gates.max_error_rate_pct:g} %",
                estimates.error_rate_pct(step, conf),
                gates.max_error_rate_pct,
                "<=",
                "%",
                "the error rate",
            )
        )
    if gates.min_output_tokens_per_s is not None:
        checks.append(
            _check(
                "output_tokens_per_s",
                f"output ≥ {gates.min_output_tokens_per_s:g} tokens/s",
                estimates.output_tokens_per_s(step, conf, repeats),
                gates.min_output_tokens_per_s,
                ">=",
                "tokens/s",
                "the output throughput",
            )
        )
    if gates.max_turns_timed_out is not None:
        checks.append(
            _check(
                "turns_timed_out",
                f"turns over PicoClaw's request_timeout ≤ {gates.max_turns_timed_out:g}",
                estimates.turns_timed_out(step),
                gates.max_turns_timed_out,
                "<=",
                "turns",
                "the turns over the timeout",
                TURN_LATENCY,
            )
        )
    scored = int(step.number("scored_answers") or 0)
    if gates.max_invalid_tool_calls_pct is not None and scored:
        invalid = step.number("invalid_tool_calls_pct")
        checks.append(
            StepCheck(
                "invalid_tool_calls_pct",
                f"tool calls PicoClaw cannot run ≤ {gates.max_invalid_tool_calls_pct:g}%",
                invalid,
                gates.max_invalid_tool_calls_pct,
                "%",
                invalid is not None and invalid <= gates.max_invalid_tool_calls_pct,
                scored,
            )
        )
    return checks


def _check(
    gate_id: str,
    title: str,
    estimate: Estimate,
    threshold: float,
    direction: Direction,
    unit: str,
    figure: str,
    metric: str = "",
    notes: Sequence[str] = (),
) -> StepCheck:
    outcome = judge(estimate, threshold, direction)
    settle = ""
    if outcome == Outcome.INCONCLUSIVE:
        settle = estimates.settle_text(estimate, threshold, figure, metric)
    return StepCheck(
        gate_id,
        title,
        estimate.value,
        threshold,
        unit,
        outcome == Outcome.PASS,
        estimate.n,
        [n for n in notes if outcome == Outcome.INCONCLUSIVE],
        estimate,
        outcome,
        settle,
    )


def step_outcome(checks: Sequence[StepCheck]) -> tuple[Outcome, str | None, str]:
    """A step's outcome over its gates: fail if any fails, else inconclusive if any is, else
    pass; with the gate that binds (the first failing, else the first inconclusive) and why."""
    for wanted in (Outcome.FAIL, Outcome.INCONCLUSIVE):
        for check in checks:
            if check.result == wanted:
                figure = check.estimate.text() if check.estimate else f"{check.measured}"
                detail = f"{check.title}: {wanted.value} ({figure} {check.unit})"
                if check.settle:
                    detail += f"; {check.settle}"
                return wanted, check.gate_id, detail
    return Outcome.PASS, None, "every gate is met"


def judge_step_records(
    records: Path, row: Mapping[str, Any], gates: Gates, confidence: float | None = None
) -> tuple[Outcome, str | None, str]:
    """Judges one step during a sweep with the report's own rule: its records file
    (records/<step_id>.jsonl) and its results row (run_layout columns) -> (outcome, binding
    gate key or None, a one-line detail). `confidence` overrides the gates' own."""
    if confidence is not None:
        gates = replace(gates, confidence=confidence)
    until = window_end(row.get("window_end_unix"))
    step = Step({str(k): v for k, v in row.items()}, read_samples(records, until))
    if not step.ok:
        return Outcome.FAIL, None, f"the step did not run ({step.get('status')})"
    return step_outcome(judge_step(step, gates))


def at_target(step: Step, gates: Gates) -> bool:
    if gates.target_concurrency is not None:
        return step.load_mode == "concurrency" and step.load == gates.target_concurrency
    if gates.target_rate is not None:
        return (
            step.load_mode == "rate"
            and step.load is not None
            and math.isclose(step.load, gates.target_rate, rel_tol=1e-6)
        )
    return True


def judged_step(steps: Sequence[Step], gates: Gates) -> Step | None:
    """The step the gates are judged on: at the target load, the best setting (all gates met,
    then fewest gates missed, then most output tokens/s)."""
    eligible = [s for s in steps if s.ok and at_target(s, gates)]
    if not eligible:
        return None

    def rank(step: Step) -> tuple[int, int, float]:
        checks = judge_step(step, gates)
        failed = sum(c.failed for c in checks)
        unsure = sum(c.result == Outcome.INCONCLUSIVE for c in checks)
        return (-failed, -unsure, step.number("output_throughput") or 0.0)

    return max(eligible, key=rank)


def evaluate(
    steps: Sequence[Step],
    gates: Gates,
    doctor: DoctorJson | None,
    *,
    data_problems: Sequence[str] = (),
    doctor_error: str | None = None,
) -> list[GateResult]:
    """Every gate's result; fails closed: data that is invalid or incomplete, or a target load
    that was not measured, is a failed gate of its own, never a pass."""
    chosen = judged_step(steps, gates)
    results = []
    if data_problems:
        results.append(
            GateResult(
                "data_valid",
                "the sweep's data is complete and valid",
                FAIL,
                "The run's data cannot all be trusted, so no verdict rests on it: "
                + "; ".join(data_problems[:5])
                + (f"; and {len(data_problems) - 5} more." if len(data_problems) > 5 else "."),
            )
        )
    if chosen is not None:
        results += [_from_check(check, chosen) for check in judge_step(chosen, gates)]
    else:
        reason = _why_no_step(steps, gates)
        title = (
            "a load step is measured"
            if gates.target_concurrency is None and gates.target_rate is None
            else f"{gates.target_label} is measured"
        )
        results.append(GateResult("target_measured", title, FAIL, reason))
        results += [GateResult(gid, title, FAIL, reason) for gid, title in _unmeasured(gates)]
    if gates.doctor:
        results.append(doctor_gate(doctor, doctor_error))
    return results


def doctor_gate(doctor: DoctorJson | None, error: str | None = None) -> GateResult:
    title = "the doctor finds no failure"
    if error is not None:
        return GateResult("doctor", title, FAIL, f"The doctor's results cannot be read: {error}.")
    if doctor is None:
        return GateResult(
            "doctor", title, SKIP, "The doctor was not run for this sweep (no doctor.json)."
        )
    failing = doctor_failures(doctor)
    if failing:
        return GateResult(
            "doctor",
            title,
            FAIL,
            f"The doctor found {len(failing)} problem(s) that break the deployment: "
            + ", ".join(failing)
            + ". See the doctor's findings for the fix.",
            measured=float(len(failing)),
            threshold=0.0,
            unit="failures",
        )
    return GateResult(
        "doctor",
        title,
        PASS,
        "The doctor's checks found nothing that breaks the deployment.",
        measured=0.0,
        threshold=0.0,
        unit="failures",
    )


def doctor_failures(doctor: DoctorJson) -> list[str]:
    """Ids of the failing checks and findings; the overall status counts when neither is given."""
    failing: list[str] = []
    for check in _dicts(doctor.get("checks")):
        if str(check.get("status", "")).lower() == "fail":
            failing.append(str(check.get("id") or check.get("name") or "unknown check"))
    for finding in _dicts(doctor.get("findings")):
        if str(finding.get("severity", "")).lower() in DOCTOR_FAILING_SEVERITIES:
            failing.append(str(finding.get("id") or "unknown finding"))
    if not failing and str(doctor.get("status", "")).lower() == "fail":
        failing.append("doctor status fail")
    return list(dict.fromkeys(failing))


def explain(check: StepCheck, step: Step) -> str:
    where = f"at {step.load_label} on {step.setting_label}"
    if check.measured is None:
        return f"Not measured {where} (the sweep recorded no value)."
    verdict = {
        Outcome.PASS: "within",
        Outcome.FAIL: "over",
        Outcome.INCONCLUSIVE: "not yet known to be within or over",
    }[check.result]
    text = _explain_figure(check, step, where, verdict)
    if check.estimate is not None and check.estimate.method not in ("exact",):
        pct = f"{100 * check.estimate.confidence:g} %"
        text += f" {pct} interval: {interval_text(check.estimate, check)}."
    if check.settle:
        text += f" Inconclusive: {check.settle}."
    return text


def interval_text(estimate: Estimate, check: StepCheck) -> str:
    """`1,878.4 [1,702.0–2,046.9] ms (n = 26)`, or `not enough requests for a p95 (...)`."""
    stat = check.gate_id.removesuffix("_ms").rsplit("_", 1)[-1]
    what = f"a {stat}" if stat in ("p50", "p90", "p95", "p99") else "an interval"
    text = estimate.text("{:,.1f}".format if check.unit != "%" else "{:.2f}".format, what)
    text = text.replace("not enough samples", f"not enough {_unit_noun(check)}")
    if estimate.bounded:
        value, _, n = text.rpartition(" (")
        return f"{value} {check.unit} ({n}"
    return text


def _unit_noun(check: StepCheck) -> str:
    return "turns" if check.gate_id.startswith(TURN_LATENCY) else "requests"


def _explain_figure(check: StepCheck, step: Step, where: str, verdict: str) -> str:
    assert check.measured is not None
    limit = f"{check.threshold:g} {check.unit}"
    if check.gate_id == "error_rate_pct":
        total = step.completed + step.failed
        return (
            f"{step.failed} of {total} requests failed {where} "
            f"({check.measured:.2f} %; {verdict} the limit of {limit})."
        )
    if check.gate_id == "output_tokens_per_s":
        enough = {
            Outcome.PASS: "enough",
            Outcome.FAIL: "too little",
            Outcome.INCONCLUSIVE: "not yet known to be enough",
        }[check.result]
        return (
            f"The server produced {check.measured:.1f} output tokens/s {where}: "
            f"{enough} (needed at least {limit})."
        )
    if check.gate_id == "turns_timed_out":
        turns = int(step.number("turns") or 0)
        return (
            f"{check.measured:.0f} of {turns} agent turns {where} took longer than PicoClaw's "
            f"request_timeout, so PicoClaw would have given up on them "
            f"({verdict} the limit of {limit})."
        )
    if check.gate_id == "invalid_tool_calls_pct":
        markup = step.number("answers_markup_in_content_pct") or 0.0
        args = step.number("answers_invalid_arguments_pct") or 0.0
        return (
            f"{check.measured:.1f} % of {check.rests_on} answers {where} were tool calls "
            f"PicoClaw cannot run ({markup:.1f} % call markup left in content, {args:.1f} % "
            f"arguments not valid for the tool's schema; {verdict} the limit of {limit})."
        )
    metric, stat = check.gate_id.removesuffix("_ms").rsplit("_", 1)
    words = STAT_WORDS[stat]
    if metric == TURN_LATENCY:
        words = words.replace("requests", "turns").replace("every one", "every turn")
    return (
        f"{words.capitalize()}, the {METRIC_WORDS[metric]} was "
        f"{'' if stat == 'mean' else 'at most '}{check.measured:.1f} ms {where}: "
        f"{verdict} the limit of {limit}."
    )


def _from_check(check: StepCheck, step: Step) -> GateResult:
    return GateResult(
        gate_id=check.gate_id,
        title=check.title,
        status=check.result.value,
        explanation=explain(check, step),
        measured=check.measured,
        threshold=check.threshold,
        unit=check.unit,
        step_id=step.step_id,
        setting_id=step.setting_id,
        load=step.load,
        rests_on=check.rests_on,
        warnings=list(check.notes),
        interval=check.estimate,
        settle=check.settle,
    )


def _unmeasured(gates: Gates) -> list[tuple[str, str]]:
    checks = [(limit.key, limit.title) for limit in gates.latency]
    if gates.max_error_rate_pct is not None:
        checks.append(("error_rate_pct", f"error rate ≤ {gates.max_error_rate_pct:g} %"))
    if gates.min_output_tokens_per_s is not None:
        checks.append(
            ("output_tokens_per_s", f"output ≥ {gates.min_output_tokens_per_s:g} tokens/s")
        )
    if gates.max_turns_timed_out is not None:
        checks.append(
            (
                "turns_timed_out",
                f"turns over PicoClaw's request_timeout ≤ {gates.max_turns_timed_out:g}",
            )
        )
    return checks


def _why_no_step(steps: Sequence[Step], gates: Gates) -> str:
    ok = [s for s in steps if s.ok]
    if not ok:
        return (
            "No step was measured: every setting or step failed (see “Failed settings and steps”)."
        )
    loads = sorted({s.load_label for s in ok if s.load is not None}, key=_label_order)
    return (
        f"The sweep did not measure {gates.target_label}; measured loads: "
        f"{', '.join(loads) or 'none'}. Run the sweep at the target load."
    )


def _label_order(label: str) -> float:
    try:
        return float(label.split()[0])
    except ValueError:
        return math.inf


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
