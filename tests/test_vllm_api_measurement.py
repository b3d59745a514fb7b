"""SSE decoding and per-request measurement (picoclaw_vllm.vllm_api, shared by the load profile
and the doctor) on hand-made streams and timings."""

from __future__ import annotations

import json

import pytest

from picoclaw_vllm.vllm_api.measurement import (
    StreamMeasurement,
    error_text,
    http_failure,
    measure_complete,
)
from picoclaw_vllm.vllm_api.sse import SSEDecoder


def chat_event(content: str | None, completion_tokens: int, *, role: bool = False) -> bytes:
    delta: dict[str, str] = {"role": "assistant", "content": ""} if role else {}
    if content is not None:
        delta["content"] = content
    event = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        "usage": {
            "prompt_tokens": 7,
            "completion_tokens": completion_tokens,
            "total_tokens": 7 + completion_tokens,
        },
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def usage_event(completion_tokens: int) -> bytes:
    event = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": completion_tokens}}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


class TestSSEDecoder:
    def test_events_split_anywhere_come_out_whole(self) -> None:
        stream = b"data: one\n\ndata: two\n\n: a comment\nevent: x\ndata: three\n\n"
        for size in (1, 2, 3, 7, len(stream)):
            decoder = SSEDecoder()
            out: list[bytes] = []
            for i in range(0, len(stream), size):
                out += decoder.feed(stream[i : i + size])
            assert out == [b"one", b"two", b"three"], size
            assert decoder.leftover == b""

    def test_crlf_and_cr_line_ends(self) -> None:
        decoder = SSEDecoder()
        assert decoder.feed(b"data: a\r") == []
        assert decoder.feed(b"\n\r\ndata: b\r\r") == [b"a", b"b"]
        assert decoder.feed(b"\ndata: c\r") == []  # \n completes the \r\n, no extra line
        assert decoder.feed(b"\n\n") == [b"c"]

    def test_multi_line_data_joins_with_newline(self) -> None:
        assert SSEDecoder().feed(b'data: {\ndata:  "x": 1}\n\n') == [b'{\n "x": 1}']

    def test_truncated_event_stays_as_leftover(self) -> None:
        decoder = SSEDecoder()
        assert decoder.feed(b'data: {"a": 1}\n\ndata: {"cho') == [b'{"a": 1}']
        assert decoder.leftover == b'data: {"cho'

    def test_data_line_without_blank_line_is_not_an_event(self) -> None:
        decoder = SSEDecoder()
        assert decoder.feed(b"data: x\n") == []
        assert decoder.leftover == b"x"


def feed_at(m: StreamMeasurement, timed: list[tuple[float, bytes]]) -> StreamMeasurement:
    for t, chunk in timed:
        m.feed(chunk, t)
    return m


