"""HTTP facts about the server: what each endpoint answered, or why nothing answered.

Requests are shaped the way PicoClaw shapes them (path, headers, body); every network
error is mapped to a named `ConnectionFailure`, never raised.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from diagnostics.deadline import Deadline
from picoclaw_vllm import urls
from picoclaw_vllm.picoclaw.request import DEFAULT_USER_AGENT
from picoclaw_vllm.redact import redact
from picoclaw_vllm.vllm_api.measurement import StreamEvents, StreamMeasurement
from picoclaw_vllm.vllm_api.vllm_error import read_error

BODY_EXCERPT_CHARS = 500
RAW_EVENTS = 5  # a stream's first events kept as its answer's body (evidence)
# vLLM's uvicorn closes a connection idle for 5 s (VLLM_HTTP_TIMEOUT_KEEP_ALIVE): reusing one
# near that moment races its close ("closed without an answer"), so idle ones go sooner.
KEEPALIVE_EXPIRY_S = 2.0


@dataclass(frozen=True)
class ConnectionFailure:
    kind: str  # refused, dns, connect_timeout, no_answer, closed, tls, wrong_scheme, protocol,
    # stream_timeout, deadline, ...
    message: str


@dataclass(frozen=True)
class HttpAnswer:
    method: str
    url: str
    status: int | None = None
    body: str = ""
    content_type: str = ""
    elapsed_s: float = 0.0
    failure: ConnectionFailure | None = None
    location: str = ""  # where a redirect points

    @property
    def redirect(self) -> bool:
        return self.status is not None and 300 <= self.status < 400

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def excerpt(self) -> str:
        text = " ".join(self.body.split())
        return text[:BODY_EXCERPT_CHARS] + ("..." if len(text) > BODY_EXCERPT_CHARS else "")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def is_html(self) -> bool:
        return "html" in self.content_type or self.body.lstrip()[:15].lower().startswith(
            ("<!doctype", "<html")
        )

    def error_message(self) -> str:
        """vLLM's error text (see vllm_error), else the body's excerpt."""
        error = read_error(self.body)
        return error.message if error is not None else self.excerpt

    def describe(self) -> str:
        if self.failure is not None:
            return f"{self.method} {self.url}: {self.failure.message}"
        if self.redirect:
            return f"{self.method} {self.url} -> {self.status} redirect to {self.location or '?'}"
        return f"{self.method} {self.url} -> {self.status} {self.excerpt}".rstrip()


@dataclass(frozen=True)
class StreamTiming:
    """A streamed answer timed by vLLM's definitions (picoclaw_vllm.vllm_api.measurement):
    `chunks` counts the `choices`-bearing events, `ttft_s` is the first one's arrival and
    `itl_s` the gaps between them; `error_chunk` is vLLM's mid-stream `{"error": ...}` event."""

    answer: HttpAnswer
    ttft_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    chunks: int = 0
    error_chunk: str | None = None


