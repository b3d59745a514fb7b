"""The benchmarks' stub server: vLLM-shaped streams, the configured timing, honest counters."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from picoclaw_vllm.procs import spawn_group, stop_group
from picoclaw_vllm.server.embedded import free_port
from picoclaw_vllm.vllm_api.measurement import StreamMeasurement

REPO = Path(__file__).resolve().parent.parent


def _start(tmp_path: Path, *args: str) -> Iterator[str]:
    port = free_port()
    proc = spawn_group(
        [sys.executable, "-m", "benchmarks.stub_server", "--port", str(port), *args],
        log_path=tmp_path / "stub.log",
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1.0)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, (tmp_path / "stub.log").read_text()
                assert time.monotonic() < deadline, "stub server did not start"
                time.sleep(0.05)
        yield url
    finally:
        assert stop_group(proc, grace_s=5.0)


@pytest.fixture
def instant(tmp_path: Path) -> Iterator[str]:
    yield from _start(tmp_path)


@pytest.fixture
def timed(tmp_path: Path) -> Iterator[str]:
    yield from _start(tmp_path, "--ttft-ms", "50", "--itl-ms", "20")


def _events(text: str) -> list[str]:
    return [block[len("data: ") :] for block in text.split("\n\n") if block.startswith("data: ")]


STREAM_OPTIONS = {"include_usage": True, "continuous_usage_stats": True}


def test_chat_stream_is_shaped_like_vllms(instant: str) -> None:
    body = {
        "model": "stub",
        "messages": [{"role": "user", "content": "one two three"}],
        "max_tokens": 5,
        "stream": True,
        "stream_options": STREAM_OPTIONS,
    }
    r = httpx.post(f"{instant}/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    tokens = chunks[1:-1]
    assert len(tokens) == 5
    assert [c["usage"]["completion_tokens"] for c in tokens] == [1, 2, 3, 4, 5]
    assert all(c["usage"]["prompt_tokens"] == 3 for c in tokens)
    assert tokens[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "total_tokens": 8, "completion_tokens": 5}


def test_usage_only_at_the_end_without_continuous_stats(instant: str) -> None:
    body = {"model": "stub", "prompt": "a b", "max_tokens": 3, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    chunks = [
        json.loads(e) for e in _events(httpx.post(f"{instant}/v1/completions", json=body).text)[:-1]
    ]
    assert ["usage" in c for c in chunks] == [False, False, False, True]
    assert [c["choices"][0]["text"] for c in chunks[:-1]] == [" tok"] * 3


def test_the_tools_measurement_reads_it(instant: str) -> None:
    body = {"model": "stub", "prompt": "x", "max_tokens": 16, "stream": True,
            "stream_options": STREAM_OPTIONS}  # fmt: skip
    start = time.perf_counter()
    r = httpx.post(f"{instant}/v1/completions", json=body)
    m = StreamMeasurement(start)
    m.feed(r.content, time.perf_counter())
    outcome = m.finish()
    assert outcome.ok, outcome.error
    assert outcome.output_tokens == 16
    assert len(outcome.itl_ms) == 15


def test_timed_stream_follows_the_schedule(timed: str) -> None:
    body = {"model": "stub", "prompt": "x", "max_tokens": 6, "stream": True,
            "stream_options": STREAM_OPTIONS}  # fmt: skip
    times: list[float] = []
    with httpx.Client() as client:
        start = time.perf_counter()
        with client.stream("POST", f"{timed}/v1/completions", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data: {") and '"choices":[{' in line:
                    times.append(time.perf_counter())
        stats = client.get(f"{timed}/stub/stats").json()
    assert len(times) == 6
    # never early, which a schedule guarantees; how late is a figure the benchmark prints
    # (benchmarks/ceiling.py, stub_itl_lateness_*), not a bound a busy machine always meets
    assert (times[0] - start) * 1000 >= 50
    assert (times[-1] - start) * 1000 >= 50 + 5 * 20
    gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(times))
    assert gaps[2] >= 15, gaps
    assert stats["itl_lateness_ms"]["n"] == 5
    assert stats["ttft_lateness_ms"]["n"] == 1
    assert stats["itl_lateness_ms"]["mean"] >= 0


def test_models_plain_answers_counters_and_keep_alive(instant: str) -> None:
    with httpx.Client() as client:
        connections = client.get(f"{instant}/stub/stats").json()["connections"]
        models = client.get(f"{instant}/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["stub"]
        r = client.post(
            f"{instant}/v1/chat/completions",
            json={"model": "stub", "messages": [], "max_tokens": 4},
        )
        assert r.json()["usage"]["completion_tokens"] == 4
        assert r.json()["choices"][0]["message"]["content"] == " tok" * 4
        body = {"model": "stub", "prompt": "x", "max_tokens": 7, "stream": True}
        client.post(f"{instant}/v1/completions", json=body)
        stats = client.get(f"{instant}/stub/stats").json()
        assert stats["requests"] == 2
        assert stats["completed"] == 2
        assert stats["token_events"] == 1 + 7
        assert stats["connections"] == connections  # one keep-alive connection throughout
        client.post(f"{instant}/stub/reset")
        assert client.get(f"{instant}/stub/stats").json()["requests"] == 0


def test_errors_look_like_vllms(instant: str) -> None:
    r = httpx.post(f"{instant}/v1/completions", json={"model": "nope", "prompt": "x"})
    assert r.status_code == 404
    assert "does not exist" in r.json()["error"]["message"]
    r = httpx.post(f"{instant}/v1/completions", content=b"not json")
    assert r.status_code == 400
    r = httpx.post(f"{instant}/v1/completions", json={"model": "stub", "max_tokens": 0})
    assert r.status_code == 200  # 0 means "not given": the default 16
    r = httpx.post(f"{instant}/v1/completions", json={"model": "stub", "max_tokens": -1})
    assert r.status_code == 400
    assert httpx.get(f"{instant}/nowhere").status_code == 404