class TestStreamMeasurement:
    def test_vllm_bench_definitions(self) -> None:
        # start 10.0; role chunk and first token at 10.1, tokens at 10.15, 10.25, 10.30;
        # the usage-only event at 10.5 and [DONE] at 10.6 must not count in E2EL
        m = feed_at(
            StreamMeasurement(10.0),
            [
                (10.1, chat_event(None, 0, role=True) + chat_event("a", 1)),
                (10.15, chat_event("b", 2)),
                (10.25, chat_event("c", 3)),
                (10.30, chat_event("d", 4)),
                (10.5, usage_event(4)),
                (10.6, DONE),
            ],
        )
        out = m.finish()
        assert out.ok and out.error is None
        assert out.ttft_ms == pytest.approx(100.0)
        assert out.e2el_ms == pytest.approx(300.0)
        assert out.output_tokens == 4 and out.prompt_tokens == 7
        # per event gaps, the zero gap between the role chunk and the first token included
        assert out.itl_ms == pytest.approx([0.0, 50.0, 100.0, 50.0])
        assert out.tpot_ms == pytest.approx((300.0 - 100.0) / 3)

    def test_one_token_has_no_tpot_and_no_itl(self) -> None:
        out = feed_at(
            StreamMeasurement(0.0), [(0.2, chat_event("a", 1)), (0.3, usage_event(1) + DONE)]
        ).finish()
        assert out.ok and out.output_tokens == 1
        assert out.tpot_ms is None and out.itl_ms == []
        assert out.ttft_ms == pytest.approx(200.0) == out.e2el_ms

    def test_without_usage_tokens_are_counted_from_text_events(self) -> None:
        def bare(text: str) -> bytes:
            return b'data: {"choices":[{"text":"' + text.encode() + b'"}]}\n\n'

        out = feed_at(
            StreamMeasurement(0.0),
            [(0.1, bare("a")), (0.2, bare("b")), (0.4, bare("c") + DONE)],
        ).finish()
        assert out.ok and out.output_tokens == 3 and out.prompt_tokens is None
        assert out.tpot_ms == pytest.approx(150.0)

    def test_usage_counts_several_tokens_per_event(self) -> None:
        out = feed_at(
            StreamMeasurement(0.0),
            [(0.1, chat_event("ab", 2)), (0.3, chat_event("cde", 5)), (0.31, DONE)],
        ).finish()
        assert out.output_tokens == 5
        assert out.itl_ms == pytest.approx([200.0])
        assert out.tpot_ms == pytest.approx(200.0 / 4)

    def test_error_event_mid_stream_is_a_failure(self) -> None:
        error = b'data: {"error": {"message": "EngineCore encountered an issue.", "code": 500}}\n\n'
        out = feed_at(
            StreamMeasurement(0.0), [(0.1, chat_event("a", 1)), (0.2, error), (0.3, DONE)]
        ).finish()
        assert not out.ok
        assert out.error == "error event in stream: EngineCore encountered an issue."

    def test_stream_without_done_is_truncated(self) -> None:
        out = feed_at(
            StreamMeasurement(0.0), [(0.1, chat_event("a", 1)), (0.2, b'data: {"choi')]
        ).finish()
        assert not out.ok
        assert out.error is not None
        assert out.error.startswith("stream ended without [DONE] after 1 events")
        assert "choi" in out.error

    def test_broken_connection_names_the_transport_error(self) -> None:
        m = feed_at(StreamMeasurement(0.0), [(0.1, chat_event("a", 1))])
        out = m.finish(broken="ConnectionResetError: reset by peer")
        assert not out.ok and out.error == (
            "stream broken after 1 events: ConnectionResetError: reset by peer"
        )

    def test_malformed_event_is_a_failure(self) -> None:
        out = feed_at(StreamMeasurement(0.0), [(0.1, b"data: not json\n\n" + DONE)]).finish()
        assert not out.ok and out.error is not None and "malformed" in out.error

    def test_text_mentioning_error_is_not_an_error_event(self) -> None:
        out = feed_at(
            StreamMeasurement(0.0),
            [(0.1, chat_event('{"error": "none"}', 1)), (0.2, chat_event("b", 2) + DONE)],
        ).finish()
        assert out.ok and out.output_tokens == 2

    def test_decoded_stops_at_the_error_event(self) -> None:
        error = b'data: {"error": {"message": "boom", "code": 500}}\n\n'
        m = feed_at(
            StreamMeasurement(0.0),
            [(0.1, chat_event("a", 1)), (0.2, error), (0.3, chat_event("b", 2) + DONE)],
        )
        read = m.decoded()
        assert read.choice_times == [0.1] and read.error is not None and read.done
        assert read.failure() == "error event in stream: boom"

    def test_done_without_any_choice_is_a_failure(self) -> None:
        out = feed_at(StreamMeasurement(0.0), [(0.1, usage_event(0) + DONE)]).finish()
        assert not out.ok and out.error == "stream ended without any choices event"


class TestErrors:
    def test_openai_envelope(self) -> None:
        body = (
            b'{"error":{"message":"The model `nope` does not exist.",'
            b'"type":"NotFoundError","code":404}}'
        )
        out = http_failure(404, body, "application/json")
        assert not out.ok and out.error == "HTTP 404: The model `nope` does not exist."

    def test_flat_unauthorized(self) -> None:
        assert http_failure(401, b'{"error":"Unauthorized"}').error == "HTTP 401: Unauthorized"

    @pytest.mark.parametrize(
        ("body", "text"),
        [
            (b'{"object":"error","message":"old flat shape","param":null}', "old flat shape"),
            (b'{"error":{"detail":"nested detail"}}', "nested detail"),
            (b'{"detail":"Not Found"}', "Not Found"),  # a proxy's, not vLLM's
            (b"not json at all", "not json at all"),
        ],
    )
    def test_every_error_shape_the_doctor_reads_too(self, body: bytes, text: str) -> None:
        assert error_text(body) == text

    def test_html_error_page_gives_its_title(self) -> None:
        page = (
            b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
            b"<body>nginx</body></html>"
        )
        assert error_text(page, "text/html") == "502 Bad Gateway"
        assert http_failure(502, page, "").error == "HTTP 502: 502 Bad Gateway"

    def test_html_without_title_is_stripped_of_tags(self) -> None:
        assert error_text(b"<html><body><h1>Oops</h1> down</body></html>") == "Oops down"

    def test_api_key_in_an_error_is_redacted(self) -> None:
        out = http_failure(400, b'{"error":{"message":"Authorization: Bearer sk-abcdefghijkl"}}')
        assert out.error is not None and "sk-abcdefghijkl" not in out.error


class TestNonStreamed:
    def test_answer_gives_e2el_and_tokens(self) -> None:
        body = json.dumps(
            {
                "choices": [{"message": {"content": "hi"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 9},
            }
        ).encode()
        out = measure_complete(1.0, 1.25, body)
        assert out.ok and out.e2el_ms == pytest.approx(250.0)
        assert (out.prompt_tokens, out.output_tokens, out.ttft_ms) == (5, 9, None)

    def test_answer_without_choices_fails(self) -> None:
        assert not measure_complete(0, 1, b'{"error":{"message":"x"}}').ok
