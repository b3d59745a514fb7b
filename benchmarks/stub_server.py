"""A minimal OpenAI-compatible streaming server that answers as fast as Python can, or on a clock.

It exists to measure load generators, not models: every answer is made of prebuilt bytes, so
what limits a benchmark against it is the client. Standard library only (asyncio Protocols,
HTTP/1.1 keep-alive, chunked transfer encoding).

  python -m benchmarks.stub_server --port 8123 [--ttft-ms 50] [--itl-ms 10] [--slots 2]

Endpoints:
- `GET /v1/models`, `GET /health`, `GET /version`: what vLLM answers (model `stub`).
- `POST /v1/chat/completions`, `POST /v1/completions`: `max_tokens` (or
  `max_completion_tokens`) token events, one token per event, as vLLM streams them: the chat
  stream starts with a role event (`delta.role`, no token), the last token event carries
  `finish_reason: "length"`, then, with `stream_options.include_usage`, a usage-only event
  (`choices: []`), then `data: [DONE]`. With `continuous_usage_stats` every event carries
  cumulative usage. Without `"stream": true`, one JSON answer.
- `GET /stub/stats`: counters (requests, token events, bytes) and the server's own timing
  truth: for every timed event, how late it was written against its schedule.
- `POST /stub/reset`: zero the counters.

Timing: the first event (and the chat role event with it) is written `ttft_ms` after the
request was read, then one token event every `itl_ms` (scheduled on the previous event's real
write time, so each gap is `itl_ms` plus the loop's lateness, which /stub/stats reports).
With both at 0, the whole answer is one write. With `--slots S` at most S timed streams are
answered at once; the others wait in arrival order for a slot, and their schedule starts when
they get one (a queueing law: S slots of service time T answer c closed-loop clients in about
ceil(c/S) * T each).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MODEL = "stub"
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_TOKENS = 100_000
LATENESS_SAMPLES = 200_000  # kept for percentiles; the sums count every event


@dataclass
class Lateness:
    """How far real write times fell behind their schedule, in ms."""

    n: int = 0
    total: float = 0.0
    worst: float = 0.0
    samples: list[float] = field(default_factory=list)

    def add(self, ms: float) -> None:
        self.n += 1
        self.total += ms
        self.worst = max(self.worst, ms)
        if len(self.samples) < LATENESS_SAMPLES:
            self.samples.append(ms)

    def summary(self) -> dict[str, float | int | None]:
        if not self.n:
            return {"n": 0, "mean": None, "p50": None, "p99": None, "max": None}
        data = sorted(self.samples)

        def pct(p: float) -> float:
            rank = (len(data) - 1) * p / 100.0
            lo = math.floor(rank)
            hi = min(lo + 1, len(data) - 1)
            return data[lo] + (data[hi] - data[lo]) * (rank - lo)

        return {
            "n": self.n,
            "mean": self.total / self.n,
            "p50": pct(50),
            "p99": pct(99),
            "max": self.worst,
        }


@dataclass
class Stats:
    requests: int = 0
    completed: int = 0
    token_events: int = 0
    bytes_sent: int = 0
    disconnects: int = 0
    connections: int = 0
    ttft_late: Lateness = field(default_factory=Lateness)
    itl_late: Lateness = field(default_factory=Lateness)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "completed": self.completed,
            "token_events": self.token_events,
            "bytes_sent": self.bytes_sent,
            "disconnects": self.disconnects,
            "connections": self.connections,
            "ttft_lateness_ms": self.ttft_late.summary(),
            "itl_lateness_ms": self.itl_late.summary(),
            "monotonic": time.monotonic(),
            "pid": os.getpid(),
        }


@dataclass(frozen=True)
class Timing:
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    slots: int = 0  # 0: no limit

    @property
    def instant(self) -> bool:
        return self.ttft_ms <= 0 and self.itl_ms <= 0


def _chunk(data: bytes) -> bytes:
    """One piece of a chunked-encoding body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(obj: dict[str, Any]) -> bytes:
    return _chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


DONE_EVENT = _chunk(b"data: [DONE]\n\n")
LAST_CHUNK = b"0\r\n\r\n"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


@dataclass(frozen=True)
class Answer:
    """A whole streamed answer as bytes: head, the events that open it, one per token, tail."""

    head: bytes
    first: bytes  # the chat role event, or b""
    tokens: tuple[bytes, ...]
    tail: bytes  # usage event, [DONE], end of body


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
    }


