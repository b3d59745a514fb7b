"""Agreement with `vllm bench serve`: the same closed-loop workload, both clients, alternating.

One real CPU vLLM server (the embedded tiny model). At each concurrency level both clients
send chat completions with the same prompt length (tokens, chat template included), the same
output length (`ignore_eos`), `temperature` 0 and distinct prompts. Both send exactly the
same number of requests: vLLM's client `--num-prompts N`, Locust the load profile's own
`--num-prompts N` (the whole run stops after N requests and drains, as vLLM's does; its `-t`
is only a safety limit). Repeats alternate the order (vLLM first, then Locust first, ...) so
that drift in the server hits both.

The figures of this tool come from its raw records via sweeps.step_figures; vLLM's from its
result JSON. Each repeat gives one ratio (this tool / vLLM) per figure; the report shows the
mean ratio and the range over repeats, and each tool's own spread (relative std).
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import BenchmarkError, CpuSampler, Workload
from benchmarks.locust_run import figures as locust_figures
from benchmarks.locust_run import first_errors, locust_argv, run_locust
from benchmarks.locust_run import samples_ms as locust_samples
from benchmarks.tail_events import tail_events
from benchmarks.vllm_bench import VllmBench, bench_argv, command_line, read_result
from benchmarks.vllm_bench import figures as vllm_figures
from benchmarks.vllm_bench import samples_ms as vllm_samples
from picoclaw_vllm.intervals import mean_interval
from picoclaw_vllm.server.launcher import ServerHandle
from sweeps.step_figures import mean, pstdev

COMPARED = (
    "output_throughput",
    "request_throughput",
    "mean_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "mean_itl_ms",
    "p99_itl_ms",
)
THROUGHPUTS = ("output_throughput", "request_throughput")
THROUGHPUT_TOLERANCE = 0.03
LATENCY_TOLERANCE = 0.05
LATENCY_TOLERANCE_MS = 2.0


@dataclass(frozen=True)
class AgreementPlan:
    levels: tuple[int, ...] = (1, 8, 32)
    requests: tuple[int, ...] = (32, 128, 256)
    prompt_tokens: int = 128
    output_tokens: int = 128
    repeats: int = 4
    warmup_requests: int = 32

    def workloads(self) -> list[Workload]:
        return [
            Workload(c, n, self.prompt_tokens, self.output_tokens)
            for c, n in zip(self.levels, self.requests, strict=True)
        ]


QUICK_AGREEMENT = AgreementPlan(
    levels=(1, 4),
    requests=(8, 24),
    prompt_tokens=64,
    output_tokens=32,
    repeats=2,
    warmup_requests=8,
)


def chat_template_overhead(base_url: str, model: str) -> int:
    """Tokens the chat template adds around a user message (vLLM's /tokenize)."""
    r = httpx.post(
        f"{base_url}/tokenize",
        json={
            "model": model,
            "messages": [{"role": "user", "content": ""}],
            "add_generation_prompt": True,
        },
        timeout=30.0,
    )
    r.raise_for_status()
    return int(r.json()["count"])


def within(metric: str, ours: float, theirs: float) -> bool:
    if metric in THROUGHPUTS:
        return abs(ours / theirs - 1.0) <= THROUGHPUT_TOLERANCE if theirs else False
    return abs(ours - theirs) <= LATENCY_TOLERANCE_MS or (
        bool(theirs) and abs(ours / theirs - 1.0) <= LATENCY_TOLERANCE
    )


@dataclass
class Level:
    workload: Workload
    vllm: list[dict[str, float]] = field(default_factory=list)
    ours: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"concurrency": self.workload.concurrency, "figures": {}}
        pairs = list(zip(self.ours, self.vllm, strict=False))
        for metric in COMPARED:
            ratios = [o[metric] / v[metric] for o, v in pairs if v.get(metric)]
            ours = [o[metric] for o in self.ours]
            theirs = [v[metric] for v in self.vllm]
            if not ratios:
                continue
            m_ours, m_theirs = mean(ours), mean(theirs)
            # the ratio's interval: Student's t over the repeats' log ratios (a ratio's
            # spread is multiplicative), given back as the geometric mean and its bounds
            logs = mean_interval([math.log(r) for r in ratios if r > 0])
            out["figures"][metric] = {
                "ours_mean": m_ours,
                "vllm_mean": m_theirs,
                "ratio_mean": mean(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "ratio_geomean": math.exp(logs.value) if logs.value is not None else None,
                "ratio_low": math.exp(logs.low) if logs.low is not None else None,
                "ratio_high": math.exp(logs.high) if logs.high is not None else None,
                "ours_rel_std": pstdev(ours) / m_ours if m_ours else None,
                "vllm_rel_std": pstdev(theirs) / m_theirs if m_theirs else None,
                "within_target": within(metric, m_ours, m_theirs),
            }
        for side, runs in (("ours", self.ours), ("vllm", self.vllm)):
            for key in (
                "burst_fraction",
                "client_cores",
                "server_cores",
                "completed",
                "failed",
                "duration_s",
                "mean_prompt_tokens",
                "mean_output_tokens",
                "p99_ttft_events",
            ):
                values = [r[key] for r in runs if key in r]
                if values:
                    out[f"{side}_{key}"] = mean(values)
        out["repeats"] = len(pairs)
        out["notes"] = self.notes
        return out


def run_agreement(
    plan: AgreementPlan,
    server: ServerHandle,
    bench: VllmBench,
    work: Path,
    tokenizer: str,
    log: Callable[[str], None],
    deadline: float,
) -> dict[str, Any]:
    """All levels x repeats; stops repeating (never mid-pair) when `deadline` (monotonic) nears."""
    work.mkdir(parents=True, exist_ok=True)
    model = server.settings.name
    base = server.base_url
    if server.process is None:
        raise BenchmarkError("the agreement needs a server this run started (to read its CPU)")
    server_proc = server.process
    overhead = chat_template_overhead(base, model)
    input_len = plan.prompt_tokens - overhead
    log(f"  chat template adds {overhead} tokens: vllm --random-input-len {input_len}")
    levels = [Level(w) for w in plan.workloads()]
    commands: dict[str, list[str]] = {}

    def vllm_run(w: Workload, tag: str) -> dict[str, float]:
        argv = bench_argv(
            w,
            base_url=base,
            model=model,
            tokenizer=tokenizer,
            result_dir=work,
            result_name=f"{tag}.json",
            input_len=input_len,
        )
        if tag != "warmup":
            commands.setdefault(f"vllm-c{w.concurrency}", argv)
        assert bench.proc is not None
        with CpuSampler(bench.proc) as client, CpuSampler(server_proc) as engine:
            reply = bench.run(argv, timeout_s=900)
        if not reply.ok:
            raise BenchmarkError(f"vllm bench serve failed: {(reply.error or '')[-1500:]}")
        result = read_result(work / f"{tag}.json")
        figs = vllm_figures(result)
        events = tail_events(vllm_samples(result)[0], window=w.concurrency)
        return {**figs, "client_cores": client.cores, "server_cores": engine.cores,
                "p99_ttft_events": float(events)}  # fmt: skip

    setup_s = {"estimate": 3.0}

    def locust_run(w: Workload, tag: str, run_s: float) -> dict[str, float]:
        records = work / f"{tag}.jsonl"
        argv = locust_argv(
            w,
            base_url=base,
            model=model,
            # --num-prompts ends the run; -t only bounds a run that hangs
            run_time_s=4 * run_s + 60 + setup_s["estimate"],
            records=records,
            step_id=tag,
            prompt_pool=min(512, max(32, 2 * w.requests)),
            num_prompts=w.requests,
        )
        commands.setdefault(f"locust-c{w.concurrency}", argv)
        launched = time.time()
        samplers: list[CpuSampler] = []
        with contextlib.ExitStack() as stack:

            def sample(proc: subprocess.Popen[bytes]) -> None:
                samplers.extend(stack.enter_context(CpuSampler(p)) for p in (proc, server_proc))

            run = run_locust(
                argv, records=records, log_path=work / f"{tag}.log", timeout_s=4 * run_s + 240,
                during=sample,
            )  # fmt: skip
        if not run.records:
            raise BenchmarkError(f"Locust wrote no records (see {work / f'{tag}.log'})")
        setup_s["estimate"] = max(0.5, run.records[0].start_unix - launched + 0.5)
        figs = locust_figures(run.records)
        figs["p99_ttft_events"] = float(tail_events(locust_samples(run.records)[0], w.concurrency))
        figs["client_cores"], figs["server_cores"] = (sp.cores for sp in samplers)
        errors = first_errors(run.records)
        if errors:
            figs["first_errors"] = errors  # type: ignore[assignment]
        return figs

    # Warm-up (not counted): compile paths, fill caches, at the highest level.
    top = plan.workloads()[-1]
    vllm_run(
        Workload(top.concurrency, plan.warmup_requests, top.prompt_tokens, top.output_tokens),
        "warmup",
    )
    last_vllm_s: dict[int, float] = {}
    for r in range(plan.repeats):
        if r > 0 and time.monotonic() > deadline:
            log(f"  stopping after {r} repeats: time budget reached")
            break
        for lv in levels:
            w = lv.workload
            tag = f"c{w.concurrency}-r{r}"
            vllm_first = r % 2 == 0 or w.concurrency not in last_vllm_s
            try:
                if vllm_first:
                    v = vllm_run(w, f"{tag}-vllm")
                    last_vllm_s[w.concurrency] = v["duration_s"]
                    o = locust_run(w, f"{tag}-locust", v["duration_s"])
                else:
                    o = locust_run(w, f"{tag}-locust", last_vllm_s[w.concurrency])
                    v = vllm_run(w, f"{tag}-vllm")
                    last_vllm_s[w.concurrency] = v["duration_s"]
            except BenchmarkError as e:  # this pair is lost; the others still count
                lv.notes.append(f"repeat {r}: {e}")
                log(f"  c={w.concurrency} r{r} failed: {e}")
                continue
            lv.vllm.append(v)
            lv.ours.append(o)
            log(
                f"  c={w.concurrency:<3d} r{r} {'V>L' if vllm_first else 'L>V'}  "
                f"out tok/s ours {o['output_throughput']:7.1f} vllm {v['output_throughput']:7.1f}"
                f" | TTFT ms {o['mean_ttft_ms']:7.1f} / {v['mean_ttft_ms']:7.1f}"
                f" | ITL ms {o['mean_itl_ms']:6.2f} / {v['mean_itl_ms']:6.2f}"
                f" | n {o['completed']:.0f}/{v['completed']:.0f}"
                f" | cores client {o['client_cores']:.2f}/{v['client_cores']:.2f}"
                f" server {o['server_cores']:.2f}/{v['server_cores']:.2f}"
            )
    return {
        "plan": {
            **plan.__dict__,
            "vllm_random_input_len": input_len,
            "chat_template_tokens": overhead,
        },
        "server": {"settings": server.settings.label(), "command": server.command_line},
        "commands": {
            k: command_line(v) if k.startswith("vllm") else " ".join(v) for k, v in commands.items()
        },
        "levels": [lv.summary() for lv in levels],
        "runs": [
            {"concurrency": lv.workload.concurrency, "ours": lv.ours, "vllm": lv.vllm}
            for lv in levels
        ],
    }


def ratio_text(f: dict[str, Any]) -> str:
    spread = f"{f['ratio_min']:.3f}-{f['ratio_max']:.3f}"
    return f"{f['ratio_mean']:.3f} ({spread})"


def is_finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))
