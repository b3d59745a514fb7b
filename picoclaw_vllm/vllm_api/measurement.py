"""One request's measurement, following `vllm bench serve` (bench-metrics), for every client
of vLLM here: the Locust load profile, the doctor's streamed probes and the benchmarks.

While a response streams, `StreamMeasurement.feed` only splits SSE events and notes each
event's arrival time (any monotonic clock, the same as `start`'s); JSON is parsed once the
stream has ended (`decoded`), so the timing path stays cheap. `finish` then applies the
definitions:

- TTFT: first event with non-empty `choices` minus the start taken just before sending (vLLM's
  role-only first chunk counts: vLLM sends it with the first token's output);
- ITL: gaps between consecutive `choices`-bearing events (per event, not per token);
- E2EL: last `choices`-bearing event minus start (usage-only event and `[DONE]` excluded);
- output tokens: the last `usage.completion_tokens` seen; without any usage, the number of
  `choices`-bearing events that carry text;
- TPOT: (E2EL - TTFT) / (output_tokens - 1) when output_tokens > 1.

Anything that is not a complete, well-formed answer is a failure with its reason: an HTTP
error (with the error's message, or an HTML page's title), a stream that ends without
`[DONE]`, an `{"error": ...}` event mid-stream, an event that is not JSON.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.picoclaw import tool_answers
from picoclaw_vllm.redact import redact
from picoclaw_vllm.vllm_api.sse import DONE, SSEDecoder
from picoclaw_vllm.vllm_api.vllm_error import read_error

REASON_CHARS = 300


@dataclass
class RequestOutcome:
    ok: bool
    error: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    ttft_ms: float | None = None
    e2el_ms: float | None = None
    tpot_ms: float | None = None
    itl_ms: list[float] = field(default_factory=list)
    answer_kind: str | None = None  # "tool_call" or "text"
    cached_tokens: int | None = None  # usage.prompt_tokens_details (vLLM reports it on request)
    # picoclaw.tool_answers.AnswerKind against PicoClaw's tools: tool_call, text,
    # markup_in_content, invalid_arguments or cut_by_length
    answer_score: str | None = None


def failure(reason: str) -> RequestOutcome:
    return RequestOutcome(ok=False, error=redact(reason)[:REASON_CHARS])


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(rb"<[^>]+>")


def error_text(body: bytes, content_type: str = "") -> str:
    """The readable part of an error body: an OpenAI/vLLM error message, or an HTML title."""
    text = body.strip()
    if b"html" in content_type.lower().encode() or text[:15].lower().startswith(
        (b"<!doctype", b"<html")
    ):
        title = _TITLE.search(text)
        raw = title.group(1) if title else _TAG.sub(b" ", text)
        return " ".join(raw.decode("utf-8", "replace").split()) or "HTML error page"
    decoded = text.decode("utf-8", "replace")
    error = read_error(decoded)
    if error is not None:
        return error.message
    try:
        data = json.loads(text)
    except ValueError:
        return decoded
    if isinstance(data, dict):  # not vLLM's shape: e.g. a proxy's {"detail": "Not Found"}
        return str(data.get("detail") or data)
    return str(data)


def http_failure(status: int, body: bytes, content_type: str = "") -> RequestOutcome:
    return failure(f"HTTP {status}: {error_text(body, content_type)}")


def _usage(event: dict[str, Any]) -> dict[str, Any] | None:
    usage = event.get("usage")
    return usage if isinstance(usage, dict) else None


def _has_text(choices: list[Any]) -> bool:
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    delta = first.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else first.get("text")
    return bool(text)


def _has_tool_call(choices: list[Any]) -> bool:
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    part = first.get("delta") or first.get("message")
    return isinstance(part, dict) and bool(part.get("tool_calls"))


def _cached(usage: dict[str, Any] | None) -> int | None:
    details = usage.get("prompt_tokens_details") if usage else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return cached if isinstance(cached, int) else None


class StreamMeasurement:
    """Feed it the raw bytes of a streamed answer as they arrive, then call `finish`."""

    def __init__(self, start: float, *, schema: bool = True) -> None:
        self.start = start
        self.schema = schema  # score the answer's arguments against the tool's schema
        self._decoder = SSEDecoder()
        self._events: list[tuple[float, bytes]] = []
        self.done = False

    def feed(self, chunk: bytes, now: float) -> None:
        for payload in self._decoder.feed(chunk):
            if payload == DONE:
                self.done = True
            else:
                self._events.append((now, payload))

    def payloads(self, limit: int) -> list[bytes]:
        """The first `limit` event payloads, as they came (for evidence)."""
        return [payload for _, payload in self._events[:limit]]

    def decoded(self) -> StreamEvents:
        """What the events so far say, read up to the first error or malformed event."""
        read = StreamEvents(done=self.done, leftover=self._decoder.leftover)
        for t, payload in self._events:
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                event = None
            if not isinstance(event, dict):
                read.malformed = payload
                break
            if "error" in event:
                read.error = payload
                break
            read.usage = _usage(event) or read.usage
            choices = event.get("choices")
            if choices:
                read.choice_times.append(t)
                read.text_events += _has_text(choices)
                read.tool_call = read.tool_call or _has_tool_call(choices)
                read.answer.add(choices)
        return read

    def finish(self, broken: str | None = None) -> RequestOutcome:
        """The outcome; `broken` names a transport error that ended the stream early."""
        read = self.decoded()
        reason = read.failure(broken)
        if reason is not None:
            return failure(reason)
        outcome = timings(self.start, read.choice_times, read.usage, read.text_events)
        outcome.answer_kind = "tool_call" if read.tool_call else "text"
        outcome.answer_score = read.answer.score(schema=self.schema)
        return outcome


@dataclass
class StreamEvents:
    """A stream's decoded events: the arrival times of its `choices`-bearing events (the
    token-bearing ones, by vLLM's definition), and what kept it from being a whole answer."""

    done: bool = False  # `[DONE]` came
    leftover: bytes = b""  # an event the stream never finished
    choice_times: list[float] = field(default_factory=list)
    text_events: int = 0
    tool_call: bool = False
    usage: dict[str, Any] | None = None
    error: bytes | None = None  # the payload of vLLM's `{"error": ...}` event
    answer: AnswerAssembly = field(default_factory=lambda: AnswerAssembly())
    malformed: bytes | None = None  # the payload of an event that is not a JSON object

    def ttft(self, start: float) -> float | None:
        return self.choice_times[0] - start if self.choice_times else None

    def gaps(self) -> list[float]:
        """ITL: the gaps between consecutive `choices`-bearing events (clock units)."""
        return [b - a for a, b in itertools.pairwise(self.choice_times)]

    def failure(self, broken: str | None = None) -> str | None:
        """Why this is not a complete, well-formed answer (None when it is); `broken` names a
        transport error that ended the stream early."""
        if self.malformed is not None:
            return f"malformed stream event: {self.malformed[:120]!r}"
        if self.error is not None:
            return f"error event in stream: {error_text(self.error)}"
        return self.incomplete(broken)

    def incomplete(self, broken: str | None = None) -> str | None:
        """Why the stream, error-free so far, did not end as a whole answer."""
        events = len(self.choice_times)
        if broken is not None:
            return f"stream broken after {events} events: {broken}"
        if not self.done:
            left = self.leftover
            tail = f" (unfinished event: {left[:80]!r})" if left else ""
            return f"stream ended without [DONE] after {events} events{tail}"
        if not events:
            return "stream ended without any choices event"
        return None


