"""The capacity answer of the agent workload: how many concurrent PicoClaw sessions each setting
serves within the gates, and what runs out first as sessions grow. Every statement rests on a
measured step; a level that was not measured is never claimed.

What "runs out" means, read from the server's own figures of each step (lightest first; the
first step where any shows names the resource, several when they show together):
  kv_cache      the KV cache was >= 90 % full, or vLLM preempted requests
  queue         requests waited in vLLM's queue (>= 10 ms on average) with more sessions
                than --max-num-seqs
  prefix_cache  the prefix-cache hit rate fell >= 10 points below a lighter step's (evictions)
  prefill       prompt tokens/s grew by less than half as much as the sessions did, with
                no queue (the scheduler had room, the compute did not)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby

from reports.document_types import CapacityEntry
from reports.gates import Gates, StepCheck
from reports.steps import Step
from reports.verdict import judge_step

KV_FULL = 0.9
QUEUE_MS = 10.0  # a mean wait in vLLM's queue below this is no queue
HIT_RATE_DROP = 0.10
PREFILL_GROWTH = 0.5
RESOURCES = ("kv_cache", "queue", "prefix_cache", "prefill")


@dataclass(frozen=True)
class Shortage:
    resource: str  # one of RESOURCES
    load: float  # sessions at which it first showed
    evidence: str


@dataclass(frozen=True)
class SettingCapacity:
    setting_id: str
    label: str
    sessions: float  # the most sessions served with every lighter measured level within gates
    highest_measured: float
    step: Step | None  # the step at `sessions` (None when even the lightest misses a gate)
    failing: Step | None  # the first measured step above it, which misses a gate
    broken: list[StepCheck] = field(default_factory=list)
    runs_out_first: list[Shortage] = field(default_factory=list)

    def as_json(self) -> CapacityEntry:
        return {
            "setting_id": self.setting_id,
            "label": self.label,
            "sessions": self.sessions,
            "highest_measured": self.highest_measured,
            "limit_measured": self.failing is not None,
            "step_id": self.step.step_id if self.step else None,
            "first_failing_step_id": self.failing.step_id if self.failing else None,
            "first_failing_load": self.failing.load if self.failing else None,
            "broken_gates": [c.gate_id for c in self.broken],
            "runs_out_first": [
                {"resource": s.resource, "load": s.load, "evidence": s.evidence}
                for s in self.runs_out_first
            ],
            "summary": self.sentence(),
        }

    def sentence(self) -> str:
        if self.step is None and self.failing is not None:
            unsure = not any(c.failed for c in self.broken)
            verb = "cannot yet be told to meet" if unsure else "misses"
            served = (
                f"{'is shown to serve' if unsure else 'serves'} none of the measured levels: "
                f"already at {sessions_text(self.failing)} it {verb} {_breaches(self.broken)}"
            )
        elif self.failing is not None:
            unsure = not any(c.failed for c in self.broken)
            verb = "cannot yet be told to meet" if unsure else "misses"
            served = (
                f"serves {sessions_text(self.step)} within the gates; at "
                f"{sessions_text(self.failing)} it {verb} {_breaches(self.broken)}"
            )
        else:
            served = (
                f"serves {sessions_text(self.step)} within the gates: it passes at every "
                "level tried, up to that; the limit was not reached"
            )
        return f"{self.label}: {served}. {self._runs_out()}"

    def _runs_out(self) -> str:
        if not self.runs_out_first:
            return (
                "Nothing ran out in the measured steps (no queue, KV cache below 90 %, "
                "prefix-cache hit rate steady, prefill growing with the sessions)."
            )
        names = " and ".join(RESOURCE_NAMES[s.resource] for s in self.runs_out_first)
        load = self.runs_out_first[0].load
        evidence = "; ".join(s.evidence for s in self.runs_out_first)
        return f"What runs out first: {names}, from {_sessions(load)} ({evidence})."


RESOURCE_NAMES = {
    "kv_cache": "the KV cache",
    "queue": "the queue above --max-num-seqs",
    "prefix_cache": "the prefix cache (evictions)",
    "prefill": "prefill (prompt tokens/s)",
}


def capacities(steps: Sequence[Step], gates: Gates) -> list[SettingCapacity]:
    """One capacity per setting, from its measured closed-loop agent steps."""
    measured = [
        s for s in steps if s.ok and s.is_agent and s.load is not None and s.load_mode != "rate"
    ]
    out = []
    for _, group in groupby(measured, key=lambda s: s.setting_id):
        series = sorted(group, key=lambda s: s.load or 0.0)
        out.append(_capacity(series, gates))
    return out


def _capacity(series: list[Step], gates: Gates) -> SettingCapacity:
    served: Step | None = None
    failing: Step | None = None
    broken: list[StepCheck] = []
    for step in series:
        misses = [c for c in judge_step(step, gates) if not c.passed]
        if misses:
            failing, broken = step, misses
            break
        served = step
    return SettingCapacity(
        setting_id=series[0].setting_id,
        label=series[0].setting_label,
        sessions=(served.load or 0.0) if served else 0.0,
        highest_measured=series[-1].load or 0.0,
        step=served,
        failing=failing,
        broken=broken,
        runs_out_first=runs_out_first(series),
    )


def runs_out_first(series: Sequence[Step]) -> list[Shortage]:
    """The resources short at the lightest step where any is (see the module docstring)."""
    for index, step in enumerate(series):
        found = [s for s in _shortages(step, series[:index]) if s is not None]
        if found:
            return found
    return []


def _shortages(step: Step, lighter: Sequence[Step]) -> list[Shortage | None]:
    load = step.load or 0.0
    queue = _queue(step, load)
    return [
        _kv_cache(step, load),
        queue,
        _prefix_cache(step, lighter, load),
        # a queue caps the prompt tokens/s too: prefill is the limit only where none formed
        None if queue else _prefill(step, lighter, load),
    ]


def _kv_cache(step: Step, load: float) -> Shortage | None:
    kv = step.number("server_kv_cache_max")
    preempted = step.number("server_preemptions") or 0.0
    if (kv is None or kv < KV_FULL) and preempted <= 0:
        return None
    parts = [f"KV cache {100 * kv:.0f} % full"] if kv is not None else []
    if preempted > 0:
        parts.append(f"{preempted:.0f} preemptions")
    return Shortage("kv_cache", load, ", ".join(parts))


def _queue(step: Step, load: float) -> Shortage | None:
    """A session has one call in flight at a time, so a queue above --max-num-seqs needs
    more sessions than that; a request seen waiting for a moment (the gauge sampled between
    its arrival and the next engine step) is not one."""
    waiting = step.number("server_waiting_max")
    seqs = step.number("max_num_seqs")
    queue_ms = step.number("server_queue_ms_mean")
    if (seqs is not None and load <= seqs) or (waiting is not None and waiting < 1):
        return None
    # an unsampled gauge (None) leaves vLLM's queue-time histogram to say it
    if (queue_ms is None and waiting is None) or (queue_ms is not None and queue_ms < QUEUE_MS):
        return None
    cap = f"--max-num-seqs {seqs:g}" if seqs is not None else "--max-num-seqs"
    wait = f", mean wait {queue_ms:.0f} ms" if queue_ms is not None else ""
    seen = f"up to {waiting:.0f} waiting" if waiting is not None else "requests waited"
    return Shortage("queue", load, f"{seen} beyond {cap}{wait}")


def _prefix_cache(step: Step, lighter: Sequence[Step], load: float) -> Shortage | None:
    rate = step.number("server_prefix_cache_hit_rate")
    earlier = [
        (r, s) for s in lighter if (r := s.number("server_prefix_cache_hit_rate")) is not None
    ]
    if rate is None or not earlier:
        return None
    best, where = max(earlier, key=lambda e: e[0])
    if best - rate < HIT_RATE_DROP:
        return None
    return Shortage(
        "prefix_cache",
        load,
        f"prefix-cache hit rate {100 * best:.0f} % at {sessions_text(where)}, "
        f"{100 * rate:.0f} % at {_sessions(load)}",
    )


def _prefill(step: Step, lighter: Sequence[Step], load: float) -> Shortage | None:
    if not lighter:
        return None
    before = lighter[-1]
    now, then = step.prompt_tokens_per_s, before.prompt_tokens_per_s
    if now is None or not then or not before.load:
        return None
    load_growth = load / before.load - 1.0
    token_growth = now / then - 1.0
    if load_growth <= 0 or token_growth >= PREFILL_GROWTH * load_growth:
        return None
    return Shortage(
        "prefill",
        load,
        f"prompt tokens/s {then:.0f} at {sessions_text(before)}, {now:.0f} at "
        f"{_sessions(load)} (x{now / then:.2f} for x{load / before.load:.2f} sessions)",
    )


def sessions_text(step: Step | None) -> str:
    return _sessions(step.load if step is not None and step.load is not None else 0.0)


def _sessions(load: float) -> str:
    return f"{load:g} PicoClaw session" + ("" if load == 1 else "s")


def _breaches(checks: Sequence[StepCheck]) -> str:
    def one(check: StepCheck) -> str:
        if check.measured is None:
            return f"{check.title} (not measured)"
        return f"{check.title} (measured {check.measured:.1f} {check.unit})"

    return "; ".join(one(c) for c in checks) or "no gate"
