"""Choosing a setting without choosing by noise: settings are compared on their capacity (the
interval [last load that passes, first load that fails]) and then on output tokens/s at that
load (with its interval). Settings that cannot be told apart are a tie, and the tie is broken by
a stated rule, never by a difference inside the intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

from picoclaw_vllm.intervals import Estimate, separated
from reports import estimates
from reports.steps import Step

TIE_RULE = "the smaller tensor-parallel size, then the smaller --max-num-seqs"


@dataclass(frozen=True)
class Candidate:
    setting_id: str
    label: str
    step: Step  # the heaviest load that passes (and every lighter one does)
    passes_at: float
    fails_at: float | None  # the first load above that fails a gate; None: none failed
    throughput: Estimate  # output tokens/s at `passes_at`
    unsure_at: float | None = None  # the first load above, inconclusive (when none fails)
    binding: str | None = None  # the gate that fails first (a capacity search records it)

    @property
    def rule_key(self) -> tuple[float, float]:
        seqs = self.step.number("max_num_seqs")
        return (
            self.step.number("tensor_parallel_size") or 1.0,
            seqs if seqs is not None else math.inf,
        )


@dataclass(frozen=True)
class Choice:
    best: Candidate
    tied: list[Candidate]  # every candidate that cannot be told apart from `best`, best first
    sentences: list[str]  # plain words: the tie, or why the best is better


def candidate(
    step: Step,
    next_step: Step | None,
    next_failed: bool,
    confidence: float,
    label: str | None = None,
) -> Candidate:
    """`step` passes (with every lighter load); `next_step`, the next load up, fails a gate
    (`next_failed`) or is inconclusive."""
    throughput = estimates.output_tokens_per_s(step, confidence, step.repeats)
    above = next_step.load if next_step is not None else None
    return Candidate(
        step.setting_id,
        label or step.setting_label,
        step,
        step.load or 0.0,
        above if next_failed else None,
        throughput,
        None if next_failed else above,
    )


def from_search(cand: Candidate, search: Mapping[str, Any], steps: Sequence[Step]) -> Candidate:
    """The capacity a sweep's search recorded (sweep.json settings[id].search: passes_at,
    fails_at, unsettled_at, binding; written by sweeps.search.SearchResult.as_json), when it
    names a measured level; else `cand` unchanged. An unsettled level is inconclusive, never a
    failure."""
    passes, fails = search.get("passes_at"), search.get("fails_at")
    unsettled = search.get("unsettled_at")
    if not isinstance(passes, int | float) or isinstance(passes, bool):
        return cand
    step = next((s for s in steps if s.load == passes and s.setting_id == cand.setting_id), None)
    if step is None:
        return cand
    binding = search.get("binding")
    return replace(
        cand,
        step=step,
        passes_at=float(passes),
        fails_at=float(fails) if _is_number(fails) else None,
        unsure_at=float(unsettled) if _is_number(unsettled) else None,
        binding=str(binding) if binding else None,
    )


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def beats_on_capacity(a: Candidate, b: Candidate) -> bool:
    """a passes at a load where b fails: beyond doubt a serves more."""
    return b.fails_at is not None and a.passes_at >= b.fails_at


def choose(candidates: Sequence[Candidate], unit: str = "load") -> Choice | None:
    if not candidates:
        return None
    cands = list(candidates)
    top = [c for c in cands if not any(beats_on_capacity(o, c) for o in cands)]
    fastest = [c for c in top if not any(separated(o.throughput, c.throughput) > 0 for o in top)]
    tied = sorted(fastest, key=lambda c: c.rule_key)
    best = tied[0]
    sentences = []
    if len(tied) > 1:
        names = ", ".join(c.label for c in tied)
        sentences.append(
            f"{names} cannot be told apart at this precision: their capacities "
            f"({'; '.join(capacity_text(c, unit) for c in tied)}) overlap and their output "
            f"tokens/s intervals ({'; '.join(_tps(c) for c in tied)}) overlap. "
            f"{best.label} is chosen by the stated rule: {TIE_RULE}."
        )
    for other in cands:
        if other in tied:
            continue
        if beats_on_capacity(best, other):
            sentences.append(
                f"{best.label} serves more than {other.label}: it passes at "
                f"{_level(best.passes_at, unit)}, where {other.label} fails."
            )
        else:
            winner = next((c for c in top if separated(c.throughput, other.throughput) > 0), best)
            sentences.append(
                f"{winner.label} delivers more output tokens/s than {other.label} beyond "
                f"the intervals ({_tps(winner)} against {_tps(other)})."
            )
    return Choice(best, tied, sentences)


def capacity_text(c: Candidate, unit: str = "load") -> str:
    passes = f"{c.label} passes at {_level(c.passes_at, unit)}"
    if c.fails_at is not None:
        binds = f"; {c.binding} binds" if c.binding else ""
        unsure = ""
        if c.unsure_at is not None and c.unsure_at < c.fails_at:
            unsure = f", is inconclusive at {_level(c.unsure_at, unit)}"
        return f"{passes}{unsure}, fails at {_level(c.fails_at, unit)}{binds}"
    if c.unsure_at is not None:
        binds = f" ({c.binding} straddles its limit)" if c.binding else ""
        return f"{passes}, is inconclusive at {_level(c.unsure_at, unit)}{binds}"
    return (
        f"{c.label} passes at every level tried, up to {_level(c.passes_at, unit)}; "
        "the limit was not reached"
    )


def search_sentence(c: Candidate, unit: str) -> str:
    """`X serves 4 PicoClaw sessions (passes at 4, fails at 8; ttft_p95_ms binds).`"""
    if c.fails_at is None:
        return f"{capacity_text(c, unit)} (capacity search)."
    binds = f"; {c.binding} binds" if c.binding else ""
    unsure = ""
    if c.unsure_at is not None and c.unsure_at < c.fails_at:
        unsure = f", unsettled at {c.unsure_at:g}"
    return (
        f"{c.label} serves {_level(c.passes_at, unit)} (passes at {c.passes_at:g}{unsure}, "
        f"fails at {c.fails_at:g}{binds}; capacity search)."
    )


def _level(load: float, unit: str) -> str:
    return f"{load:g} {unit}" if unit else f"{load:g}"


def _tps(c: Candidate) -> str:
    return c.throughput.text("{:,.1f}".format, "an interval")
