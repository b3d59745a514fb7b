"""Reading an answer from Locust's FastHttpUser (geventhttpclient) as bytes arrive.

geventhttpclient's public `read(n)` waits until n bytes are buffered, which would delay event
timestamps, so `iter_body` hands over whatever the socket has delivered, using the
response's parser buffer directly (the same steps its own `read` takes).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from picoclaw_vllm.vllm_api.measurement import (
    RequestOutcome,
    StreamMeasurement,
    failure,
    http_failure,
    measure_complete,
)


class ConnectionClosedEarly(ConnectionError):
    pass


def iter_body(raw: Any) -> Iterator[bytes]:
    """Body bytes of a geventhttpclient response, each chunk as soon as it has arrived."""
    buffer: bytearray = raw._body_buffer
    while True:
        if buffer:
            data = bytes(buffer)
            del buffer[:]
            yield data
            continue
        if raw.message_complete:
            return
        sock = raw._sock
        if sock is None:
            raise ConnectionClosedEarly("connection closed before the answer ended")
        try:
            received = sock.recv(raw.block_size)
            if not received:
                raise ConnectionClosedEarly("connection closed before the answer ended")
            raw.feed(received)
        except BaseException:
            raw.release()
            raise


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_body(response: Any) -> bytes:
    """The rest of the body (an error answer may have been read already by the client)."""
    raw = getattr(response, "_response", None)
    body = b""
    if raw is not None:
        with contextlib.suppress(Exception):
            body = b"".join(iter_body(raw))
    if not body:
        with contextlib.suppress(Exception):
            body = bytes(response.content or b"")
    return body


def read_answer(
    response: Any, start: float, *, stream: bool, forced: bool = False
) -> tuple[RequestOutcome, float]:
    """The outcome of one request and the perf_counter time its answer ended. A `forced`
    call's answer (a named tool_choice) is scored by its form only: under structured output
    its arguments are the model's choice (vLLM 0.32's hermes tag lets a random model write
    `null`), so they prove nothing of the parser."""
    schema = not forced
    status = int(response.status_code or 0)
    if status == 0:
        error = getattr(response, "error", None)
        return failure(_reason(error) if error else "no response"), time.perf_counter()
    content_type = str((response.headers or {}).get("content-type", ""))
    if status != 200:
        return http_failure(status, read_body(response), content_type), time.perf_counter()
    if not stream:
        body = read_body(response)
        end = time.perf_counter()
        return measure_complete(start, end, body, schema=schema), end
    if "text/event-stream" not in content_type:
        body = read_body(response)
        return failure(f"not an event stream ({content_type}): {body[:200]!r}"), time.perf_counter()
    measurement = StreamMeasurement(start, schema=schema)
    broken = None
    try:
        for chunk in iter_body(response._response):
            measurement.feed(chunk, time.perf_counter())
    except Exception as e:
        broken = _reason(e)
    return measurement.finish(broken), time.perf_counter()
