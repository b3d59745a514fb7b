"""The load generator's ceiling and timing accuracy, against the stub server on loopback.

Throughput: the stub answers instantly, so a client's request/s and streamed events/s are its
own limits. They are read in a steady-state window from the stub's counters (not from the
client's report), and the client's CPU (psutil user+system of its whole process group) over
the same window gives CPU microseconds per streamed event. With `pin` the stub runs on CPU 0
and a one-process client on CPU 1, so each has one core; the two-worker Locust run cannot get
a core per process on a 2-core machine and runs unpinned (master, 2 workers and the stub share
both cores).

Timing accuracy: the stub writes the first event `ttft_ms` after reading the request and
then one event every `itl_ms`; the truth is that schedule plus the stub's own measured
lateness (from /stub/stats). The error is the client's figure minus the truth. This uses
/v1/completions so that every event gap is a token gap (a chat stream's role event arrives with
the first token, a 0 ms gap by design in both clients).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.common import CpuMeter, Stub, Workload, set_affinity, stub_server
from benchmarks.locust_run import locust_argv, run_locust
from benchmarks.locust_run import samples_ms as locust_samples
from benchmarks.vllm_bench import VllmBench, bench_argv, read_result
from benchmarks.vllm_bench import samples_ms as vllm_samples
from picoclaw_vllm.paths import tiny_model_dir
from sweeps.step_figures import mean, percentile

ALL_CPUS = set(os.sched_getaffinity(0))
# A one-process client gets CPU 1 to itself and the stub CPU 0: vLLM's CPU worker binds its
# threads to CPU 0 (a vLLM server left running competes there), and the stub needs little.
CLIENT_CPU = 1
STUB_CPU = 0
CLIENTS = ("locust-1", "locust-2w", "vllm-bench")
CLIENT_LABELS = {
    "locust-1": "this tool, 1 Locust process",
    "locust-2w": "this tool, 2 Locust workers (--processes 2)",
    "vllm-bench": "vllm bench serve",
}


@dataclass(frozen=True)
class CeilingPlan:
    warm_s: float = 2.0
    window_s: float = 6.0
    short_tokens: int = 4  # answers of a few events: the request/s ceiling
    long_tokens: int = 256  # long answers: the events/s ceiling
    concurrency: int = 32
    ttft_ms: float = 20.0
    itl_ms: float = 10.0
    accuracy_tokens: int = 64
    accuracy_levels: tuple[int, ...] = (4, 8, 16)
    accuracy_s: float = 8.0
    accuracy_repeats: int = 3  # the tail errors move by ~0.5 ms from run to run

    @property
    def accuracy_request_s(self) -> float:
        """How long one accuracy request takes on the stub's schedule."""
        return (self.ttft_ms + self.itl_ms * (self.accuracy_tokens - 1)) / 1000.0


QUICK_CEILING = CeilingPlan(
    warm_s=1.0,
    window_s=2.0,
    long_tokens=64,
    accuracy_levels=(8,),
    accuracy_s=3.0,
    accuracy_repeats=1,
)


def write_prompt_file(path: Path, n: int = 64) -> Path:
    """Short distinct prompts, so Locust needs no /tokenize (the stub has none)."""
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"prompt": f"benchmark prompt number {i} " + "word " * 12}) + "\n")
    return path


SAMPLE_S = 0.5


