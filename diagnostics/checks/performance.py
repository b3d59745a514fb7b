"""Slow responses: time to first token and between tokens, and what /metrics says is why."""

from __future__ import annotations

import statistics
from dataclasses import replace

from diagnostics.checks.base import Check
from diagnostics.facts import Facts, LatencySample
from diagnostics.findings import Finding, Outcome, Severity
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.vllm_api.metrics import QUEUE_TIME, Metrics

KV_NEAR_FULL = 0.9
RTT_SLOW_S = 0.05
GPU_BUSY_PERCENT = 95.0
QUEUE_FLOOR_S = 0.010
QUEUE_SHARE = 0.25  # of the median TTFT: queueing that is a real part of the first token


def _max(samples: list[Metrics], attr: str) -> float | None:
    values = [v for m in samples if (v := getattr(m, attr)) is not None]
    return max(values) if values else None


def _causes(facts: Facts, sample: LatencySample, ttft: float | None) -> list[tuple[str, str]]:
    """(cause, remedy) pairs, most likely first."""
    causes: list[tuple[str, str]] = []
    waiting, running = (
        _max(sample.metrics_samples, "waiting"),
        _max(sample.metrics_samples, "running"),
    )
    # A busy API server answers /metrics mostly between requests, so the waiting gauge can
    # read 0 under queueing; the queue-time histogram cannot miss it.
    queue_s = (
        sample.metrics_samples[-1].histogram_mean_since(sample.metrics_samples[0], QUEUE_TIME)
        if len(sample.metrics_samples) > 1
        else None
    )
    queued = queue_s is not None and queue_s >= max(QUEUE_FLOOR_S, QUEUE_SHARE * (ttft or 0))
    if waiting or queued:
        seen = []
        if waiting:
            seen.append(f"up to {waiting:.0f} requests waiting while {running or 0:.0f} run")
        if queue_s is not None:
            seen.append(
                f"requests finished during the probe waited {queue_s * 1000:.0f} ms on average "
                "in vLLM's queue"
            )
        causes.append(
            (
                f"queueing: {'; '.join(seen)} (load above --max-num-seqs"
                + (f", which is about {running:.0f} here)" if running else ")"),
                "raise --max-num-seqs (if KV cache allows), add replicas, or lower the load",
            )
        )
    kv = _max(sample.metrics_samples, "kv_usage")
    first, last = sample.metrics_samples[:1], sample.metrics_samples[-1:]
    pre = [m.preemptions for m in first + last]
    preempted = (pre[-1] or 0) - (pre[0] or 0) if len(pre) == 2 else 0
    if (kv is not None and kv >= KV_NEAR_FULL) or preempted > 0:
        causes.append(
            (
                f"KV cache pressure: usage up to {(kv or 0) * 100:.0f}%, "
                f"{preempted:.0f} preemptions during the probe",
                "raise --gpu-memory-utilization, lower --max-model-len, or add "
                "--tensor-parallel-size",
            )
        )
    if sample.rtt_s is not None and sample.rtt_s > RTT_SLOW_S:
        causes.append(
            (
                f"network: round trip to the server {sample.rtt_s * 1000:.0f} ms",
                "run PicoClaw closer to the server or fix the network path (ping, mtr)",
            )
        )
    gpus = facts.maybe(facts.gpus)
    listed = gpus.gpus if gpus else ()
    busy = [g for g in listed if (g.utilization_percent or 0) >= GPU_BUSY_PERCENT]
    if busy:
        names = ", ".join(f"GPU {g.index} {g.utilization_percent:.0f}%" for g in busy)
        causes.append((f"GPU saturated ({names})", "add GPUs (--tensor-parallel-size) or replicas"))
    if not causes and ttft is not None:
        causes.append(
            (
                "prefill: slow first token without queueing (long prompts)",
                "raise --max-num-batched-tokens, enable prefix caching, shorten prompts",
            )
        )
    elif not causes:
        causes.append(
            ("decode: slow tokens without queueing (big batches, --enforce-eager, TP traffic)",
             "drop --enforce-eager, lower --max-num-seqs, or use faster interconnect/GPUs")
        )  # fmt: skip
    return causes


def check_latency(facts: Facts) -> Outcome:
    options = facts.options
    sample = facts.latency()
    judged_from = f"{len(sample.streams)} probe requests of {options.probe_max_tokens} tokens"
    if not sample.streams:
        # no time left for the speed probes: PicoClaw's own streamed request is the evidence
        earlier = facts.chat_stream()
        if earlier.ttft_s is None and earlier.answer.failure is None:
            return Outcome.skip(
                f"the diagnosis's {facts.deadline.budget_s:g} s deadline left no time for the "
                "speed probes (--deadline)"
            )
        before = facts.metrics_before()
        samples = sample.metrics_samples or ([before] if before is not None else [])
        sample = replace(sample, streams=[earlier], metrics_samples=samples)
        judged_from = (
            "no time was left for the speed probes (--deadline); PicoClaw's streamed request"
        )
    ttfts = [s.ttft_s for s in sample.streams if s.ttft_s is not None]
    itls = [gap for s in sample.streams for gap in s.itl_s]
    failed = [s for s in sample.streams if s.ttft_s is None]
    ttft = statistics.median(ttfts) if ttfts else None
    itl = statistics.median(itls) if itls else None
    notes = [
        f"{judged_from}: median TTFT {_ms(ttft)}, median ITL {_ms(itl)}, RTT {_ms(sample.rtt_s)}",
        f"thresholds: TTFT {_ms(options.ttft_threshold_s)}, ITL {_ms(options.itl_threshold_s)}",
    ]
    for m in sample.metrics_samples[-1:]:
        notes.append(f"metrics: running {m.running}, waiting {m.waiting}, kv {m.kv_usage}")
    slow_ttft = ttft is None or ttft > options.ttft_threshold_s
    slow_itl = itl is not None and itl > options.itl_threshold_s
    if not (slow_ttft or slow_itl or failed):
        return Outcome.ok(*notes)
    causes = _causes(facts, sample, ttft if slow_ttft else None)
    timeout = facts.target().request_timeout_s
    budget = f"PicoClaw gives up after {timeout:g} s (request_timeout)"
    what = []
    if ttft is None or failed:
        what.append(f"{len(failed)} of {len(sample.streams)} probes got no token in time")
    cut = [
        s for s in failed if s.answer.failure is not None and s.answer.failure.kind == "deadline"
    ]
    if cut:
        what.append(
            f"{len(cut)} still waiting for a first token at the deadline, after up to "
            f"{max(s.answer.elapsed_s for s in cut):.1f} s"
        )
    if ttft is not None and slow_ttft:
        what.append(f"TTFT {_ms(ttft)} > {_ms(options.ttft_threshold_s)}")
    if slow_itl:
        what.append(f"ITL {_ms(itl)} > {_ms(options.itl_threshold_s)}")
    return Outcome.of(
        Finding(
            FindingId.SLOW_RESPONSES,
            # no token at all within the timeout: PicoClaw's request would time out too
            Severity.FAIL if ttft is None or failed else Severity.WARN,
            f"slow responses ({'; '.join(what)}); cause: {causes[0][0]}",
            evidence="; ".join([notes[0], *(c for c, _ in causes), budget]),
            remedy="; ".join(dict.fromkeys(r for _, r in causes)),
        ),
        notes=notes,
    )


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


CHECKS = (
    Check("latency", "Response speed", "Performance", check_latency, ("completion",),
          (FindingId.SLOW_RESPONSES,)),
)  # fmt: skip
