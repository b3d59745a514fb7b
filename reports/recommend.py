"""The recommendation: which setting, at what load, meets every gate, and what the next load
step up would cost. When nothing meets the gates, which gate breaks first. For the agent
workload it is the capacity answer (reports.capacity): how many concurrent PicoClaw sessions
each setting serves within the gates, which serves the most, and what runs out first."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from reports import ties
from reports.capacity import SettingCapacity, capacities, sessions_text
from reports.document_types import CapacityEntry, Cell, NextStep, RecommendationEntry
from reports.gates import Gates, StepCheck
from reports.steps import Step
from reports.verdict import judge_step


@dataclass(frozen=True)
class Recommendation:
    found: bool
    summary: str  # plain words, first line of the recommendation
    details: list[str] = field(default_factory=list)
    setting_id: str | None = None
    max_num_seqs: Cell = None
    tensor_parallel_size: Cell = None
    step_id: str | None = None
    load_mode: str | None = None
    load: float | None = None
    goodput: float | None = None
    request_throughput: float | None = None
    output_throughput: float | None = None
    next_step: NextStep | None = None
    first_failing_gates: list[str] = field(default_factory=list)
    workload: str = "chat"
    sessions: float | None = None  # agent workload: sessions the recommended setting serves
    capacity: list[CapacityEntry] = field(default_factory=list)  # agent: one per setting

    def as_json(self) -> RecommendationEntry:
        return {
            "found": self.found,
            "summary": self.summary,
            "details": list(self.details),
            "setting_id": self.setting_id,
            "max_num_seqs": self.max_num_seqs,
            "tensor_parallel_size": self.tensor_parallel_size,
            "step_id": self.step_id,
            "load_mode": self.load_mode,
            "load": self.load,
            "goodput": self.goodput,
            "request_throughput": self.request_throughput,
            "output_throughput": self.output_throughput,
            "next_step": self.next_step,
            "first_failing_gates": list(self.first_failing_gates),
            "workload": self.workload,
            "sessions": self.sessions,
            "capacity": list(self.capacity),
        }


def recommend(
    steps: Sequence[Step], gates: Gates, searches: Mapping[str, Mapping[str, Any]] | None = None
) -> Recommendation:
    """`searches`: setting_id -> the capacity search the sweep recorded (sweep.json), if any."""
    searches = searches or {}
    ok = [s for s in steps if s.ok and s.load is not None]
    if not ok:
        return Recommendation(
            False,
            "No step was measured, so there is nothing to recommend.",
            ["Fix the causes shown under “Failed settings and steps” and run the sweep again."],
        )
    if any(s.is_agent for s in ok):
        return _recommend_sessions(ok, gates, searches)
    cands: dict[str, tuple[ties.Candidate, list[Step]]] = {}
    for _, group in groupby(ok, key=lambda s: s.setting_id):
        series = sorted(group, key=_load)
        passing = [s for s in series if all(c.passed for c in judge_step(s, gates))]
        if passing:
            top = passing[-1]
            up = next((s for s in series if _load(s) > _load(top)), None)
            failed = up is not None and any(c.failed for c in judge_step(up, gates))
            cand = ties.candidate(top, up, failed, gates.confidence)
            if cand.setting_id in searches:
                cand = ties.from_search(cand, searches[cand.setting_id], series)
            cands[cand.setting_id] = (cand, series)
    unit = "requests/s" if ok[0].load_mode == "rate" else "users"
    choice = ties.choose([c for c, _ in cands.values()], unit)
    if choice is None:
        return _nothing_meets(ok, gates)
    step, series = choice.best.step, cands[choice.best.setting_id][1]
    higher = [s for s in series if _load(s) > _load(step)]
    next_step = _next_step(step, higher[0], gates) if higher else None
    goodput = step.number("goodput")
    summary = (
        f"Use {step.setting_label} and keep the load at or below {step.load_label}: "
        f"{step.number('output_throughput') or 0:.1f} output tokens/s, "
        f"{step.number('request_throughput') or 0:.2f} requests/s"
        + (f", goodput {goodput:.2f} requests/s" if goodput is not None else "")
        + "."
    )
    details = (
        [next_step["summary"]]
        if next_step
        else [
            "No higher load was measured for this setting, "
            f"so its limit lies above {step.load_label}."
        ]
    )
    searched = [
        ties.search_sentence(c, unit) for c, _ in cands.values() if c.setting_id in searches
    ]
    return _recommending(
        step, summary, details + searched + choice.sentences, goodput=goodput, next_step=next_step
    )


def _recommending(step: Step, summary: str, details: list[str], **more: Any) -> Recommendation:
    """A found recommendation of `step`: its setting, its load and its throughputs."""
    return Recommendation(
        True,
        summary,
        details,
        setting_id=step.setting_id,
        max_num_seqs=step.get("max_num_seqs"),
        tensor_parallel_size=step.get("tensor_parallel_size"),
        step_id=step.step_id,
        load_mode=step.load_mode,
        load=step.load,
        request_throughput=step.number("request_throughput"),
        output_throughput=step.number("output_throughput"),
        **more,
    )


def _recommend_sessions(
    ok: Sequence[Step], gates: Gates, searches: Mapping[str, Mapping[str, Any]]
) -> Recommendation:
    caps = capacities(ok, gates)
    if not caps:
        return Recommendation(
            False,
            "No closed-loop agent step was measured, so the sessions served are unknown.",
            workload="agent",
        )
    serving = [
        ties.candidate(
            c.step, c.failing, any(b.failed for b in c.broken), gates.confidence, c.label
        )
        for c in caps
        if c.step is not None
    ]
    serving = [
        ties.from_search(c, searches[c.setting_id], ok) if c.setting_id in searches else c
        for c in serving
    ]
    choice = ties.choose(serving, "PicoClaw sessions")
    best = max(caps, key=_capacity_rank)
    if choice is not None:
        best = next(c for c in caps if c.setting_id == choice.best.setting_id)
    details = [c.sentence() for c in sorted(caps, key=_capacity_rank, reverse=True)]
    details += [
        ties.search_sentence(c, "PicoClaw sessions") for c in serving if c.setting_id in searches
    ]
    details += choice.sentences if choice is not None else []
    table = [c.as_json() for c in caps]
    step = best.step
    if step is None:
        lightest = min((c for c in caps if c.failing), key=lambda c: len(c.broken))
        names = " and ".join(c.title for c in lightest.broken)
        first = (
            f"The first gate to fail is {names}"
            if any(c.failed for c in lightest.broken)
            else f"No gate failed, but {names} cannot yet be told met (inconclusive)"
        )
        return Recommendation(
            False,
            f"No setting {'serves' if first.startswith('The') else 'is shown to serve'} even "
            f"the lightest measured number of PicoClaw sessions within the gates. {first} "
            f"({lightest.label}, {sessions_text(lightest.failing)}).",
            details,
            first_failing_gates=[c.gate_id for c in lightest.broken],
            workload="agent",
            sessions=0.0,
            capacity=table,
        )
    assert choice is not None
    if len(choice.tied) > 1:
        most = f", tied with {', '.join(c.label for c in choice.tied[1:])} (see below)"
    else:
        most = ", the most of the settings measured" if len(caps) > 1 else ""
    served = f"{sessions_text(step)} at once within the gates"
    if best.failing is None:
        served += (
            f" (it passes at every level tried, up to {step.load_label}; the limit was not reached)"
        )
    summary = (
        f"Use {best.label}: it serves {served}{most} "
        f"({step.number('output_throughput') or 0:.1f} output tokens/s, "
        f"{step.number('request_throughput') or 0:.2f} LLM calls/s at that load)."
    )
    return _recommending(
        step,
        summary,
        details,
        goodput=step.number("goodput"),
        next_step=_next_step(step, best.failing, gates) if best.failing else None,
        workload="agent",
        sessions=best.sessions,
        capacity=table,
    )


def _capacity_rank(cap: SettingCapacity) -> tuple[float, float, float, float]:
    step = cap.step
    seqs = step.number("max_num_seqs") if step else None
    return (
        cap.sessions,
        (step.number("output_throughput") or 0.0) if step else 0.0,
        -((step.number("tensor_parallel_size") or 1.0) if step else 1.0),
        -(seqs if seqs is not None else math.inf),
    )


def _next_step(step: Step, up: Step, gates: Gates) -> NextStep:
    broken = [c for c in judge_step(up, gates) if not c.passed]
    before = step.number("output_throughput") or 0.0
    after = up.number("output_throughput") or 0.0
    gain = 100.0 * (after - before) / before if before else None
    gain_text = f"{gain:+.0f} % output tokens/s" if gain is not None else "unknown throughput gain"
    costs = "; ".join(_breach(c) for c in broken) or "no gate"
    verb = "breaks" if any(c.failed for c in broken) or not broken else "is not shown to meet"
    return {
        "step_id": up.step_id,
        "load": up.load,
        "output_throughput": after,
        "output_throughput_gain_pct": gain,
        "broken_gates": [c.gate_id for c in broken],
        "summary": f"The next step up, {up.load_label}, would give {gain_text} but {verb} {costs}.",
    }


def _nothing_meets(ok: Sequence[Step], gates: Gates) -> Recommendation:
    details = []
    firsts: list[tuple[float, list[StepCheck], Step]] = []
    for _, group in groupby(ok, key=lambda s: s.setting_id):
        lightest = min(group, key=_load)
        broken = [c for c in judge_step(lightest, gates) if not c.passed]
        firsts.append((_load(lightest), broken, lightest))
        details.append(
            f"{lightest.setting_label}: already at {lightest.load_label}, "
            + "; ".join(_breach(c) for c in broken)
            + "."
        )
    _, broken, step = min(firsts, key=lambda f: (len(f[1]), -f[0]))
    names = " and ".join(c.title for c in broken)
    first = (
        f"The first gate to fail is {names}"
        if any(c.failed for c in broken)
        else f"No gate failed, but {names} cannot yet be told met (inconclusive)"
    )
    return Recommendation(
        False,
        f"No setting {'meets' if any(c.failed for c in broken) else 'is shown to meet'} every "
        f"gate, not even at the lightest load measured. {first} ({step.setting_label}, "
        f"{step.load_label}).",
        details,
        first_failing_gates=[c.gate_id for c in broken],
    )


def _breach(check: StepCheck) -> str:
    measured = "not measured" if check.measured is None else f"{check.measured:.1f} {check.unit}"
    return f"{check.title} (measured {measured})"


def _load(step: Step) -> float:
    return step.load if step.load is not None else -1.0
