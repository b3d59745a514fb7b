"""How fast and in how much memory the doctor reads a big server log.

    .venv/bin/python -m benchmarks.big_log [--mb 200] [--keep PATH]

Writes a log of healthy vLLM traffic (access lines, throughput lines, request lines, in the
real CPU vLLM's wording) with one run-time CUDA out of memory and the engine's death near its
end, then runs `picoclaw-vllm diagnose --log FILE --check server_log --json` on it as a
separate process and records its wall time, its peak RSS, and whether it named the death.
Also times `grep -c 'out of memory'` on the same file as the yardstick. Results go to
benchmarks/results/big_log.json. It measures; it passes or fails nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "big_log.json"
LOGS = Path(__file__).resolve().parent.parent / "tests" / "data" / "diagnose" / "logs"
TRAFFIC = (
    "(APIServer pid=4113) INFO:     127.0.0.1:{port} - "
    '"POST /v1/chat/completions HTTP/1.1" 200 OK\n',
    "(APIServer pid=4113) INFO 12-04 05:10:{s:02d} [loggers.py:123] Engine 000: Avg prompt "
    "throughput: {a}.9 tokens/s, Avg generation throughput: {b}.4 tokens/s, Running: 8 reqs, "
    "Waiting: 0 reqs, GPU KV cache usage: 41.2%, Prefix cache hit rate: 12.0%\n",
    "(APIServer pid=4113) INFO 12-04 05:10:{s:02d} [logger.py:39] Received request "
    "chatcmpl-{rid:x}: params: SamplingParams(n=1, temperature=0.7, max_tokens=512), "
    "lora_request: None.\n",
    "(APIServer pid=4113) INFO 12-04 05:10:{s:02d} [async_llm.py:261] Added request "
    "chatcmpl-{rid:x}.\n",
)


def write_log(path: Path, size: int, seed: int = 1) -> Path:
    """A start-up, `size` bytes of healthy traffic, then a run-time CUDA OOM and the death."""
    rng = random.Random(seed)
    died = (LOGS / "runtime_cuda_oom.log").read_text().splitlines(keepends=True)
    head, tail = died[:6], died[8:]
    with path.open("w") as f:
        f.writelines(head)
        written = 0
        block: list[str] = []
        while written < size:
            line = rng.choice(TRAFFIC).format(
                port=rng.randint(30000, 60000), s=rng.randint(0, 59), a=rng.randint(100, 999),
                b=rng.randint(10, 99), rid=rng.getrandbits(48),
            )  # fmt: skip
            block.append(line)
            written += len(line)
            if len(block) >= 10_000:
                f.write("".join(block))
                block = []
        f.write("".join(block))
        f.writelines(tail)
    return path


def _timed(cmd: list[str]) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    """Wall time, peak RSS (bytes) of the child, and its result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) * 1024, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="log size in MB (default 200)")
    parser.add_argument("--keep", type=Path, help="write the log here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "big.log"
        t0 = time.perf_counter()
        write_log(path, args.mb * 1_000_000)
        made_s = time.perf_counter() - t0
        size = path.stat().st_size
        subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL)  # warm the page cache
        grep_s, _, _ = _timed(["grep", "-c", "out of memory", str(path)])
        cmd = [sys.executable, "-m", "picoclaw_vllm", "diagnose", "--api-base",
               "http://127.0.0.1:9/v1", "--log", str(path), "--check", "server_log",
               "--json"]  # fmt: skip
        wall, peak, done = _timed(cmd)
        doc = json.loads(done.stdout) if done.stdout.strip() else {}
        findings = {f["id"]: f["message"] for f in doc.get("findings", [])}
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_1m": os.getloadavg()[0],
        },
        "log_bytes": size,
        "log_written_s": round(made_s, 2),
        "doctor_wall_s": round(wall, 2),
        "doctor_mb_per_s": round(size / 1e6 / wall, 1),
        "doctor_peak_rss_mib": round(peak / 2**20, 1),
        "grep_wall_s": round(grep_s, 2),
        "grep_mb_per_s": round(size / 1e6 / grep_s, 1),
        "exit_code": done.returncode,
        "named": findings,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if "engine_dead" in findings else 1


if __name__ == "__main__":
    raise SystemExit(main())