@dataclass
class Window:
    seconds: float
    requests: int
    events: int
    client_cpu_s: float
    stub_cpu_s: float
    interval_events_per_s: list[float]
    interval_requests_per_s: list[float]

    def as_dict(self) -> dict[str, float | None]:
        s = self.seconds or float("nan")
        events = sorted(self.interval_events_per_s) or [0.0]
        requests = sorted(self.interval_requests_per_s) or [0.0]
        median_events = events[len(events) // 2]
        return {
            "window_s": self.seconds,
            "requests_per_s": self.requests / s,
            "events_per_s": self.events / s,
            # per-0.5 s medians: robust to the machine stalling the client now and then
            "requests_per_s_median": requests[len(requests) // 2],
            "events_per_s_median": median_events,
            "stalled_intervals": sum(e < 0.1 * median_events for e in events),
            "client_cpu_us_per_event": (
                self.client_cpu_s / self.events * 1e6 if self.events else None
            ),
            "client_cpu_us_per_request": (
                self.client_cpu_s / self.requests * 1e6 if self.requests else None
            ),
            # what one fully busy core would sustain at this CPU cost (robust to the share
            # of the core the client happened to get on a busy machine)
            "requests_per_core_s": (
                self.requests / self.client_cpu_s if self.client_cpu_s > 0 else None
            ),
            "events_per_core_s": self.events / self.client_cpu_s if self.client_cpu_s > 0 else None,
            "client_cores": self.client_cpu_s / s,
            "stub_cores": self.stub_cpu_s / s,
        }


def measure_window(
    stub: Stub, client: subprocess.Popen[bytes], warm_s: float, window_s: float, wait_s: float
) -> Window | None:
    """Wait for traffic, let it settle for warm_s, then count over window_s (sampled)."""
    client_cpu = CpuMeter(client)
    stub_cpu = CpuMeter(stub.proc)
    start = stub.stats()["requests"]
    deadline = time.monotonic() + wait_s
    while stub.stats()["requests"] == start:
        if client.poll() is not None or time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    time.sleep(warm_s)
    a, ca, sa = stub.stats(), client_cpu.seconds(), stub_cpu.seconds()
    t0 = time.monotonic()
    prev, prev_t = a, t0
    ev_rates: list[float] = []
    req_rates: list[float] = []
    while (now := time.monotonic()) < t0 + window_s:
        time.sleep(min(SAMPLE_S, t0 + window_s - now))
        cur, cur_t = stub.stats(), time.monotonic()
        dt = cur_t - prev_t
        if dt > 0.2:
            ev_rates.append((cur["token_events"] - prev["token_events"]) / dt)
            req_rates.append((cur["completed"] - prev["completed"]) / dt)
        prev, prev_t = cur, cur_t
    b, cb, sb = prev, client_cpu.seconds(), stub_cpu.seconds()
    return Window(
        seconds=prev_t - t0,
        requests=b["completed"] - a["completed"],
        events=b["token_events"] - a["token_events"],
        client_cpu_s=cb - ca,
        stub_cpu_s=sb - sa,
        interval_events_per_s=ev_rates,
        interval_requests_per_s=req_rates,
    )


def _locust(
    client: str,
    w: Workload,
    stub: Stub,
    work: Path,
    run_s: float,
    tag: str,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None,
    cpu: int | None,
) -> list[Any]:
    records = work / f"{tag}-{client}.jsonl"
    argv = locust_argv(
        w,
        base_url=stub.base_url,
        model="stub",
        run_time_s=run_s,
        records=records,
        step_id=tag,
        processes=2 if client == "locust-2w" else 1,
        prompt_file=write_prompt_file(work / "prompts.jsonl"),
    )
    run = run_locust(
        argv,
        records=records,
        log_path=work / f"{tag}-{client}.log",
        timeout_s=run_s + 60,
        cpu=cpu if client == "locust-1" else None,
        during=on_start,
    )
    return list(run.records)


def _vllm(
    bench: VllmBench,
    w: Workload,
    stub: Stub,
    work: Path,
    tag: str,
    during: Callable[[], None] | None,
) -> dict[str, Any] | None:
    name = f"{tag}-vllm.json"
    argv = bench_argv(
        w,
        base_url=stub.base_url,
        model="stub",
        tokenizer=str(tiny_model_dir()),
        result_dir=work,
        result_name=name,
    )
    reply = bench.run(argv, timeout_s=600, during=during)
    if not reply.ok:
        return {"error": reply.error}
    return read_result(work / name)


def throughput(
    plan: CeilingPlan, work: Path, bench: VllmBench, pin: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    """Request/s (short answers) and events/s (long answers) per client, with CPU per event."""
    out: dict[str, Any] = {}
    run_s = plan.warm_s + plan.window_s + 3.0
    for shape, tokens in (("short", plan.short_tokens), ("long", plan.long_tokens)):
        w = Workload(plan.concurrency, 0, 16, tokens)
        for client in CLIENTS:
            tag = f"ceiling-{shape}"
            windows: list[Window | None] = []
            with stub_server(work, cpu=STUB_CPU if pin else None) as stub:

                def watch(
                    proc: subprocess.Popen[bytes],
                    stub: Stub = stub,
                    windows: list[Window | None] = windows,
                ) -> None:
                    windows.append(
                        measure_window(stub, proc, plan.warm_s, plan.window_s, wait_s=120)
                    )

                if client == "vllm-bench":
                    # size the run from a short calibration run, to last past the window
                    calib = _vllm(
                        bench,
                        w.__class__(w.concurrency, 200, 16, tokens),
                        stub,
                        work,
                        f"{tag}-calib",
                        None,
                    )
                    rate = 200 / max(1e-3, float((calib or {}).get("duration") or 1.0))
                    n = max(400, math.ceil(rate * (run_s + 1.0)))
                    big = Workload(w.concurrency, n, 16, tokens)
                    assert bench.proc is not None
                    proc = bench.proc
                    if pin:
                        set_affinity(proc, {CLIENT_CPU})
                    try:
                        result = _vllm(bench, big, stub, work, tag, partial(watch, proc))
                    finally:
                        set_affinity(proc, ALL_CPUS)
                    error = (result or {}).get("error")
                else:
                    _locust(client, w, stub, work, run_s, tag, watch, CLIENT_CPU if pin else None)
                    error = None
            win = windows[0] if windows else None
            figures = win.as_dict() if win else {"error": error or "no traffic seen"}
            out.setdefault(shape, {})[client] = {"answer_tokens": tokens, **figures}
            log(f"  ceiling {shape:5s} {client:10s} {_fmt_window(figures)}")
    return out


def _fmt_window(f: dict[str, Any]) -> str:
    if "error" in f:
        return f"error: {str(f['error'])[-200:]}"
    return (
        f"{f['requests_per_s']:8.0f} req/s {f['events_per_s']:9.0f} ev/s "
        f"{f['client_cpu_us_per_event'] or 0:6.1f} us/ev client {f['client_cores']:.2f} cores "
        f"stub {f['stub_cores']:.2f} cores"
    )


def _errors(
    ttfts: list[float], itls: list[float], stats: dict[str, Any], plan: CeilingPlan, c: int
) -> dict[str, Any]:
    """Errors against the truth; ttfts in start order, so the first c are each user's first
    request (which also opens its connection: reported apart as the first wave)."""
    t_late = stats["ttft_lateness_ms"]
    i_late = stats["itl_lateness_ms"]
    true_ttft = plan.ttft_ms + (t_late["mean"] or 0.0)
    true_itl = plan.itl_ms + (i_late["mean"] or 0.0)
    true_itl_p99 = plan.itl_ms + (i_late["p99"] or 0.0)
    if not ttfts or not itls:
        return {"error": "no samples"}
    return {
        "requests": len(ttfts),
        "itl_samples": len(itls),
        "true_ttft_mean_ms": true_ttft,
        "true_itl_mean_ms": true_itl,
        "stub_itl_lateness_p99_ms": i_late["p99"],
        "ttft_mean_error_ms": mean(ttfts) - true_ttft,
        "ttft_first_wave_mean_error_ms": mean(ttfts[:c]) - true_ttft,
        "ttft_after_first_wave_mean_error_ms": (
            mean(ttfts[c:]) - true_ttft if len(ttfts) > c else None
        ),
        "ttft_p99_error_ms": percentile(ttfts, 99) - (plan.ttft_ms + (t_late["p99"] or 0.0)),
        "itl_mean_error_ms": mean(itls) - true_itl,
        "itl_p50_error_ms": percentile(itls, 50) - (plan.itl_ms + (i_late["p50"] or 0.0)),
        "itl_p99_error_ms": percentile(itls, 99) - true_itl_p99,
    }


def _accuracy_once(
    client: str, c: int, plan: CeilingPlan, work: Path, bench: VllmBench, pin: bool
) -> dict[str, Any]:
    tag = f"accuracy-c{c}"
    with stub_server(
        work, ttft_ms=plan.ttft_ms, itl_ms=plan.itl_ms, cpu=STUB_CPU if pin else None
    ) as stub:
        if client == "vllm-bench":
            assert bench.proc is not None
            if pin:
                set_affinity(bench.proc, {CLIENT_CPU})
            n = max(c, round(plan.accuracy_s / plan.accuracy_request_s) * c)
            w = Workload(c, n, 16, plan.accuracy_tokens, "completions")
            try:
                result = _vllm(bench, w, stub, work, tag, None)
            finally:
                set_affinity(bench.proc, ALL_CPUS)
            if result is None or "error" in result:
                return {"error": str(result)[-300:]}
            ttfts, itls = vllm_samples(result)
        else:
            w = Workload(c, 0, 16, plan.accuracy_tokens, endpoint="completions")
            cpu = CLIENT_CPU if pin else None
            records = _locust(client, w, stub, work, plan.accuracy_s, tag, None, cpu)
            ttfts, itls = locust_samples(records)
        return _errors(ttfts, itls, stub.stats(), plan, c)


SUMMED = ("requests", "itl_samples")
RANGED = ("ttft_mean_error_ms", "itl_mean_error_ms", "itl_p99_error_ms")


def combine_repeats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each figure over the repeats that worked, sums of the counts, and the range
    (min, max) of the errors users look at."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1]["error"] if runs else "no run"}
    out: dict[str, Any] = {"repeats": len(ok), "failed_repeats": len(runs) - len(ok)}
    for key, value in ok[0].items():
        values = [r[key] for r in ok if isinstance(r.get(key), int | float)]
        if key in SUMMED:
            out[key] = sum(values)
        elif isinstance(value, int | float) and values:
            out[key] = mean(values)
            if key in RANGED:
                out[f"{key}_range"] = [min(values), max(values)]
    return out


def accuracy(
    plan: CeilingPlan, work: Path, bench: VllmBench, pin: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    """TTFT/ITL measured by each one-process client against the stub's known schedule,
    `accuracy_repeats` times per level with the clients' order alternating."""
    out: dict[str, Any] = {}
    clients = ("locust-1", "vllm-bench")
    for c in plan.accuracy_levels:
        runs: dict[str, list[dict[str, Any]]] = {client: [] for client in clients}
        for rep in range(plan.accuracy_repeats):
            for client in clients if rep % 2 == 0 else clients[::-1]:
                runs[client].append(_accuracy_once(client, c, plan, work, bench, pin))
        events_per_s = c * plan.accuracy_tokens / plan.accuracy_request_s
        for client in clients:
            figures = {"events_per_s_nominal": events_per_s, **combine_repeats(runs[client])}
            out.setdefault(f"c{c}", {})[client] = figures
            if "error" in figures:
                log(f"  accuracy c={c} {client}: {figures['error']}")
            else:
                lo, hi = figures["itl_p99_error_ms_range"]
                log(
                    f"  accuracy c={c:<3d} {client:10s} TTFT mean err "
                    f"{figures['ttft_mean_error_ms']:+.3f} ms, ITL mean err "
                    f"{figures['itl_mean_error_ms']:+.3f} ms, p99 err "
                    f"{figures['itl_p99_error_ms']:+.3f} ms ({lo:+.2f} to {hi:+.2f}, "
                    f"{figures['repeats']} runs)"
                )
    return out


def run_ceiling(
    plan: CeilingPlan, work: Path, bench: VllmBench, log: Callable[[str], None], pin: bool = True
) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    return {
        "plan": plan.__dict__,
        "pinned": pin,
        "throughput": throughput(plan, work, bench, pin, log),
        "accuracy": accuracy(plan, work, bench, pin, log),
    }