def _walk(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def classify(exc: Exception, url: str, timeout_s: float) -> ConnectionFailure:
    """Name what went wrong below HTTP, with the remedy-relevant detail."""
    text = " ".join(str(e) for e in _walk(exc))
    low = text.lower()
    host = urlsplit(url).netloc
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ConnectionFailure("wrong_scheme", f"'{url}' has no http:// or https:// scheme")
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectionFailure(
            "connect_timeout", f"connecting to {host} timed out after {timeout_s:g} s"
        )
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionFailure(
            "no_answer", f"{host} accepted the connection but sent no answer within {timeout_s:g} s"
        )
    if any(isinstance(e, ssl.SSLError) for e in _walk(exc)) or "ssl" in low:
        if "wrong_version_number" in low or "record layer" in low or "packet length" in low:
            return ConnectionFailure(
                "wrong_scheme", f"https:// used but {host} speaks plain HTTP (use http://)"
            )
        return ConnectionFailure("tls", f"TLS handshake with {host} failed: {text[:200]}")
    if (
        "name or service not known" in low
        or "nodename nor servname" in low
        or ("temporary failure in name resolution" in low or "errno -2" in low or "errno -3" in low)
        or "getaddrinfo" in low
    ):
        return ConnectionFailure("dns", f"the host name in {host} does not resolve (DNS)")
    if "refused" in low or "errno 111" in low:
        return ConnectionFailure("refused", f"connection to {host} refused: nothing listens there")
    if "without sending a response" in low or "reset by peer" in low or "errno 104" in low:
        return ConnectionFailure(
            "closed",
            f"{host} accepted the connection and closed it without an answer "
            "(e.g. Docker's port proxy while the container's vLLM is not listening yet)",
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        return ConnectionFailure(
            "protocol", f"{host} closed the connection or did not speak HTTP ({text[:120]})"
        )
    if "unreachable" in low:
        return ConnectionFailure("unreachable", f"network unreachable for {host}")
    return ConnectionFailure("other", f"{type(exc).__name__}: {text[:200]}")


class ServerClient:
    """One httpx client per diagnosis; PicoClaw's headers; answers, never exceptions.

    Every request is bounded by its own timeout and by the diagnosis's deadline (when given);
    a request that cannot be sent in time is answered at once with a `deadline` failure.
    """

    def __init__(
        self,
        api_base: str,
        api_key: str | None,
        timeout_s: float,
        transport: httpx.BaseTransport | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.api_key = api_key
        self.basic_auth = urls.without_userinfo(self.api_base)[1]
        self.timeout_s = timeout_s
        self.deadline = deadline
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
        )

    def close(self) -> None:
        self._client.close()

    @property
    def root(self) -> str:
        """Where /health, /metrics and /version live: api_base without /v1, else host root."""
        return urls.root(self.api_base)

    def url(self, suffix: str, *, root: bool = False) -> str:
        """suffix joined to api_base's path (its query, if any, kept after the path)."""
        return urls.join(self.root if root else self.api_base, suffix)

    @property
    def sends_basic_auth(self) -> bool:
        """api_base carries user:password@ and no key is set: Go sends them as Basic auth."""
        return self.basic_auth is not None and not self.api_key

    def picoclaw_headers(self, with_key: bool = True) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": DEFAULT_USER_AGENT}
        if with_key and self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _prepare(self, url: str, headers: dict[str, str]) -> tuple[str, dict[str, str], str]:
        """(url to request, headers, url to show): user info travels as a Basic header (as
        Go's client sends it when no Authorization is set), never in what is shown."""
        real, _ = urls.without_userinfo(url)
        headers = dict(headers)
        if self.basic_auth is not None and "Authorization" not in headers:
            pair = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        return real, headers, redact(real)

    def _bound(self, timeout_s: float | None, queued: bool) -> float | None:
        own = self.timeout_s if timeout_s is None else timeout_s
        return own if self.deadline is None else self.deadline.bound(own, queued=queued)

    def _cut(self) -> bool:
        """Whether the deadline (not the request's own timeout) ended a request just now: at
        the requests' cutoff it shuts every open stream down, queued or not, and a read cut
        there must never read as a server that does not speak HTTP."""
        return self.deadline is not None and self.deadline.remaining(queued=True) <= 0.1

    def _failure(self, exc: Exception, url: str, start: float) -> ConnectionFailure:
        if self._cut():
            return _deadline_failure(url, time.monotonic() - start)
        return classify(exc, url, self.timeout_s)

    def _track(self, response: httpx.Response) -> int | None:
        if self.deadline is None:
            return None
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        return self.deadline.track(sock if isinstance(sock, socket.socket) else None)

    def _untrack(self, key: int | None) -> None:
        if self.deadline is not None:
            self.deadline.untrack(key)

    def request(
        self,
        method: str,
        url: str,
        *,
        body: dict[str, Any] | None = None,
        with_key: bool = True,
        max_chars: int = 20_000,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> HttpAnswer:
        """`headers` replaces PicoClaw's default ones (a chat request built with its config);
        `timeout_s` replaces --timeout for this one (still cut by the deadline). Chat requests
        (a body) may wait in vLLM's queue."""
        start = time.monotonic()
        real, sent, shown = self._prepare(url, headers or self.picoclaw_headers(with_key))
        bound = self._bound(timeout_s, queued=body is not None)
        if bound is None:
            return HttpAnswer(method, shown, failure=_deadline_failure(shown, 0.0))
        key = None
        try:
            with self._client.stream(method, real, json=body, headers=sent, timeout=bound) as r:
                key = self._track(r)
                r.read()
        except Exception as e:  # every network error becomes a named failure
            failure = self._failure(e, shown, start)
            return HttpAnswer(method, shown, elapsed_s=time.monotonic() - start, failure=failure)
        finally:
            self._untrack(key)
        return HttpAnswer(
            method,
            shown,
            status=r.status_code,
            body=redact(r.text[:max_chars]),
            content_type=r.headers.get("content-type", ""),
            elapsed_s=time.monotonic() - start,
            location=redact(r.headers.get("location", "")[:300]),
        )

    def get(self, path: str, *, root: bool = False, max_chars: int = 20_000) -> HttpAnswer:
        return self.request("GET", self.url(path, root=root), max_chars=max_chars)

    def chat(self, body: dict[str, Any], headers: dict[str, str]) -> HttpAnswer:
        """POST {api_base}/chat/completions with a body and headers PicoClaw's builder made."""
        return self.request("POST", self.url("/chat/completions"), body=body, headers=headers)

    def chat_stream(self, body: dict[str, Any], headers: dict[str, str]) -> StreamTiming:
        """A streamed chat request, timed; it ends by --timeout (its whole life, not only each
        read) and by the deadline, so a stream that never ends cannot hold the doctor."""
        url, headers, shown = self._prepare(self.url("/chat/completions"), headers)
        start = time.monotonic()
        bound = self._bound(None, queued=True)
        if bound is None:
            return StreamTiming(HttpAnswer("POST", shown, failure=_deadline_failure(shown, 0.0)))
        measurement = StreamMeasurement(start)
        failure: ConnectionFailure | None = None
        status, ctype, key = None, "", None
        try:
            with self._client.stream("POST", url, json=body, headers=headers, timeout=bound) as r:
                key = self._track(r)
                status, ctype = r.status_code, r.headers.get("content-type", "")
                if r.status_code != 200:
                    r.read()
                    answer = HttpAnswer(
                        "POST", shown, r.status_code, redact(r.text[:20_000]), ctype,
                        time.monotonic() - start,
                    )  # fmt: skip
                    return StreamTiming(answer)
                for chunk in r.iter_bytes():
                    now = time.monotonic()
                    if now - start > bound:
                        failure = self._stream_cut(shown, start, measurement.decoded())
                        break
                    measurement.feed(chunk, now)
                    if measurement.done:
                        break
        except Exception as e:
            failure = self._failure(e, shown, start)
        finally:
            self._untrack(key)
        return _stream_timing(shown, status, ctype, start, measurement, failure)

    def _stream_cut(self, url: str, start: float, read: StreamEvents) -> ConnectionFailure:
        if self._cut():
            return _deadline_failure(url, time.monotonic() - start)
        return ConnectionFailure(
            "stream_timeout",
            f"the stream did not end within {self.timeout_s:g} s "
            f"({len(read.choice_times)} chunks by then)",
        )


def _stream_timing(
    url: str,
    status: int | None,
    content_type: str,
    start: float,
    measurement: StreamMeasurement,
    failure: ConnectionFailure | None,
) -> StreamTiming:
    """A 200 stream read as vLLM's benchmark reads it (picoclaw_vllm.vllm_api.measurement):
    chunks are its `choices`-bearing events; an `{"error": ...}` event is the error chunk; a
    stream that ends without `[DONE]` or with an event that is not JSON is a protocol failure."""
    read = measurement.decoded()
    error_chunk = None
    if read.error is not None:
        error_chunk = redact(read.error.decode("utf-8", "replace")[:BODY_EXCERPT_CHARS])
    elif failure is None and read.malformed is not None:
        failure = ConnectionFailure("protocol", f"{urlsplit(url).netloc} sent {read.failure()}")
    elif failure is None and not read.done:
        failure = ConnectionFailure("protocol", f"{urlsplit(url).netloc}: {read.incomplete()}")
    raw = "\n".join(
        "data: " + p.decode("utf-8", "replace") for p in measurement.payloads(RAW_EVENTS)
    )
    answer = HttpAnswer(
        "POST", url, status if failure is None else None, redact(raw), content_type,
        time.monotonic() - start, failure,
    )  # fmt: skip
    return StreamTiming(answer, read.ttft(start), read.gaps(), len(read.choice_times), error_chunk)


def _deadline_failure(url: str, waited_s: float) -> ConnectionFailure:
    host = urlsplit(url).netloc
    if waited_s <= 0:
        return ConnectionFailure("deadline", f"not sent to {host}: the diagnosis's deadline passed")
    return ConnectionFailure(
        "deadline",
        f"{host} had not answered when the diagnosis's deadline came ({waited_s:.1f} s)",
    )
