"""A SYNTHETIC agent-workload sweep run dir (PicoClaw sessions), written by hand following
picoclaw_vllm/run_layout.py, so the capacity answer and the agent gates can be tested without
vLLM. Numbers are made up, chosen so the outcome under the acceptance defaults (error rate
<= 1 %, p95 TTFT <= 2 s, p95 turn latency <= 120 s, no timed-out turn) is known:

setting  sessions TTFT p95 turn p95 s timed out waiting KV max hit rate prompt tok/s preempt
s4-tp1   1        300      8          0         0       5 %    80 %     600          0
s4-tp1   4        500      12         0         0       20 %   85 %     2300         0
s4-tp1   8        2600     130        2         4       30 %   85 %     2500         0
s4-tp1   16       5000     200        6         12      35 %   84 %     2600         0
s16-tp1  1        310      8.2        0         0       5 %    80 %     600          0
s16-tp1  4        480      11         0         0       25 %   86 %     2350         0
s16-tp1  8        900      20         0         0       55 %   84 %     4500         0
s16-tp1  16       3000     140        3         0       97 %   40 %     8500         12

So s4-tp1 serves 4 sessions (its queue above --max-num-seqs 4 runs out first, at 8), s16-tp1
serves 8 (its KV cache and prefix cache run out at 16), and s16-tp1 is recommended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from report_synthetic_run import DURATION_S, _manifest, _row, spread

from picoclaw_vllm import run_layout

CALLS_PER_TURN = 4
TURNS_PER_SESSION = 5
COMPLETED = 400  # 100 turns: enough to bound a p95 turn latency, and a 1 % error rate
# sessions, ttft p95, turn p95 s, timed out, waiting max, kv max, hit rate, prompt tok/s, preempt
Step = tuple[int, float, float, int, int, float, float, float, int]
SETTINGS: list[tuple[str, int, list[Step]]] = [
    (
        "s4-tp1",
        4,
        [
            (1, 300.0, 8.0, 0, 0, 0.05, 0.80, 600.0, 0),
            (4, 500.0, 12.0, 0, 0, 0.20, 0.85, 2300.0, 0),
            (8, 2600.0, 130.0, 2, 4, 0.30, 0.85, 2500.0, 0),
            (16, 5000.0, 200.0, 6, 12, 0.35, 0.84, 2600.0, 0),
        ],
    ),
    (
        "s16-tp1",
        16,
        [
            (1, 310.0, 8.2, 0, 0, 0.05, 0.80, 600.0, 0),
            (4, 480.0, 11.0, 0, 0, 0.25, 0.86, 2350.0, 0),
            (8, 900.0, 20.0, 0, 0, 0.55, 0.84, 4500.0, 0),
            (16, 3000.0, 140.0, 3, 0, 0.97, 0.40, 8500.0, 12),
        ],
    ),
]
EXPECTED_SESSIONS = {"s4-tp1": 4.0, "s16-tp1": 8.0}
EXPECTED_RUNS_OUT = {"s4-tp1": ["queue"], "s16-tp1": ["kv_cache", "prefix_cache"]}


def write_synthetic_agent_run(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / run_layout.RECORDS_DIR).mkdir(exist_ok=True)
    (run_dir / run_layout.LOGS_DIR).mkdir(exist_ok=True)
    rows = []
    for setting_id, seqs, steps in SETTINGS:
        for step in steps:
            row = agent_row(setting_id, seqs, step)
            rows.append(row)
            _write_records(run_dir, row)
        (run_dir / run_layout.LOGS_DIR / f"{setting_id}.log").write_text("INFO ready\n")
    frame = pd.DataFrame(rows, columns=run_layout.COLUMNS)
    frame.to_csv(run_dir / run_layout.RESULTS_CSV, index=False)
    frame.to_parquet(run_dir / run_layout.RESULTS_PARQUET, index=False)
    (run_dir / run_layout.MANIFEST).write_text(json.dumps(agent_manifest(), indent=2))
    return run_dir


def agent_row(setting_id: str, seqs: int, step: Step) -> dict[str, Any]:
    load, ttft, turn_s, timed_out, waiting, kv, hit, prompt_tps, preempted = step
    row = _row(setting_id, seqs, 1, load, ttft, 40.0, 30.0 * load + seqs, COMPLETED, 0)
    turns = COMPLETED // CALLS_PER_TURN
    row.update(
        server_waiting_max=waiting,
        server_waiting_mean=waiting * 0.6,
        server_queue_ms_mean=waiting * 700.0,
        server_running_max=min(load, seqs),
        server_kv_cache_max=kv,
        server_prefix_cache_hit_rate=hit,
        server_prompt_tokens=prompt_tps * DURATION_S,
        server_preemptions=preempted,
        workload="agent",
        turns=turns,
        turns_failed=0,
        turns_timed_out=timed_out,
        turn_latency_ms_p50=turn_s * 600.0,
        turn_latency_ms_p95=turn_s * 1000.0,
        turn_latency_ms_max=turn_s * 1200.0,
        tool_call_answers=turns * (CALLS_PER_TURN - 1),
        text_answers=turns,
        prompt_tokens_mean=3000.0 + 40 * load,
        prompt_tokens_max=6000.0,
    )
    return row


def _write_records(run_dir: Path, row: dict[str, Any]) -> None:
    """Records whose TTFT grows with the call index and the turn index (a growing history)."""
    lines = []
    turns = row["completed"] // CALLS_PER_TURN
    for i in range(row["completed"]):
        call = i % CALLS_PER_TURN + 1
        turn = (i // CALLS_PER_TURN) % TURNS_PER_SESSION + 1
        ttft = row["ttft_ms_p50"] * (1 + 0.1 * call + 0.05 * turn)
        last = call == CALLS_PER_TURN
        lines.append(
            {
                "step_id": row["step_id"],
                "request_id": f"{row['step_id']}-{i}",
                "worker": "w0",
                "start_unix": 1_800_000_000.0 + i,
                "ok": True,
                "status_code": 200,
                "error": None,
                "prompt_tokens": 3000 + 200 * (turn * CALLS_PER_TURN + call),
                "output_tokens": 32,
                "ttft_ms": ttft,
                "e2el_ms": ttft + 500.0,
                "tpot_ms": 15.0,
                "itl_ms": [15.0] * 31,
                "warmup": False,
                "answer_kind": "text" if last else "tool_call",
                "cached_tokens": 2800,
                "session_id": f"{row['step_id']}-s{i // (CALLS_PER_TURN * TURNS_PER_SESSION)}",
                "turn_index": turn,
                "call_index": call,
                "turn_latency_ms": spread(row["turn_latency_ms_p95"], turns, i // CALLS_PER_TURN)
                if last
                else None,
                "turn_timed_out": False if last else None,
            }
        )
    path = run_dir / run_layout.RECORDS_DIR / f"{row['step_id']}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def agent_manifest() -> dict[str, Any]:
    manifest = _manifest()
    manifest["config"].update(
        workload="agent",
        concurrency=[1, 4, 8, 16],
        agent_mode="forced",
        calls_per_turn=CALLS_PER_TURN,
        turns_per_session=TURNS_PER_SESSION,
        think_time_s=1.0,
        tool_result_chars=2048,
        turn_timeout_s=120.0,
    )
    manifest["settings"] = {
        sid: {
            "max_num_seqs": seqs,
            "tensor_parallel_size": 1,
            "steps": [f"{sid}-c{s[0]}" for s in steps],
        }
        for sid, seqs, steps in SETTINGS
    }
    manifest["vllm_commands"] = {
        sid: f"python -m vllm.entrypoints.openai.api_server --model tiny-llama "
        f"--max-num-seqs {seqs} --enable-auto-tool-choice --tool-call-parser hermes"
        for sid, seqs, _ in SETTINGS
    }
    manifest["locust_commands"] = {
        f"{sid}-c{s[0]}": f"locust -f chat.py --headless -u {s[0]} --workload agent"
        for sid, _, steps in SETTINGS
        for s in steps
    }
    return manifest
