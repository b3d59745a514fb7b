"""One request's measurement, following `vllm bench serve` (see run_layout and bench-metrics).

While a response streams, `StreamMeasurement.feed` only splits SSE events and notes each
event's arrival time (`time.perf_counter()`); JSON is parsed once the stream has ended, so the
timing path stays cheap. `finish` then applies the definitions:

- TTFT: first event with non-empty `choices` minus the start taken just before sending;
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

from loadtests.sse import DONE, SSEDecoder
from picoclaw_vllm.redact import redact

REASON_CHARS = 300


@dataclass
class Outcome:
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


def failure(reason: str) -> Outcome:
    return Outcome(ok=False, error=redact(reason)[:REASON_CHARS])


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
    try:
        data = json.loads(text)
    except ValueError:
        return text.decode("utf-8", "replace")
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("detail") or err)
        return str(err)
    return str(data)


def http_failure(status: int, body: bytes, content_type: str = "") -> Outcome:
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

    def __init__(self, start: float) -> None:
        self.start = start
        self._decoder = SSEDecoder()
        self._events: list[tuple[float, bytes]] = []
        self.done = False

    def feed(self, chunk: bytes, now: float) -> None:
        for payload in self._decoder.feed(chunk):
            if payload == DONE:
                self.done = True
            else:
                self._events.append((now, payload))

    @property
    def events(self) -> int:
        return len(self._events)

    def finish(self, broken: str | None = None) -> Outcome:
        """The outcome; `broken` names a transport error that ended the stream early."""
        choice_times: list[float] = []
        text_events = 0
        tool_call = False
        usage: dict[str, Any] | None = None
        for t, payload in self._events:
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return failure(f"malformed stream event: {payload[:120]!r}")
            if not isinstance(event, dict):
                return failure(f"malformed stream event: {payload[:120]!r}")
            if "error" in event:
                return failure(f"error event in stream: {error_text(payload)}")
            usage = _usage(event) or usage
            choices = event.get("choices")
            if choices:
                choice_times.append(t)
                text_events += _has_text(choices)
                tool_call = tool_call or _has_tool_call(choices)
        if broken is not None:
            return failure(f"stream broken after {len(choice_times)} events: {broken}")
        if not self.done:
            left = self._decoder.leftover
            tail = f" (unfinished event: {left[:80]!r})" if left else ""
            return failure(f"stream ended without [DONE] after {len(choice_times)} events{tail}")
        if not choice_times:
            return failure("stream ended without any choices event")
        outcome = timings(self.start, choice_times, usage, text_events)
        outcome.answer_kind = "tool_call" if tool_call else "text"
        return outcome


def timings(
    start: float, choice_times: list[float], usage: dict[str, Any] | None, text_events: int
) -> Outcome:
    ttft = choice_times[0] - start
    e2el = choice_times[-1] - start
    itl = [(b - a) * 1000.0 for a, b in itertools.pairwise(choice_times)]
    output = usage.get("completion_tokens") if usage else None
    if not isinstance(output, int):
        output = text_events
    prompt = usage.get("prompt_tokens") if usage else None
    tpot = (e2el - ttft) * 1000.0 / (output - 1) if output > 1 else None
    return Outcome(
        ok=True,
        prompt_tokens=prompt if isinstance(prompt, int) else None,
        output_tokens=output,
        ttft_ms=ttft * 1000.0,
        e2el_ms=e2el * 1000.0,
        tpot_ms=tpot,
        itl_ms=itl,
        cached_tokens=_cached(usage),
    )


def measure_complete(start: float, end: float, body: bytes) -> Outcome:
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
    return Outcome(
        ok=True,
        prompt_tokens=prompt if isinstance(prompt, int) else None,
        output_tokens=output if isinstance(output, int) else None,
        e2el_ms=(end - start) * 1000.0,
        answer_kind="tool_call" if _has_tool_call(data["choices"]) else "text",
        cached_tokens=_cached(usage),
    )