def timings(
    start: float, choice_times: list[float], usage: dict[str, Any] | None, text_events: int
) -> RequestOutcome:
    ttft = choice_times[0] - start
    e2el = choice_times[-1] - start
    itl = [(b - a) * 1000.0 for a, b in itertools.pairwise(choice_times)]
    output = usage.get("completion_tokens") if usage else None
    if not isinstance(output, int):
        output = text_events
    prompt = usage.get("prompt_tokens") if usage else None
    tpot = (e2el - ttft) * 1000.0 / (output - 1) if output > 1 else None
    return RequestOutcome(
        ok=True,
        prompt_tokens=prompt if isinstance(prompt, int) else None,
        output_tokens=output,
        ttft_ms=ttft * 1000.0,
        e2el_ms=e2el * 1000.0,
        tpot_ms=tpot,
        itl_ms=itl,
        cached_tokens=_cached(usage),
    )


def measure_complete(
    start: float, end: float, body: bytes, *, schema: bool = True
) -> RequestOutcome:
    """A non-streamed answer: only E2EL and token counts can be known."""
    try:
        data = json.loads(body)
    except ValueError:
        return failure(f"answer is not JSON: {body[:120]!r}")
    if not isinstance(data, dict) or not data.get("choices"):
        return failure(f"answer without choices: {error_text(body)}")
    usage = _usage(data) or {}
    output = usage.get("completion_tokens")
    prompt = usage.get("prompt_tokens")
    return RequestOutcome(
        ok=True,
        prompt_tokens=prompt if isinstance(prompt, int) else None,
        output_tokens=output if isinstance(output, int) else None,
        e2el_ms=(end - start) * 1000.0,
        answer_kind="tool_call" if _has_tool_call(data["choices"]) else "text",
        cached_tokens=_cached(usage),
        answer_score=_score_choice(data["choices"][0], schema),
    )


def _score_choice(choice: Any, schema: bool) -> str | None:
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        return None
    finish = choice.get("finish_reason")
    tools = picoclaw_request.default_tools()
    return str(tool_answers.score(choice["message"], finish, tools, schema=schema).kind)


@dataclass
class AnswerAssembly:
    """A streamed answer put back together: content, tool calls (by index, their argument
    pieces joined) and finish_reason, as PicoClaw's client assembles them."""

    content: str = ""
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None

    def add(self, choices: list[Any]) -> None:
        first = choices[0] if isinstance(choices[0], dict) else {}
        self.finish_reason = first.get("finish_reason") or self.finish_reason
        delta = first.get("delta")
        if not isinstance(delta, dict):
            return
        if isinstance(delta.get("content"), str):
            self.content += delta["content"]
        for part in delta.get("tool_calls") or []:
            if not isinstance(part, dict):
                continue
            index = part.get("index", len(self.calls))
            call = self.calls.setdefault(index, {"function": {"name": "", "arguments": ""}})
            raw = part.get("function")
            fn: dict[str, Any] = raw if isinstance(raw, dict) else {}
            call["function"]["name"] += fn.get("name") or ""
            call["function"]["arguments"] += fn.get("arguments") or ""

    def score(self, *, schema: bool = True) -> str:
        message = {"content": self.content, "tool_calls": list(self.calls.values())}
        tools = picoclaw_request.default_tools()
        return str(tool_answers.score(message, self.finish_reason, tools, schema=schema).kind)