def build_stream(chat: bool, n: int, prompt: int, usage: bool, continuous: bool) -> Answer:
    created = int(time.time())
    if chat:
        base: dict[str, Any] = {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
        }
    else:
        base = {"id": "cmpl-stub", "object": "text_completion", "created": created, "model": MODEL}

    def event(choice: dict[str, Any] | None, completion: int) -> bytes:
        obj = {**base, "choices": [{"index": 0, **choice}] if choice else []}
        if continuous or (choice is None and usage):
            obj["usage"] = _usage(prompt, completion)
        return _event(obj)

    first = b""
    if chat:
        first = event({"delta": {"role": "assistant", "content": ""}, "finish_reason": None}, 0)
    tokens = []
    for i in range(1, n + 1):
        finish = "length" if i == n else None
        text = " tok"
        choice = {"delta": {"content": text}} if chat else {"text": text}
        tokens.append(event({**choice, "finish_reason": finish}, i))
    tail = (event(None, n) if usage else b"") + DONE_EVENT + LAST_CHUNK
    return Answer(SSE_HEAD, first, tuple(tokens), tail)


def json_response(status: int, obj: Any, reason: str = "OK") -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        reason.encode(),
        len(body),
        body,
    )


def text_response(status: int, text: str, reason: str = "OK") -> bytes:
    body = text.encode()
    return b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        reason.encode(),
        len(body),
        body,
    )


def _error(status: int, message: str, reason: str) -> bytes:
    return json_response(
        status,
        {"error": {"message": message, "type": reason.replace(" ", ""), "code": status}},
        reason,
    )


MODELS = json_response(
    200,
    {
        "object": "list",
        "data": [
            {"id": MODEL, "object": "model", "owned_by": "stub", "root": MODEL, "parent": None}
        ],
    },
)


def _count_prompt(request: dict[str, Any]) -> int:
    """A rough token count (whitespace words): the stub has no tokenizer."""
    if "messages" in request:
        messages = request.get("messages") or []
        text = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    else:
        text = str(request.get("prompt", ""))
    return max(1, len(text.split()))


