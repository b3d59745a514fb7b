"""A load step's figures from its raw records, as `vllm bench serve` computes them.

Only records not flagged `warmup` count. Latencies in ms: TTFT, TPOT and E2EL per successful
request (requests weigh equally; TPOT only where output_tokens > 1), ITL pooled over the event
gaps of all successful requests. Duration runs from the first dispatch to the last completion;
throughputs divide by it. Statistics: mean, population std, percentiles with linear
interpolation between closest ranks (numpy's default). Goodput counts successful requests
meeting every SLO given; a one-token request has TPOT 0 for that purpose, as in vLLM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.records import RequestRecord
from picoclaw_vllm.picoclaw.tool_answers import AnswerKind
from picoclaw_vllm.run_layout import LATENCY_METRICS, STATS

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation at rank p/100 * (n - 1) of the sorted values."""
    if not values:
        raise ValueError("percentile of no values")
    data = sorted(values)
    rank = (len(data) - 1) * p / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (rank - lo)


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def pstdev(values: Sequence[float]) -> float:
    """Population standard deviation (divides by n, like numpy.std)."""
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / len(values))


def describe(values: Sequence[float]) -> dict[str, float | None]:
    """mean, std, p50, p90, p95, p99 (None for each when there are no values)."""
    if not values:
        return {"mean": None, "std": None, **dict.fromkeys(PERCENTILES)}
    return {
        "mean": mean(values),
        "std": pstdev(values),
        **{name: percentile(values, p) for name, p in PERCENTILES.items()},
    }


@dataclass(frozen=True)
class GoodputSlo:
    """Per-request service level objectives in ms (`vllm bench serve --goodput`): a request
    meets them or not, and goodput counts those that do; None means not asked for. The
    acceptance gates a step is judged by (percentiles, error rate, ...) are reports.gates."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2el_ms: float | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.ttft_ms, self.tpot_ms, self.e2el_ms))

    def met_by(self, r: RequestRecord) -> bool:
        checks = (
            (self.ttft_ms, r.ttft_ms),
            (self.tpot_ms, r.tpot_ms or 0.0),
            (self.e2el_ms, r.e2el_ms),
        )
        return r.ok and all(
            limit is None or (value is not None and value <= limit) for limit, value in checks
        )


def _end(r: RequestRecord) -> float:
    if r.end_unix is not None:
        return r.end_unix
    return r.start_unix + (r.e2el_ms or 0.0) / 1000.0


def summarize(
    records: Sequence[RequestRecord], slo: GoodputSlo | None = None
) -> dict[str, float | int | None]:
    """The load and latency columns of a results row (names as in run_layout)."""
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.ok]
    row: dict[str, float | int | None] = {"completed": len(ok), "failed": len(measured) - len(ok)}
    duration = (
        max(_end(r) for r in measured) - min(r.start_unix for r in measured) if measured else 0.0
    )
    row["duration_s"] = duration if measured else None
    per_s = (lambda n: n / duration) if duration > 0 else (lambda n: None)
    output = sum(r.output_tokens or 0 for r in ok)
    prompt = sum(r.prompt_tokens or 0 for r in ok)
    row["request_throughput"] = per_s(len(ok))
    row["output_throughput"] = per_s(output)
    row["total_token_throughput"] = per_s(output + prompt)
    row["goodput"] = per_s(sum(slo.met_by(r) for r in ok)) if slo and slo.given else None
    samples: dict[str, list[float]] = {
        "ttft": [r.ttft_ms for r in ok if r.ttft_ms is not None],
        "itl": [gap for r in ok for gap in r.itl_ms],
        "tpot": [r.tpot_ms for r in ok if r.tpot_ms is not None and (r.output_tokens or 0) > 1],
        "e2el": [r.e2el_ms for r in ok if r.e2el_ms is not None],
    }
    for metric in LATENCY_METRICS:
        stats = describe(samples[metric])
        for stat in (*STATS, "std"):
            row[f"{metric}_ms_{stat}"] = stats[stat]
    if any(r.session_id is not None for r in measured):
        row |= agent_figures(measured)
    return row


def answer_score_rates(ok: Sequence[RequestRecord]) -> dict[str, float | int | None]:
    """Per step, the share (percent of the scored answers) of each kind of answer
    (picoclaw.tool_answers.AnswerKind), and invalid_tool_calls_pct: markup left in content
    plus arguments PicoClaw cannot run (what the invalid_tool_calls_pct gate reads)."""
    scored = [r.answer_score for r in ok if r.answer_score is not None]
    out: dict[str, float | int | None] = {"scored_answers": len(scored)}
    for kind in AnswerKind:
        n = sum(1 for s in scored if s == kind)
        out[f"answers_{kind}_pct"] = 100.0 * n / len(scored) if scored else None
    bad = sum(1 for s in scored if s in (AnswerKind.MARKUP, AnswerKind.INVALID_ARGUMENTS))
    out["invalid_tool_calls_pct"] = 100.0 * bad / len(scored) if scored else None
    return out


def agent_figures(measured: Sequence[RequestRecord]) -> dict[str, float | int | None]:
    """Per-turn figures of the agent workload: a turn ends on the call that carries its
    latency (a failed call ends its turn too)."""
    ends = [r for r in measured if r.turn_timed_out is not None]
    latencies = [r.turn_latency_ms for r in ends if r.turn_latency_ms is not None]
    ok = [r for r in measured if r.ok]
    prompts = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    stats = describe(latencies)
    return {
        "turns": len(latencies),
        "turns_failed": sum(1 for r in ends if not r.ok),
        "turns_timed_out": sum(1 for r in ends if r.turn_timed_out),
        "turn_latency_ms_p50": stats["p50"],
        "turn_latency_ms_p95": stats["p95"],
        "turn_latency_ms_max": max(latencies) if latencies else None,
        "tool_call_answers": sum(1 for r in ok if r.answer_kind == "tool_call"),
        "text_answers": sum(1 for r in ok if r.answer_kind == "text"),
        **answer_score_rates(ok),
        "prompt_tokens_mean": mean(prompts) if prompts else None,
        "prompt_tokens_max": max(prompts) if prompts else None,
    }
