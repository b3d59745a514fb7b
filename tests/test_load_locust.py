"""Plain `locust -f loadtests/chat.py` against the real CPU vLLM server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import TEST_API_KEY

from loadtests.records import RECORD_FIELDS, read_records
from loadtests.request_builder import RequestSpec, UsageStats, api_path, encoded_body, headers
from picoclaw_vllm.server.launcher import ServerHandle
from picoclaw_vllm.vllm_api.sse import DONE, SSEDecoder

pytestmark = pytest.mark.vllm

ROOT = Path(__file__).resolve().parent.parent


def run_locust(
    server: ServerHandle, tmp: Path, *extra: str, users: int = 2, seconds: int = 5
) -> tuple[Path, Path, str]:
    records = tmp / "records.jsonl"
    cmd = [
        sys.executable, "-m", "locust", "-f", "loadtests/chat.py", "--headless",
        "--host", server.base_url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
        "--stop-timeout", "60", "--only-summary", "--json-file", str(tmp / "locust"),
        "--records", str(records), "--prompt-tokens", "48", "--output-tokens", "24",
        "--prompt-pool", "4", *extra,
    ]  # fmt: skip
    env = {**os.environ, "VLLM_API_KEY": TEST_API_KEY}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    return records, tmp / "locust.json", output


def locust_count(stats_json: Path, name: str) -> int:
    """Locust's own count, from --json-file (written after the last user stopped; its CSV
    files are written periodically and can miss requests that ended while users stopped)."""
    entries = json.loads(stats_json.read_text())
    return next(int(e["num_requests"]) for e in entries if e["name"] == name)


def test_headless_run_writes_exact_token_counts(vllm_server: ServerHandle, tmp_path: Path) -> None:
    records_path, stats, output = run_locust(vllm_server, tmp_path)
    records = read_records(records_path)
    assert records, output[-2000:]
    assert all(r.ok for r in records), {r.error for r in records}
    assert {r.output_tokens for r in records} == {24}
    assert {r.prompt_tokens for r in records} == {48}
    # vLLM may put several tokens in one event when it falls behind: events <= tokens
    assert all(0 < len(r.itl_ms) <= 24 and r.tpot_ms is not None for r in records)
    # Locust's own table sees the same requests, plus TTFT/TPOT/E2EL entries
    assert locust_count(stats, "POST /v1/chat/completions") == len(records)
    assert locust_count(stats, "TTFT") == len(records)
    assert TEST_API_KEY not in output


@pytest.mark.parametrize("usage_stats", ["final", "continuous"])
def test_usage_stats_option_as_the_server_answers_it(
    vllm_server: ServerHandle, usage_stats: UsageStats
) -> None:
    """The request this tool builds, sent to the real server: with "final" only the last
    event carries usage, with "continuous" every event does; both end with the exact count."""
    spec = RequestSpec(vllm_server.settings.name, output_tokens=12, usage_stats=usage_stats)
    events = []
    with httpx.stream(
        "POST", vllm_server.base_url + api_path(vllm_server.base_url, "chat"),
        content=encoded_body(spec, "Say something."),
        headers=headers(TEST_API_KEY, stream=True), timeout=120,
    ) as r:  # fmt: skip
        assert r.status_code == 200
        decoder = SSEDecoder()
        for chunk in r.iter_raw():
            events += [json.loads(p) for p in decoder.feed(chunk) if p != DONE]
    with_usage = [e for e in events if e.get("usage")]
    assert with_usage[-1]["usage"]["completion_tokens"] == 12
    assert len(with_usage) == (len(events) if usage_stats == "continuous" else 1)
    assert len(events) > 2


def test_records_have_the_layout_fields(vllm_server: ServerHandle, tmp_path: Path) -> None:
    records_path, _, _ = run_locust(vllm_server, tmp_path, "--endpoint", "completions", seconds=3)
    first = records_path.read_text().splitlines()[0]
    assert set(RECORD_FIELDS) <= set(json.loads(first))
    assert {r.output_tokens for r in read_records(records_path)} == {24}


def test_wrong_key_is_a_clear_failure(vllm_server: ServerHandle, tmp_path: Path) -> None:
    env = {**os.environ, "VLLM_API_KEY": "wrong-key-123"}
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/chat.py", "--headless",
         "--host", vllm_server.base_url, "-u", "1", "-r", "1", "-t", "3s",
         "--records", str(tmp_path / "r.jsonl")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "HTTP 401" in proc.stderr and "wrong-key-123" not in proc.stderr


def test_open_loop_with_warmup(vllm_server: ServerHandle, tmp_path: Path) -> None:
    records_path, _, _ = run_locust(
        vllm_server, tmp_path, "--load-mode", "rate", "--rate", "3", "--warmup", "1",
        users=4, seconds=5,
    )  # fmt: skip
    records = read_records(records_path)
    assert any(r.warmup for r in records) and any(not r.warmup for r in records)
    # ordering by construction: the warm-up window ends before measuring starts (one clock);
    # warm-up requests all started before the measured ones
    assert max(r.start_unix for r in records if r.warmup) <= min(
        r.start_unix for r in records if not r.warmup
    )


def test_distributed_workers_give_the_same_records(
    vllm_server: ServerHandle, tmp_path: Path
) -> None:
    # long enough that a process preparing its prompts slowly (a loaded machine) still sends
    single, single_stats, _ = run_locust(vllm_server, tmp_path / "one", seconds=10)
    multi, _, output = run_locust(vllm_server, tmp_path / "two", "--processes", "2", seconds=10)
    one, two = read_records(single), read_records(multi)
    assert one and two, output[-3000:]
    assert sorted(two[0].to_dict()) == sorted(one[0].to_dict())
    assert len(one) == locust_count(single_stats, "POST /v1/chat/completions")
    # Locust's master misses late worker reports at shutdown, so each worker logs how many
    # records it sent; every one of them reached the master's file
    sent = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"worker (\S+) sent (\d+) records to the master", output)
    }
    written = {w: sum(r.worker == w for r in two) for w in {r.worker for r in two}}
    assert len(sent) == 2, output[-2000:]
    assert written == {w: n for w, n in sent.items() if n > 0}, output[-2000:]
    assert len({r.worker for r in one}) == 1
    assert {r.output_tokens for r in two} == {24}
    assert len({r.request_id for r in two}) == len(two)