def _complete(chat: bool, n: int, prompt: int) -> bytes:
    text = " tok" * n
    choice: dict[str, Any] = (
        {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
    )
    return json_response(
        200,
        {
            "id": "stub",
            "object": "chat.completion" if chat else "text_completion",
            "model": MODEL,
            "choices": [{"index": 0, **choice, "finish_reason": "length"}],
            "usage": _usage(prompt, n),
        },
    )


class StubState:
    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.stats = Stats()
        self.busy_slots = 0
        self.waiting: collections.deque[Callable[[], None]] = collections.deque()
        self._answers: dict[tuple[bool, int, int, bool, bool], Answer] = {}

    def take_slot(self, start: Callable[[], None]) -> None:
        if self.timing.slots and self.busy_slots >= self.timing.slots:
            self.waiting.append(start)
            return
        self.busy_slots += 1
        start()

    def free_slot(self) -> None:
        self.busy_slots -= 1
        if self.waiting:
            self.busy_slots += 1
            self.waiting.popleft()()

    def answer(self, chat: bool, n: int, prompt: int, usage: bool, continuous: bool) -> Answer:
        key = (chat, n, prompt, usage, continuous)
        found = self._answers.get(key)
        if found is None:
            if len(self._answers) > 256:
                self._answers.clear()
            found = self._answers[key] = build_stream(chat, n, prompt, usage, continuous)
        return found


class StubProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: requests are answered one after another (no pipelining)."""

    def __init__(self, state: StubState) -> None:
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False  # a timed answer is still being written
        self.timer: asyncio.TimerHandle | None = None
        self.close_after = False
        self.holds_slot = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.state.stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.state.stats.disconnects += 1
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._serve()

    def _serve(self) -> None:
        while self.transport is not None and not self.busy:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self._send_and_close(text_response(431, "headers too large", "Too Large"))
                return
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
            except ValueError:
                self._send_and_close(text_response(400, "bad request line", "Bad Request"))
                return
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                lname = name.strip().lower()
                if lname == "content-length":
                    length = int(value.strip() or 0)
                elif lname == "connection":
                    close = value.strip().lower() == "close"
                elif lname == "transfer-encoding":
                    self._send_and_close(text_response(411, "length required", "Length Required"))
                    return
            if length > MAX_BODY_BYTES:
                self._send_and_close(text_response(413, "body too large", "Too Large"))
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.close_after = close
            self._route(method, target.split("?", 1)[0], body)
            if self.close_after and not self.busy:
                self._close()

    def _send_and_close(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)
            self.state.stats.bytes_sent += len(data)

    def _route(self, method: str, path: str, body: bytes) -> None:
        if method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            self._generate(path == "/v1/chat/completions", body)
        elif method == "GET" and path == "/v1/models":
            self._write(MODELS)
        elif method == "GET" and path == "/health":
            self._write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        elif method == "GET" and path == "/version":
            self._write(json_response(200, {"version": "stub"}))
        elif method == "GET" and path == "/stub/stats":
            self._write(json_response(200, self.state.stats.as_dict()))
        elif method == "POST" and path == "/stub/reset":
            self.state.stats = Stats()
            self._write(json_response(200, {"reset": True}))
        else:
            self._write(_error(404, f"no route {method} {path}", "Not Found"))

    def _generate(self, chat: bool, body: bytes) -> None:
        try:
            request = json.loads(body)
            n = int(request.get("max_tokens") or request.get("max_completion_tokens") or 16)
        except (ValueError, TypeError, AttributeError):
            self._write(_error(400, "body is not a JSON request", "Bad Request"))
            return
        if request.get("model") not in (MODEL, None):
            self._write(
                _error(404, f"The model `{request.get('model')}` does not exist.", "Not Found")
            )
            return
        if not 1 <= n <= MAX_TOKENS:
            self._write(_error(400, f"max_tokens must be 1..{MAX_TOKENS}", "Bad Request"))
            return
        stats = self.state.stats
        stats.requests += 1
        prompt = _count_prompt(request)
        if not request.get("stream"):
            self._write(_complete(chat, n, prompt))
            stats.completed += 1
            stats.token_events += 1
            return
        options = request.get("stream_options") or {}
        answer = self.state.answer(
            chat,
            n,
            prompt,
            bool(options.get("include_usage")),
            bool(options.get("continuous_usage_stats")),
        )
        timing = self.state.timing
        if timing.instant:
            self._write(b"".join((answer.head, answer.first, *answer.tokens, answer.tail)))
            stats.completed += 1
            stats.token_events += n
            return
        self._write(answer.head)
        self.busy = True

        def start() -> None:
            self.holds_slot = True
            if self.transport is None:  # left while waiting
                self._release()
                return
            self._stream(answer, 0, time.perf_counter() + timing.ttft_ms / 1000.0, is_first=True)

        self.state.take_slot(start)

    def _release(self) -> None:
        if self.holds_slot:
            self.holds_slot = False
            self.state.free_slot()

    def _stream(self, answer: Answer, i: int, due: float, *, is_first: bool = False) -> None:
        """Write token event i (and the rest when it is the last), then schedule the next."""
        self.timer = None
        if self.transport is None:
            return
        now = time.perf_counter()
        if now < due:  # woke early (timer granularity): wait the rest
            self.timer = self.loop.call_at(
                self.loop.time() + (due - now), self._next(answer, i, due, is_first)
            )
            return
        late_ms = (now - due) * 1000.0
        stats = self.state.stats
        (stats.ttft_late if is_first else stats.itl_late).add(late_ms)
        data = answer.tokens[i]
        if is_first and answer.first:
            data = answer.first + data
        last = i == len(answer.tokens) - 1
        if last:
            data += answer.tail
        self._write(data)
        stats.token_events += 1
        if last:
            stats.completed += 1
            self.busy = False
            self._release()
            if self.close_after:
                self._close()
            elif self.buffer:
                self._serve()
            return
        nxt = now + self.state.timing.itl_ms / 1000.0
        self.timer = self.loop.call_at(
            self.loop.time() + self.state.timing.itl_ms / 1000.0,
            self._next(answer, i + 1, nxt, False),
        )

    def _next(self, answer: Answer, i: int, due: float, is_first: bool) -> Callable[[], None]:
        return lambda: self._stream(answer, i, due, is_first=is_first)


async def serve(host: str, port: int, timing: Timing, ready: Callable[[int], None]) -> None:
    loop = asyncio.get_running_loop()
    state = StubState(timing)
    server = await loop.create_server(
        lambda: StubProtocol(state), host, port, backlog=1024, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    ready(int(bound))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--itl-ms", type=float, default=0.0)
    parser.add_argument("--slots", type=int, default=0, help="timed streams at once (0: any)")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the stub server only listens on loopback")
    timing = Timing(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, slots=max(0, args.slots))

    def ready(port: int) -> None:
        print(f"stub server listening on http://{args.host}:{port}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, timing, ready))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
