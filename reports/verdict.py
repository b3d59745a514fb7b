"""Judges the gates: each step on its own, then the run at the target load, in plain words."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reports.document_types import GateResultEntry
from reports.gates import METRIC_WORDS, STAT_WORDS, TURN_LATENCY, Gates, StepCheck
from reports.steps import MIN_REQUESTS, MIN_REQUESTS_P99, Step
from sweeps.run_layout import DoctorJson

PASS, FAIL, SKIP = "pass", "fail", "skip"
DOCTOR_FAILING_SEVERITIES = ("fail", "failure", "error", "critical")


@dataclass(frozen=True)
class GateResult:
    gate_id: str
    title: str
    status: str  # pass | fail | skip
    explanation: str  # for someone who has never heard of TTFT
    measured: float | None = None
    threshold: float | None = None
    unit: str = ""
    step_id: str | None = None
    setting_id: str | None = None
    load: float | None = None
    rests_on: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status != FAIL

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
        }


def judge_step(step: Step, gates: Gates) -> list[StepCheck]:
    checks = []
    for limit in gates.latency:
        n = step.rests_on(limit.metric)
        needed = MIN_REQUESTS_P99 if limit.stat == "p99" else MIN_REQUESTS
        what = "turns" if limit.metric == TURN_LATENCY else "requests"
        notes = [f"rests on {n} {what} (< {needed})"] if n < needed and limit.stat != "max" else []
        value = step.number(limit.column)
        checks.append(
            StepCheck(
                limit.key,
                limit.title,
                value,
                limit.max_ms,
                "ms",
                value is not None and value <= limit.max_ms,
                n,
                notes,
            )
        )
    if gates.max_error_rate_pct is not None:
        rate = step.error_rate_pct
        checks.append(
            StepCheck(
                "error_rate_pct",
                f"error rate ≤ {gates.max_error_rate_pct:g} %",
                rate,
                gates.max_error_rate_pct,
                "%",
                rate is not None and rate <= gates.max_error_rate_pct,
                step.completed + step.failed,
            )
        )
    if gates.min_output_tokens_per_s is not None:
        tps = step.number("output_throughput")
        checks.append(
            StepCheck(
                "output_tokens_per_s",
                f"output ≥ {gates.min_output_tokens_per_s:g} tokens/s",
                tps,
                gates.min_output_tokens_per_s,
                "tokens/s",
                tps is not None and tps >= gates.min_output_tokens_per_s,
                step.completed,
            )
        )
    if gates.max_turns_timed_out is not None:
        timed_out = step.number("turns_timed_out")
        checks.append(
            StepCheck(
                "turns_timed_out",
                f"turns over PicoClaw's request_timeout ≤ {gates.max_turns_timed_out:g}",
                timed_out,
                gates.max_turns_timed_out,
                "turns",
                timed_out is not None and timed_out <= gates.max_turns_timed_out,
                int(step.number("turns") or 0),
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

    def rank(step: Step) -> tuple[int, float]:
        missed = sum(not c.passed for c in judge_step(step, gates))
        return (-missed, step.number("output_throughput") or 0.0)

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
    limit = f"{check.threshold:g} {check.unit}"
    if check.measured is None:
        return f"Not measured {where} (the sweep recorded no value)."
    verdict = "within" if check.passed else "over"
    if check.gate_id == "error_rate_pct":
        total = step.completed + step.failed
        return (
            f"{step.failed} of {total} requests failed {where} "
            f"({check.measured:.2f} %; {verdict} the limit of {limit})."
        )
    if check.gate_id == "output_tokens_per_s":
        enough = "enough" if check.passed else "too little"
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
        status=PASS if check.passed else FAIL,
        explanation=explain(check, step),
        measured=check.measured,
        threshold=check.threshold,
        unit=check.unit,
        step_id=step.step_id,
        setting_id=step.setting_id,
        load=step.load,
        rests_on=check.rests_on,
        warnings=list(check.notes),
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
