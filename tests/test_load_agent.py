"""`locust -f loadtests/chat.py --workload agent` against the real CPU vLLM session server:
PicoClaw sessions with PicoClaw's own requests, a history that grows, and vLLM's prefix cache."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from test_load_locust import run_locust

from loadtests.records import RequestRecord, read_records
from picoclaw_vllm.server.launcher import ServerHandle
from sweeps.server_metrics import PREFIX_HITS, PREFIX_QUERIES, parse_prometheus
from sweeps.step_figures import summarize

pytestmark = pytest.mark.vllm

AGENT = ("--workload", "agent", "--calls-per-turn", "3", "--turns-per-session", "2",
         "--think-time", "0.2", "--output-tokens", "16")  # fmt: skip


def prefix_counters(server: ServerHandle) -> tuple[float, float]:
    values = parse_prometheus(httpx.get(f"{server.base_url}/metrics", timeout=30).text)
    return values[PREFIX_HITS], values[PREFIX_QUERIES]


def by_session(records: list[RequestRecord]) -> dict[str, list[RequestRecord]]:
    sessions: dict[str, list[RequestRecord]] = defaultdict(list)
    for r in records:
        assert r.session_id is not None and r.turn_index and r.call_index, r
        sessions[r.session_id].append(r)
    for calls in sessions.values():
        calls.sort(key=lambda r: (r.turn_index or 0, r.call_index or 0))
    return sessions


def test_agent_sessions_grow_their_history_on_a_shared_cached_prefix(
    vllm_server: ServerHandle, tmp_path: Path
) -> None:
    hits_before, queries_before = prefix_counters(vllm_server)
    path, _, output = run_locust(vllm_server, tmp_path, *AGENT, users=2, seconds=12)
    hits, queries = prefix_counters(vllm_server)
    records = read_records(path)
    assert records and all(r.ok for r in records), output[-3000:]
    sessions = by_session(records)
    # every call resends the history: prompt tokens rise call after call in a session
    for calls in sessions.values():
        prompts = [r.prompt_tokens or 0 for r in calls]
        assert prompts == sorted(prompts) and len(set(prompts)) == len(prompts), prompts
    assert min(r.prompt_tokens or 0 for r in records) > 10_000  # PicoClaw's prompt and tools
    # the forced calls come back as tool calls, measured like any answer; a turn ends in text
    tool_calls = [r for r in records if r.answer_kind == "tool_call"]
    assert tool_calls and all(r.ttft_ms is not None for r in tool_calls)
    assert all(r.call_index == 3 for r in records if r.answer_kind == "text")
    # vLLM's own counters: the shared system prompt and tools came from the prefix cache
    assert (hits - hits_before) / (queries - queries_before) > 0.5
    # the embedded server reports cached prompt tokens per request too
    assert any((r.cached_tokens or 0) > 10_000 for r in records)
    row = summarize(records)
    assert row["turns"] and row["turns_timed_out"] == 0
    assert row["tool_call_answers"] == len(tool_calls)
    # every answer scored; 16 output tokens cut real answers: counted as cut, never invalid
    assert all(r.answer_score is not None for r in records)
    assert row["scored_answers"] == len(records)
    assert row["answers_cut_by_length_pct"] > 0, [r.answer_score for r in records]
    assert row["invalid_tool_calls_pct"] == 0, [r.answer_score for r in records]
    shares = [
        row[f"answers_{k}_pct"]
        for k in ("tool_call", "text", "markup_in_content", "invalid_arguments", "cut_by_length")
    ]
    assert sum(shares) == pytest.approx(100.0)  # fmt: skip


def test_a_turn_longer_than_picoclaws_timeout_is_counted(
    vllm_server: ServerHandle, tmp_path: Path
) -> None:
    # margin: three calls with a 10k-token prompt each take far more than 50 ms here
    path, _, output = run_locust(
        vllm_server, tmp_path, *AGENT, "--turn-timeout", "0.05", users=1, seconds=6
    )
    row = summarize(read_records(path))
    assert row["turns"], output[-3000:]
    assert row["turns_timed_out"] == row["turns"]


def test_distributed_agent_workers_deliver_every_record(
    vllm_server: ServerHandle, tmp_path: Path
) -> None:
    path, _, output = run_locust(vllm_server, tmp_path, *AGENT, "--processes", "2",
                                 users=2, seconds=12)  # fmt: skip
    records = read_records(path)
    sent = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"worker (\S+) sent (\d+) records to the master", output)
    }
    written = {w: sum(r.worker == w for r in records) for w in {r.worker for r in records}}
    assert len(sent) == 2, output[-2000:]
    assert written == {w: n for w, n in sent.items() if n > 0}, output[-2000:]
    assert len(by_session(records)) >= 2
    assert len({r.request_id for r in records}) == len(records)


def test_doctor_and_sweep_read_the_real_metrics_alike(vllm_server: ServerHandle) -> None:
    from picoclaw_vllm.vllm_api.metrics import KV_USAGE, PREEMPTIONS, RUNNING, parse

    text = httpx.get(f"{vllm_server.base_url}/metrics", timeout=30).text
    doctor, sweep = parse(text), parse_prometheus(text)
    assert doctor.kv_usage is not None and doctor.kv_usage == sweep[KV_USAGE[0]]
    assert doctor.preemptions is not None and doctor.preemptions == sweep[PREEMPTIONS[0]]
    assert doctor.running == sweep[RUNNING]
    assert sweep[PREFIX_QUERIES] >= sweep[PREFIX_HITS] >= 0
