"""Run by test_load_http_stream in its own interpreter (importing Locust monkey-patches the
process with gevent, which the pytest process must not be): serve one scripted answer on a
raw socket, read it through Locust's FastHttpSession, print the outcome as JSON.

    python tests/http_stream_probe.py SCENARIO
"""

from __future__ import annotations

import gevent.monkey

gevent.monkey.patch_all()

import dataclasses  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from locust.contrib.fasthttp import FastHttpSession  # noqa: E402
from locust.event import EventHook  # noqa: E402

from loadtests.http_stream import read_answer  # noqa: E402

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
)
EVENT = b'data: {"choices":[{"delta":{"content":"x"}}],"usage":{"completion_tokens":%d}}\n\n'
PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
JSON_BODY = b'{"choices": []}'


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


SCENARIOS: dict[str, list[tuple[float, bytes]]] = {
    "paced": [
        (0, SSE_HEAD + chunk(EVENT % 1)),
        (0.2, chunk(EVENT % 2)),
        (0.2, chunk(EVENT % 3) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"),
    ],
    "cut": [(0, SSE_HEAD + chunk(EVENT % 1) + b'40\r\ndata: {"cho')],
    "html": [
        (
            0,
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: %d\r\n\r\n%s"
            % (len(PAGE), PAGE),
        )
    ],
    "json": [
        (
            0,
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(JSON_BODY), JSON_BODY),
        )
    ],
}


def serve_once(parts: list[tuple[float, bytes]]) -> str:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def run() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        for delay, data in parts:
            time.sleep(delay)
            conn.sendall(data)
        conn.close()
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}"


def main(scenario: str) -> None:
    if scenario == "refused":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{s.getsockname()[1]}"
    else:
        base = serve_once(SCENARIOS[scenario])
    session = FastHttpSession(base, EventHook(), user=None)
    start = time.perf_counter()
    resp = session.request("POST", "/v1/chat/completions", data="{}", stream=True)
    outcome, _end = read_answer(resp, start, stream=True)
    print(json.dumps(dataclasses.asdict(outcome)))


if __name__ == "__main__":
    main(sys.argv[1])
