"""Drive `vllm bench serve` (vLLM's own client) from the project: argv, worker, results.

The benchmark itself runs in vLLM's environment (benchmarks/vllm_bench_worker.py), one long
process that takes one argv per run; this module starts it, sends runs, and turns vLLM's
result JSON into the figures the comparison uses.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from benchmarks.common import REPO, BenchmarkError, Workload
from benchmarks.locust_run import burst_fraction
from picoclaw_vllm.paths import cpu_python
from picoclaw_vllm.procs import stop_group

MARK = "@@vllm-bench-worker@@ "  # as in vllm_bench_worker.py (which must not import us)
MAIN_RUN_LINE = "Starting main benchmark run..."
WORKER = REPO / "benchmarks" / "vllm_bench_worker.py"


def bench_argv(
    w: Workload,
    *,
    base_url: str,
    model: str,
    tokenizer: str,
    result_dir: Path,
    result_name: str,
    input_len: int | None = None,
) -> list[str]:
    """The arguments of `vllm bench serve` for this workload (closed loop, all at once)."""
    chat = w.endpoint == "chat"
    return [
        "--backend", "openai-chat" if chat else "openai",
        "--base-url", base_url,
        "--endpoint", "/v1/chat/completions" if chat else "/v1/completions",
        "--model", model,
        "--tokenizer", tokenizer,
        "--dataset-name", "random",
        "--random-input-len", str(input_len if input_len is not None else w.prompt_tokens),
        "--random-output-len", str(w.output_tokens),
        "--ignore-eos",
        "--temperature", "0",
        "--num-prompts", str(w.requests),
        "--max-concurrency", str(w.concurrency),
        "--request-rate", "inf",
        "--percentile-metrics", "ttft,tpot,itl,e2el",
        "--metric-percentiles", "50,90,95,99",
        "--disable-tqdm",
        "--save-result",
        "--save-detailed",
        "--result-dir", str(result_dir),
        "--result-filename", result_name,
    ]  # fmt: skip


def command_line(argv: list[str]) -> str:
    """How a user runs the same thing by hand (where the `vllm` script works)."""
    return "vllm bench serve " + " ".join(argv)


@dataclass
class RunReply:
    ok: bool
    wall_s: float
    error: str | None
    main_started: float | None  # time.monotonic() when vLLM printed MAIN_RUN_LINE


class VllmBench:
    """One `vllm bench serve` worker process (start with `with VllmBench(log) as b:`)."""

    def __init__(self, log_path: Path, python: Path | None = None, cpu: int | None = None) -> None:
        self.log_path = log_path
        self.python = python or cpu_python()
        self.cpu = cpu
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = "unknown"
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._main_started: float | None = None
        self._reader: threading.Thread | None = None
        self._ready = False

    def __enter__(self) -> VllmBench:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout_s: float = 300.0) -> None:
        self.launch()
        self.wait_ready(timeout_s)

    def launch(self) -> None:
        """Start the worker process (its imports take a while: see wait_ready)."""
        if self.proc is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.python), "-u", str(WORKER)]
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu), *cmd]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        log = self.log_path.open("ab")
        assert self.proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stdout, log), daemon=True
        )
        self._reader.start()

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        if self._ready:
            return
        self.launch()
        ready = self._reply(timeout_s)
        if not ready.get("ready"):
            raise BenchmarkError(f"vllm bench worker did not start (see {self.log_path})")
        self.version = str(ready.get("vllm", "unknown"))
        self._ready = True

    def _read(self, stream: IO[bytes], log: IO[bytes]) -> None:
        try:
            for raw in stream:
                line = raw.decode("utf-8", "replace")
                if line.startswith(MARK):
                    self._replies.put(json.loads(line[len(MARK) :]))
                    continue
                if MAIN_RUN_LINE in line:
                    self._main_started = time.monotonic()
                log.write(raw)
                log.flush()
        finally:
            log.close()
            self._replies.put({"ok": False, "error": "worker exited", "exited": True})

    def _reply(self, timeout_s: float) -> dict[str, Any]:
        try:
            return self._replies.get(timeout=timeout_s)
        except queue.Empty:
            raise BenchmarkError(
                f"vllm bench worker gave no answer in {timeout_s:.0f} s (see {self.log_path})"
            ) from None

    @property
    def main_started(self) -> float | None:
        return self._main_started

    def run(
        self,
        argv: list[str],
        timeout_s: float,
        during: Callable[[], None] | None = None,
    ) -> RunReply:
        """One benchmark; `during` (if given) is called in this thread while it runs."""
        if self.proc is None or self.proc.stdin is None or self.proc.poll() is not None:
            raise BenchmarkError("vllm bench worker is not running")
        self._main_started = None
        self.proc.stdin.write((json.dumps({"argv": argv}) + "\n").encode())
        self.proc.stdin.flush()
        if during is not None:
            during()
        reply = self._reply(timeout_s)
        return RunReply(
            ok=bool(reply.get("ok")),
            wall_s=float(reply.get("wall_s") or 0.0),
            error=reply.get("error"),
            main_started=self._main_started,
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)
        stop_group(self.proc, grace_s=3.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        self._ready = False


FIGURE_KEYS = {
    "output_throughput": "output_throughput",
    "request_throughput": "request_throughput",
    "mean_ttft_ms": "mean_ttft_ms",
    "p99_ttft_ms": "p99_ttft_ms",
    "mean_tpot_ms": "mean_tpot_ms",
    "mean_itl_ms": "mean_itl_ms",
    "p99_itl_ms": "p99_itl_ms",
    "mean_e2el_ms": "mean_e2el_ms",
    "duration_s": "duration",
    "completed": "completed",
    "failed": "failed",
}


def read_result(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def figures(result: dict[str, Any]) -> dict[str, float]:
    """The compared figures from vLLM's result JSON (vLLM's own names and values)."""
    out = {ours: float(result[theirs]) for ours, theirs in FIGURE_KEYS.items()}
    inputs = result.get("input_lens") or []
    if inputs:
        out["mean_prompt_tokens"] = sum(inputs) / len(inputs)
    outputs = result.get("output_lens") or []
    if outputs:
        out["mean_output_tokens"] = sum(outputs) / len(outputs)
    ttfts = result.get("ttfts") or []
    itls = result.get("itls") or []
    errors = result.get("errors") or [""] * len(ttfts)
    pairs = [
        (t * 1e3, (t + sum(g)) * 1e3) for t, g, e in zip(ttfts, itls, errors, strict=False) if not e
    ]
    out["burst_fraction"] = burst_fraction(pairs)
    return out


def samples_ms(result: dict[str, Any]) -> tuple[list[float], list[float]]:
    """TTFTs (in start order) and pooled ITLs in ms of the successes of a --save-detailed run."""
    ttfts = result.get("ttfts", [])
    errors = result.get("errors") or [""] * len(ttfts)
    starts = result.get("start_times") or list(range(len(ttfts)))
    ok = sorted((i for i in range(len(ttfts)) if not errors[i]), key=lambda i: float(starts[i]))
    itls = result.get("itls", [])
    return [ttfts[i] * 1000.0 for i in ok], [g * 1000.0 for i in ok for g in itls[i]]
