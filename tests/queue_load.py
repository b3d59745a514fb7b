"""A full vLLM queue, created and confirmed from vLLM's own /metrics, for the doctor's tests.

The clients send NON-streaming chat requests for long answers, back to back. Streaming load
made the CPU vLLM's API server (sharing two cores with the engine) the bottleneck: it then
held new requests before vLLM's scheduler, its /metrics took up to 10 s to answer and read
0 waiting and 0 running while 8 clients were busy. Non-streaming answers cost the API
server almost nothing per token, so the queue is in vLLM's scheduler, where the gauges see it.
Stopping shuts each client's socket down: vLLM aborts a request whose client left.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from picoclaw_vllm.vllm_api.metrics import Metrics, parse

PROMPT = "Tell a long story."
# About a second of decoding each on the CPU vLLM (PROMPT is 29 tokens with the chat template).
LONG_ANSWER_TOKENS = 990


@dataclass
class QueueSample:
    at_s: float  # since the monitor started
    waiting: float
    running: float
    scrape_s: float


@dataclass
class QueueWatch:
    samples: list[QueueSample] = field(default_factory=list)

    def fewest_waiting(self) -> float | None:
        """The shortest queue any scrape saw: >= 1 means it never emptied while watched."""
        return min((s.waiting for s in self.samples), default=None)

    def describe(self) -> str:
        return ", ".join(
            f"{s.at_s:.1f}s: {s.waiting:.0f} waiting/{s.running:.0f} running" for s in self.samples
        )


def scrape(base_url: str) -> Metrics:
    return parse(httpx.get(f"{base_url}/metrics", timeout=30).text)


class QueueLoad:
    """`clients` closed-loop clients, each asking for `max_tokens`-token answers."""

    def __init__(
        self, base_url: str, api_key: str, clients: int, max_tokens: int = LONG_ANSWER_TOKENS
    ) -> None:
        self.base_url = base_url
        self.clients = clients
        self._stop = threading.Event()
        self._socks: dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._body = json.dumps(
            {"model": "tiny-llama", "messages": [{"role": "user", "content": PROMPT}],
             "max_tokens": max_tokens, "ignore_eos": True}
        )  # fmt: skip
        self._headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
        self.answered = 0
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)
        ]

    def _client(self, index: int) -> None:
        parts = urlsplit(self.base_url)
        while not self._stop.is_set():
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=300)
            try:
                conn.connect()
                with self._lock:
                    self._socks[index] = conn.sock
                if self._stop.is_set():
                    return
                conn.request("POST", "/v1/chat/completions", self._body, self._headers)
                reply = conn.getresponse()
                reply.read()
                if reply.status != 200:
                    self.errors.append(f"{reply.status}")
                    time.sleep(0.5)
                else:
                    self.answered += 1
            except OSError as e:
                if not self._stop.is_set():
                    self.errors.append(repr(e))
                    time.sleep(0.2)
            finally:
                conn.close()

    def __enter__(self) -> QueueLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.wait_idle()

    def wait_idle(self, timeout_s: float = 180) -> None:
        """Until vLLM's /metrics shows nothing running or waiting: the next test finds an
        idle server, not the tail of this load (a request whose client left may still run)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                m = scrape(self.base_url)
                if not (m.waiting or 0) and not (m.running or 0):
                    return
            time.sleep(0.5)
        raise AssertionError(f"vLLM still busy {timeout_s:g} s after the load stopped")

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            socks = list(self._socks.values())
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(timeout=10)

    def wait_full(self, min_waiting: int, timeout_s: float = 180) -> Metrics:
        """vLLM's /metrics showing at least min_waiting requests queued; fails the test
        (the condition was not created) with what it saw when that does not come. Generous:
        a starved API server answered /metrics in up to 25 s, and read 0 waiting meanwhile."""
        deadline = time.monotonic() + timeout_s
        seen = []
        while time.monotonic() < deadline:
            m = scrape(self.base_url)
            seen.append((m.waiting, m.running))
            if (m.waiting or 0) >= min_waiting:
                return m
            time.sleep(0.2)
        raise AssertionError(
            f"the queue never held {min_waiting} requests in {timeout_s:g} s "
            f"(waiting, running): {seen[-20:]}; load errors: {self.errors[-5:]}"
        )

    @contextlib.contextmanager
    def watch(self, interval_s: float = 0.2) -> Iterator[QueueWatch]:
        """/metrics read every interval_s while the block runs (and once as it ends)."""
        found = QueueWatch()
        stop = threading.Event()
        start = time.monotonic()

        def read() -> None:
            t0 = time.monotonic()
            m = scrape(self.base_url)
            found.samples.append(
                QueueSample(t0 - start, m.waiting or 0, m.running or 0, time.monotonic() - t0)
            )

        def loop() -> None:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    read()
                stop.wait(interval_s)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield found
        finally:
            stop.set()
            thread.join(timeout=35)
            with contextlib.suppress(httpx.HTTPError):
                read()
