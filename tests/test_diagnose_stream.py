"""The doctor's streamed probe reads a stream as the load profile does (one SSE decoder, vLLM's
timing definitions): each test here failed on the doctor's former line loop, which timed every
`data:` event and called any event containing the text `"error"` an error."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from diagnostics.probes.http import ServerClient, StreamTiming

DONE = b"data: [DONE]\n\n"


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def delta(**fields: Any) -> bytes:
    return event({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": fields}]})


def usage_only(tokens: int) -> bytes:
    return event({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": tokens}})


def stream(*parts: bytes, gap_s: float = 0.0) -> StreamTiming:
    """chat_stream against a server that sends `parts` as separate reads, `gap_s` apart."""

    def body() -> Iterator[bytes]:
        for part in parts:
            if gap_s:
                time.sleep(gap_s)
            yield part

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    client = ServerClient("http://vllm:8000/v1", None, 10.0, transport=httpx.MockTransport(handler))
    try:
        return client.chat_stream({"stream": True}, {"Content-Type": "application/json"})
    finally:
        client.close()


def test_usage_only_event_is_not_a_token() -> None:
    # vLLM's last event under include_usage has `choices: []`: no token, no ITL gap
    out = stream(delta(content="a"), delta(content="b"), usage_only(2), DONE)
    assert out.answer.ok and out.error_chunk is None
    assert out.chunks == 2 and len(out.itl_s) == 1


def test_role_only_first_chunk_counts_as_vllm_counts_it() -> None:
    # vllm bench serve: TTFT is the first event with non-empty `choices`, vLLM's role chunk
    # included (it is sent with the first token's output)
    out = stream(delta(role="assistant", content=""), delta(content="a"), DONE, gap_s=0.05)
    assert out.chunks == 2 and out.ttft_s is not None
    assert out.itl_s[0] >= 0.04  # the role chunk started the clock, the token came later


def test_text_mentioning_error_is_a_token_not_an_error_event() -> None:
    out = stream(delta(content='{"error": "none"}'), delta(content="ok"), DONE)
    assert out.error_chunk is None and out.answer.ok
    assert out.chunks == 2


def test_error_event_mid_stream_is_the_error_chunk() -> None:
    error = event({"error": {"message": "EngineCore encountered an issue.", "code": 500}})
    out = stream(delta(content="a"), error, delta(content="late"), DONE)
    assert out.error_chunk is not None and "EngineCore encountered an issue." in out.error_chunk
    assert out.chunks == 1  # nothing after the error counts


def test_stream_ending_without_done_is_a_failure() -> None:
    out = stream(delta(content="a"), b'data: {"choi')
    assert not out.answer.ok and out.answer.failure is not None
    assert out.answer.failure.kind == "protocol"
    assert "without [DONE]" in out.answer.failure.message
    assert out.chunks == 1 and out.ttft_s is not None  # what did arrive stays timed


def test_event_that_is_not_json_is_a_failure_not_a_token() -> None:
    out = stream(delta(content="a"), b"data: <html>oops</html>\n\n", DONE)
    assert out.answer.failure is not None and out.answer.failure.kind == "protocol"
    assert "malformed stream event" in out.answer.failure.message
    assert out.chunks == 1


def test_an_event_split_across_reads_is_one_token() -> None:
    whole = delta(content="a")
    out = stream(whole[:9], whole[9:], DONE)
    assert out.answer.ok and out.chunks == 1
    assert out.answer.body.startswith("data: {")
