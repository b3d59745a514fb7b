"""Locust's own row for the HTTP request shows the whole answer, not the time to its headers.

Against the benchmarks' stub server (a stand-in: the stream's schedule must be known exactly,
which a real vLLM's is not): the first event 200 ms after the request, then one token every
20 ms, 10 tokens, so every answer takes at least 380 ms while its headers come at 200 ms.
Locust's figure for `POST /v1/chat/completions` must be that whole answer and agree with the
records' E2EL; the TTFT/TPOT/E2EL rows stay.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_benchmarks_stub import _start

from benchmarks.ceiling import write_prompt_file
from loadtests.records import read_records

ROOT = Path(__file__).resolve().parent.parent
TTFT_MS, ITL_MS, TOKENS = 200, 20, 10
ANSWER_MS = TTFT_MS + (TOKENS - 1) * ITL_MS  # the last token's time on the stub's schedule


@pytest.fixture
def scheduled(tmp_path: Path) -> Iterator[str]:
    yield from _start(tmp_path, "--ttft-ms", str(TTFT_MS), "--itl-ms", str(ITL_MS))


def test_the_request_row_is_the_whole_answer(scheduled: str, tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    cmd = [
        sys.executable, "-m", "locust", "-f", "loadtests/chat.py", "--headless",
        "--host", scheduled, "-u", "2", "-r", "2", "-t", "3s", "--stop-timeout", "10",
        "--only-summary", "--json-file", str(tmp_path / "locust"), "--model", "stub",
        "--prompt-file", str(write_prompt_file(tmp_path / "prompts.jsonl", 8)),
        "--output-tokens", str(TOKENS), "--records", str(records),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    entries = {e["name"]: e for e in json.loads((tmp_path / "locust.json").read_text())}
    assert {"TTFT", "TPOT", "E2EL"} <= set(entries)
    row = entries["POST /v1/chat/completions"]
    done = [r for r in read_records(records) if r.ok and r.e2el_ms is not None]
    assert done and row["num_requests"] == len(read_records(records))
    # never shorter than the schedule (the time to the headers would be about 200 ms)
    assert row["min_response_time"] >= ANSWER_MS
    mean_ms = row["total_response_time"] / row["num_requests"]
    e2el_ms = sum(r.e2el_ms or 0.0 for r in done) / len(done)
    # the whole answer ends a usage event and [DONE] after the last token: the same write
    assert e2el_ms <= mean_ms <= e2el_ms + 20.0, (mean_ms, e2el_ms)
