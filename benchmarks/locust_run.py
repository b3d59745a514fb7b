"""Run this tool's Locust profile (loadtests/chat.py) headless and read its raw records.

The figures come from the records with loadtests' own code (`records.read_records`,
`metrics.summarize`), so a comparison tests what users run.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, BenchmarkError, Workload, group, pinned
from loadtests.records import RequestRecord, read_records
from sweeps.step_figures import summarize

LOCUST_FILE = REPO / "loadtests" / "chat.py"
# All users at once, as `vllm bench serve` starts its first --max-concurrency requests
# (Locust's -r N spreads the users' starts over users/N seconds).
SPAWN_RATE = 1000


def locust_bin() -> str:
    return str(Path(sys.executable).with_name("locust"))


def locust_argv(
    w: Workload,
    *,
    base_url: str,
    model: str,
    run_time_s: float,
    records: Path,
    step_id: str,
    processes: int = 1,
    prompt_pool: int = 32,
    prompt_file: Path | None = None,
    num_prompts: int = 0,
    extra: Sequence[str] = (),
) -> list[str]:
    argv = [
        locust_bin(), "-f", str(LOCUST_FILE), "--headless", "--only-summary",
        "--host", base_url,
        "-u", str(w.concurrency), "-r", str(SPAWN_RATE),
        "-t", f"{max(1, math.ceil(run_time_s))}s",
        "--model", model,
        "--endpoint", w.endpoint,
        "--prompt-tokens", str(w.prompt_tokens),
        "--output-tokens", str(w.output_tokens),
        "--prompt-pool", str(prompt_pool),
        "--records", str(records),
        "--step-id", step_id,
        "--loglevel", "WARNING",
    ]  # fmt: skip
    if prompt_file is not None:
        argv += ["--prompt-file", str(prompt_file)]
    if processes > 1:
        argv += ["--processes", str(processes)]
    if num_prompts:
        argv += ["--num-prompts", str(num_prompts)]
    return argv + list(extra)


@dataclass
class LocustRun:
    argv: list[str]
    records: list[RequestRecord]
    wall_s: float
    exit_code: int | None


def run_locust(
    argv: list[str],
    *,
    records: Path,
    log_path: Path,
    timeout_s: float,
    cpu: int | None = None,
    during: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> LocustRun:
    """Run Locust to its end (bounded by timeout_s); `during(proc)` runs while it does."""
    records.unlink(missing_ok=True)
    started = time.monotonic()
    with group(pinned(argv, cpu), log_path=log_path) as proc:
        if during is not None:
            during(proc)
        try:
            proc.wait(timeout=max(1.0, timeout_s - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"Locust ran past {timeout_s:.0f} s (see {log_path})") from None
    wall = time.monotonic() - started
    return LocustRun(argv, read_records(records), wall, proc.returncode)


FIGURE_KEYS = {
    "output_throughput": "output_throughput",
    "request_throughput": "request_throughput",
    "mean_ttft_ms": "ttft_ms_mean",
    "p99_ttft_ms": "ttft_ms_p99",
    "mean_tpot_ms": "tpot_ms_mean",
    "mean_itl_ms": "itl_ms_mean",
    "p99_itl_ms": "itl_ms_p99",
    "mean_e2el_ms": "e2el_ms_mean",
    "duration_s": "duration_s",
    "completed": "completed",
    "failed": "failed",
}


def figures(records: list[RequestRecord]) -> dict[str, float]:
    """The compared figures, computed by sweeps.step_figures from the raw records."""
    row: dict[str, Any] = summarize(records)
    out = {ours: float(row[theirs] or 0.0) for ours, theirs in FIGURE_KEYS.items()}
    ok = [r for r in records if r.ok and not r.warmup]
    prompts = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    if prompts:
        out["mean_prompt_tokens"] = sum(prompts) / len(prompts)
    outputs = [r.output_tokens for r in ok if r.output_tokens is not None]
    if outputs:
        out["mean_output_tokens"] = sum(outputs) / len(outputs)
    out["burst_fraction"] = burst_fraction([(r.ttft_ms or 0.0, r.e2el_ms or 0.0) for r in ok])
    return out


def burst_fraction(ttft_e2el_ms: list[tuple[float, float]]) -> float:
    """Share of requests whose first event came in the last half of their time: the server
    held the answer back and sent most of it at once (seen on a CPU-starved vLLM)."""
    if not ttft_e2el_ms:
        return 0.0
    return sum(t >= 0.5 * e for t, e in ttft_e2el_ms if e > 0) / len(ttft_e2el_ms)


def samples_ms(records: list[RequestRecord]) -> tuple[list[float], list[float]]:
    """TTFTs (in start order) and pooled ITLs in ms of the successes."""
    ok = sorted((r for r in records if r.ok and not r.warmup), key=lambda r: r.start_unix)
    return [r.ttft_ms for r in ok if r.ttft_ms is not None], [g for r in ok for g in r.itl_ms]


def first_errors(records: list[RequestRecord], n: int = 3) -> list[str]:
    return [str(r.error) for r in records if not r.ok][:n]
