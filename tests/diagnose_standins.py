"""Local stand-in servers for what the real CPU vLLM cannot show: a proxy's HTML error page,
a non-JSON answer, a dead engine, a socket that never answers, and the Hugging Face Hub.

Each binds 127.0.0.1 on a free port and is stopped when its context ends.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = tuple[int, dict[str, str], bytes]
Handler = Callable[[str, str, dict[str, str]], Reply]


def json_reply(status: int, data: object, **headers: str) -> Reply:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()


@contextmanager
def _serving(server: ThreadingHTTPServer) -> Iterator[str]:
    """Serve on a daemon thread; the server's URL while the context lasts."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def http_standin(handler: Handler) -> Iterator[str]:
    """An HTTP server answering every request with handler(method, path, headers)."""

    class _Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body_in = self.rfile.read(length) if length else b""
            lowered = {k.lower(): v for k, v in self.headers.items()}
            lowered["x-body"] = body_in.decode("utf-8", "replace")
            status, headers, body = handler(self.command, self.path, lowered)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _reply

        def log_message(self, format: str, *args: object) -> None:
            return None

    with _serving(ThreadingHTTPServer(("127.0.0.1", 0), _Handler)) as url:
        yield url


@contextmanager
def silent_socket() -> Iterator[str]:
    """Accepts connections and never answers: a wedged server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        listener.close()


NGINX_502 = b"""<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx/1.24.0</center>
</body>
</html>
"""


def nginx_502(method: str, path: str, headers: dict[str, str]) -> Reply:
    return 502, {"Content-Type": "text/html", "Server": "nginx/1.24.0"}, NGINX_502


def plain_text_ok(method: str, path: str, headers: dict[str, str]) -> Reply:
    return 200, {"Content-Type": "text/plain"}, b"OK"


def dead_engine(method: str, path: str, headers: dict[str, str]) -> Reply:
    """vLLM after its EngineCore died: /health 503, requests 500 (bodies as vLLM 0.32 sends)."""
    if path == "/health":
        return 503, {}, b""
    if path == "/v1/models":
        return json_reply(200, {"object": "list", "data": [
            {"id": "tiny-llama", "object": "model", "root": "/models/tiny", "max_model_len": 1024}
        ]})  # fmt: skip
    return json_reply(500, {"error": {
        "message": "EngineCore encountered an issue. See stack trace (above) for the root cause.",
        "type": "InternalServerError", "param": None, "code": 500}})  # fmt: skip


def crashed_engine_healthy_health(method: str, path: str, headers: dict[str, str]) -> Reply:
    """The engine crashed on a request, /health still answers 200 (seen with vLLM 0.32 CPU)."""
    if path == "/health":
        return 200, {}, b""
    return dead_engine(method, path, headers)


HUB_REPOS = {
    "meta-llama/Llama-3.2-3B-Instruct": {"gated": "manual"},
    "Qwen/Qwen2.5-7B-Instruct": {"gated": False},
    "meta-llama/Llama-3.1-8B-Instruct": {"gated": False},
}
HUB_CONFIGS = {
    "meta-llama/Llama-3.1-8B-Instruct": {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "torch_dtype": "bfloat16",
        "max_position_embeddings": 131072,
    },
}  # fmt: skip
HUB_PARAMETERS = {"meta-llama/Llama-3.1-8B-Instruct": 8_030_261_248}


def hub(granted_token: str | None = None) -> Handler:
    """Answers like huggingface.co for the repos above; the token granted access to gated ones."""

    def handle(method: str, path: str, headers: dict[str, str]) -> Reply:
        path = path.split("?")[0]
        auth = headers.get("authorization", "")
        for repo, info in HUB_REPOS.items():
            if path == f"/api/models/{repo}":
                data: dict[str, object] = {"id": repo, "modelId": repo, "private": False,
                                           "gated": info["gated"], "sha": "0" * 40}  # fmt: skip
                if repo in HUB_PARAMETERS:
                    total = HUB_PARAMETERS[repo]
                    data["safetensors"] = {"parameters": {"BF16": total}, "total": total}
                return json_reply(200, data)
            if path == f"/api/models/{repo}/auth-check":
                if info["gated"] and auth != f"Bearer {granted_token}":
                    return json_reply(
                        403, {"error": f"Access to model {repo} is restricted."},
                        **{"X-Error-Code": "GatedRepo",
                           "X-Error-Message": f"Access to model {repo} is restricted."},
                    )  # fmt: skip
                return json_reply(200, {})
            if path == f"/{repo}/resolve/main/config.json" and repo in HUB_CONFIGS:
                return json_reply(200, HUB_CONFIGS[repo])
        return json_reply(
            404, {"error": "Repository not found"},
            **{"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
        )  # fmt: skip

    return handle


MODELS = {"object": "list", "data": [
    {"id": "tiny-llama", "object": "model", "root": "/models/tiny", "max_model_len": 1024}
]}  # fmt: skip


def no_chat_template(method: str, path: str, headers: dict[str, str]) -> Reply:
    """A served model whose tokenizer has no chat template (vLLM's 400 for every chat)."""
    if path == "/health":
        return 200, {}, b""
    if path.endswith("/models"):
        return json_reply(200, MODELS)
    return json_reply(400, {"error": {
        "message": "As of transformers v4.44, default chat template is no longer allowed, so you "
                   "must provide a chat template if the tokenizer does not define one.",
        "type": "BadRequestError", "param": None, "code": 400}})  # fmt: skip


def stream_error_chunk(method: str, path: str, headers: dict[str, str]) -> Reply:
    """Non-streaming works; a stream starts, then ends with vLLM's error chunk."""
    if path == "/health":
        return 200, {}, b""
    if path.endswith("/models"):
        return json_reply(200, MODELS)
    if b"stream" in headers.get("x-body", "").encode():
        return 200, {"Content-Type": "text/event-stream"}, streaming_error_reply()
    choice = {"index": 0, "message": {"role": "assistant", "content": "hi"}}
    return json_reply(200, {"id": "c", "object": "chat.completion", "choices": [choice]})


def streaming_error_reply() -> bytes:
    role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    error = {"error": {"message": "EngineCore step failed", "type": "InternalServerError",
                       "code": 500}}  # fmt: skip
    return f"data: {json.dumps(role)}\n\ndata: {json.dumps(error)}\n\ndata: [DONE]\n\n".encode()


@contextmanager
def closing_socket() -> Iterator[str]:
    """Accepts and at once closes every connection, as Docker's port proxy does while the
    container behind it does not listen yet."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def raw_markup_tool_calls(markup: str) -> Handler:
    """A server whose --tool-call-parser does not fit its model: vLLM answers, but the model's
    tool-call markup stays in `content` (what a Llama served with `hermes` looks like)."""

    def handler(method: str, path: str, headers: dict[str, str]) -> Reply:
        if path == "/health":
            return 200, {}, b""
        if path.endswith("/models"):
            llama = {"id": "tiny-llama", "root": "meta-llama/Llama-3.1-8B-Instruct"}
            return json_reply(200, {"object": "list", "data": [llama]})
        if path == "/tokenize":
            return json_reply(200, {"count": 300, "max_model_len": 32768, "tokens": []})
        body = json.loads(headers.get("x-body") or "{}")
        if body.get("stream"):
            chunk = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}}]}
            return (
                200,
                {"Content-Type": "text/event-stream"},
                (f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()),
            )
        message = {"role": "assistant", "content": markup, "tool_calls": []}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return json_reply(200, {"id": "c", "object": "chat.completion", "choices": [choice]})

    return handler


@contextmanager
def dripping_stream(
    interval_s: float = 1.0, streaming: threading.Event | None = None
) -> Iterator[str]:
    """A server whose chat streams never end: one token every interval_s, forever (until the
    client leaves); everything else answers like vLLM at once. `streaming` is set when a
    stream starts."""
    stop = threading.Event()

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.endswith("/models"):
                self._send(200, json.dumps(MODELS).encode())
            elif self.path == "/version":
                self._send(200, b'{"version": "0.32.0"}')
            elif self.path == "/metrics":
                self._send(200, b"vllm:num_requests_waiting{} 0.0\n", "text/plain")
            else:
                self._send(200, b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not json.loads(body or b"{}").get("stream"):
                choice = {"index": 0, "message": {"role": "assistant", "content": "hi"}}
                self._send(200, json.dumps({"object": "chat.completion", "choices": [choice]})
                           .encode())  # fmt: skip
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if streaming is not None:
                streaming.set()
            chunk = b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n'
            try:
                while not stop.wait(interval_s):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            except OSError:
                return  # the client left

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.block_on_close = False
    with _serving(server) as url:
        try:
            yield url
        finally:
            stop.set()  # before the shutdown: the dripping handlers end first
