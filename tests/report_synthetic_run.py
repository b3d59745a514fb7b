"""A SYNTHETIC sweep run dir, written by hand following picoclaw_vllm/run_layout.py, so the report
can be tested without running vLLM. Numbers are made up but chosen so the gates' outcomes are
known (see the table below). The real-sweep tests use the loadtests fixture instead.

setting   load  TTFT p95  ITL p95  out tok/s  completed  failed
s4-tp1    1     100       20       40         20         0      (too few to bound a p95)
s4-tp1    2     150       25       75         400        0
s4-tp1    4     250       35       130        400        0
s4-tp1    8     900       60       140        388        12
s8-tp1    1     110       22       38         400        0
s8-tp1    2     160       27       72         400        0
s8-tp1    4     240       33       135        400        0
s8-tp1    8     400       45       240        400        0
s4-tp1    16    failed: load_failed (Locust exited)
s16-tp2   -     did not start: startup.cuda_oom
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from picoclaw_vllm import run_layout

FAKE_KEY = "pcv-fake-key-7Hq2Zx9Lw4"  # no well-known shape: only harvesting can catch it
FAKE_HF_TOKEN = "hf_FakeTokenAbCdEf123456"

# setting_id, max_num_seqs, tp, [(load, ttft_p95, itl_p95, out_tps, completed, failed)]
SETTINGS: list[tuple[str, int, int, list[tuple[int, float, float, float, int, int]]]] = [
    (
        "s4-tp1",
        4,
        1,
        [
            (1, 100.0, 20.0, 40.0, 20, 0),
            (2, 150.0, 25.0, 75.0, 400, 0),
            (4, 250.0, 35.0, 130.0, 400, 0),
            (8, 900.0, 60.0, 140.0, 388, 12),
        ],
    ),
    (
        "s8-tp1",
        8,
        1,
        [
            (1, 110.0, 22.0, 38.0, 400, 0),
            (2, 160.0, 27.0, 72.0, 400, 0),
            (4, 240.0, 33.0, 135.0, 400, 0),
            (8, 400.0, 45.0, 240.0, 400, 0),
        ],
    ),
]
FAILED_SETTING = ("s16-tp2", 16, 2, "startup.cuda_oom")
OOM_LINE = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
DURATION_S = 30.0
WARMUP_S = 5.0


def write_synthetic_run(
    run_dir: Path, *, with_doctor: bool = True, doctor_fails: bool = False
) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / run_layout.RECORDS_DIR).mkdir(exist_ok=True)
    (run_dir / run_layout.LOGS_DIR).mkdir(exist_ok=True)
    rows = []
    for setting_id, seqs, tp, steps in SETTINGS:
        for load, ttft, itl, tps, completed, failed in steps:
            row = _row(setting_id, seqs, tp, load, ttft, itl, tps, completed, failed)
            rows.append(row)
            _write_records(run_dir, row)
        (run_dir / run_layout.LOGS_DIR / f"{setting_id}.log").write_text("INFO ready\n")
    rows.append(
        {
            "step_id": "s4-tp1-c16",
            "setting_id": "s4-tp1",
            "max_num_seqs": 4,
            "tensor_parallel_size": 1,
            "status": "failed",
            "failure_id": "load_failed",
            "failure_message": "locust exited with status 1",
            "load_mode": "concurrency",
            "concurrency": 16,
        }
    )
    (run_dir / run_layout.LOGS_DIR / "locust-s4-tp1-c16.log").write_text(
        f"locust: Authorization: Bearer {FAKE_KEY}\nlocust exited with status 1\n"
    )
    sid, seqs, tp, failure_id = FAILED_SETTING
    rows.append(
        {
            "step_id": sid,
            "setting_id": sid,
            "max_num_seqs": seqs,
            "tensor_parallel_size": tp,
            "status": "failed",
            "failure_id": failure_id,
            "failure_message": OOM_LINE,
        }
    )
    (run_dir / run_layout.LOGS_DIR / f"{sid}.log").write_text(
        f"INFO non-default args: {{'api_key': '{FAKE_KEY}'}}\n"
        f"INFO env VLLM_API_KEY={FAKE_KEY}\n"
        f"INFO downloading with token {FAKE_HF_TOKEN}\n"
        f"ERROR client sent key {FAKE_KEY} with the request\n"
        f"{OOM_LINE}\n"
        "RuntimeError: Engine core initialization failed. See root cause above.\n"
    )
    frame = pd.DataFrame(rows, columns=run_layout.COLUMNS)
    frame.to_csv(run_dir / run_layout.RESULTS_CSV, index=False)
    frame.to_parquet(run_dir / run_layout.RESULTS_PARQUET, index=False)
    (run_dir / run_layout.MANIFEST).write_text(json.dumps(_manifest(), indent=2))
    if with_doctor:
        (run_dir / run_layout.DOCTOR_JSON).write_text(json.dumps(_doctor(doctor_fails), indent=2))
    return run_dir


def _row(
    setting_id: str,
    seqs: int,
    tp: int,
    load: int,
    ttft: float,
    itl: float,
    tps: float,
    completed: int,
    failed: int,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "step_id": f"{setting_id}-c{load}",
        "setting_id": setting_id,
        "max_num_seqs": seqs,
        "tensor_parallel_size": tp,
        "status": "ok",
        "failure_id": None,
        "failure_message": None,
        "load_mode": "concurrency",
        "concurrency": load,
        "request_rate": math.nan,
        "duration_s": DURATION_S,
        "warmup_s": WARMUP_S,
        "prompt_tokens_asked": 256,
        "output_tokens_asked": 64,
        "completed": completed,
        "failed": failed,
        "request_throughput": completed / DURATION_S,
        "output_throughput": tps,
        "total_token_throughput": tps + completed * 256 / DURATION_S,
        "goodput": completed / DURATION_S * (0.9 if ttft > 300 else 1.0),
        "server_running_max": min(load, seqs),
        "server_running_mean": min(load, seqs) * 0.8,
        "server_waiting_max": max(0, load - seqs),
        "server_waiting_mean": max(0, load - seqs) * 0.6,
        "server_queue_ms_mean": max(0, load - seqs) * 40.0,
        "server_kv_cache_max": min(0.98, 0.08 * load * (8 / seqs)),
        "server_preemptions": 0,
        "server_prompt_tokens": completed * 256,
        "server_generation_tokens": completed * 64,
        "server_prefix_cache_hit_rate": 0.0,
        "gpu_memory_used_max_mib": math.nan,
        "gpu_utilization_mean": math.nan,
    }
    for metric, p95 in (
        ("ttft", ttft),
        ("itl", itl),
        ("tpot", itl * 1.05),
        ("e2el", ttft + 64 * itl),
    ):
        for stat, factor in (
            ("mean", 0.7),
            ("p50", 0.65),
            ("p90", 0.9),
            ("p95", 1.0),
            ("p99", 1.3),
        ):
            row[f"{metric}_ms_{stat}"] = round(p95 * factor, 3)
    return row


# the shape of every latency's distribution, as fractions of its p95 at these quantiles (the
# row's mean/p50/p90/p95/p99 use the same factors), so the records agree with the row
SHAPE = ((0.0, 0.3), (0.5, 0.65), (0.9, 0.9), (0.95, 1.0), (0.99, 1.3), (1.0, 1.5))


def spread(p95: float, n: int, i: int) -> float:
    """The i-th of n samples (in a fixed shuffled order) of a latency whose p95 is `p95`."""
    k = (i * 37) % n if n % 37 else i  # a fixed permutation: no order by time
    q = (k + 0.5) / n
    qs, fs = zip(*SHAPE, strict=True)
    return round(p95 * float(np.interp(q, qs, fs)), 3)


def _write_records(run_dir: Path, row: dict[str, Any]) -> None:
    lines = []
    n = row["completed"]
    for i in range(row["completed"] + row["failed"] + 2):
        warmup = i < 2
        ok = warmup or i - 2 < row["completed"]
        j = max(0, i - 2) % max(1, n)
        lines.append(
            {
                "step_id": row["step_id"],
                "request_id": f"{row['step_id']}-{i}",
                "worker": "w0",
                "start_unix": 1_800_000_000.0 + i,
                "ok": ok,
                "status_code": 200 if ok else 401,
                "error": None if ok else f"HTTP 401: bad key {FAKE_KEY}",
                "prompt_tokens": 256,
                "output_tokens": 64 if ok else 0,
                "ttft_ms": spread(row["ttft_ms_p95"], n, j) if ok else None,
                "e2el_ms": spread(row["e2el_ms_p95"], n, j) if ok else None,
                "tpot_ms": spread(row["tpot_ms_p95"], n, j) if ok else None,
                "itl_ms": [spread(row["itl_ms_p95"], 63 * n, 63 * j + g) for g in range(63)]
                if ok
                else [],
                "warmup": warmup,
            }
        )
    path = run_dir / run_layout.RECORDS_DIR / f"{row['step_id']}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _manifest() -> dict[str, Any]:
    """The shape sweeps.results.RunDir.new_manifest writes, filled in as the sweep does."""
    plans = [*SETTINGS, (*FAILED_SETTING[:3], [])]
    commands = {
        sid: f"VLLM_API_KEY={FAKE_KEY} python -m vllm.entrypoints.openai.api_server --model "
        f"tiny-llama --max-model-len 2048 --max-num-seqs {seqs} --tensor-parallel-size {tp} "
        f"--api-key {FAKE_KEY}"
        for sid, seqs, tp, _ in plans
    }
    commands[FAILED_SETTING[0]] = None
    return {
        "schema": run_layout.SCHEMA,
        "created_unix": 1_800_000_000.0,
        "tool_version": "0.1.0",
        "locust_version": "2.31.0",
        "vllm_version": "0.32.0",
        "platform": {"python": "3.11.7", "platform": "Linux-6.1-x86_64"},
        "model": None,
        "config": {
            "model": None,
            "served_model_name": None,
            "launch": "local",
            "api_base": None,
            "max_model_len": None,
            "concurrency": [1, 2, 4, 8],
            "rates": [],
            "duration_s": DURATION_S,
            "warmup_s": WARMUP_S,
            "prompt_tokens": 256,
            "output_tokens": 64,
            "endpoint": "chat",
            "stream": True,
            "prompt_file": None,
            "workers": 0,
            "slo": {"ttft_ms": 300.0, "tpot_ms": None, "e2el_ms": None},
        },
        "settings": {
            sid: {
                "max_num_seqs": seqs,
                "tensor_parallel_size": tp,
                "steps": [f"{sid}-c{step[0]}" for step in steps],
            }
            for sid, seqs, tp, steps in plans
        },
        "vllm_commands": commands,
        "locust_commands": {
            f"{sid}-c{step[0]}": f"locust -f chat.py --headless -u {step[0]} --api-key={FAKE_KEY}"
            for sid, _, _, steps in SETTINGS
            for step in steps
        },
    }


def _doctor(fails: bool) -> dict[str, Any]:
    """The shape diagnostics.runner.Diagnosis.to_json_dict writes."""
    findings = [
        {
            "id": "picoclaw.no_fallbacks",
            "severity": "warn",
            "message": "PicoClaw has no model_fallbacks configured",
            "evidence": f"Authorization: Bearer {FAKE_KEY}",
            "remedy": "Add a fallback under agents.defaults.model_fallbacks",
        }
    ]
    checks = [
        {"name": "server.reachable", "title": "the server answers", "status": "pass"},
        {"name": "picoclaw.fallbacks", "title": "fallbacks are set", "status": "warn"},
    ]
    if fails:
        findings.append(
            {
                "id": "auth.key_mismatch",
                "severity": "fail",
                "message": "The server rejects PicoClaw's API key (401)",
                "evidence": f"api_key={FAKE_KEY}",
                "remedy": "Set providers.vllm.api_key to the server's --api-key",
            }
        )
        checks.append({"name": "auth.key", "title": "the API key works", "status": "fail"})
    return {
        "schema": "picoclaw-vllm/diagnosis/v1",
        "tool": {"name": "picoclaw-vllm", "version": "0.1.0"},
        "vllm": {"version": "0.32.0"},
        "status": "fail" if fails else "warn",
        "target": {"api_base": "http://127.0.0.1:8000/v1", "model": "tiny-llama"},
        "checks": checks,
        "findings": findings,
    }
