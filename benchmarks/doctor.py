"""How long `picoclaw-vllm diagnose` takes, against the floor of the HTTP calls it makes.

The doctor runs against a healthy local vLLM server through a recording proxy on loopback
(bytes relayed unchanged, each request's method, path and body noted), and against a port
where nothing listens. The floor is the same requests replayed one after another with
`http.client` on one keep-alive connection (responses read to the end), so
`doctor time - floor` is what the tool adds: interpreter start-up and imports (measured
apart as `picoclaw-vllm diagnose --list`), its own work, and any waiting between calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from picoclaw_vllm.server.embedded import free_port
from sweeps.step_figures import mean

DIAGNOSE_TIMEOUT_S = 300.0
# Where the CLI's start-up time goes: each is a fresh interpreter doing only this.
STARTUP_PARTS = {
    "python": "pass",
    "diagnose_modules": "import diagnostics.command, diagnostics.runner, diagnostics.render_json",
    "cli_parser_diagnose": "from picoclaw_vllm.cli import build_parser; build_parser('diagnose')",
    "cli_parser_all": "from picoclaw_vllm.cli import build_parser; build_parser()",
}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingProxy:
    """A loopback TCP relay that notes each HTTP request passing to the upstream port."""

    upstream_port: int
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, note: bool
    ) -> None:
        buf = b""
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                if note:
                    buf = self._note(buf + data)
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _note(self, buf: bytes) -> bytes:
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            lines = buf[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(buf) < end + 4 + length:
                return buf
            method, path = ([*lines[0].split(" "), "", ""])[:2]
            self.requests.append(Recorded(method, path, headers, buf[end + 4 : end + 4 + length]))
            buf = buf[end + 4 + length :]
        return buf

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_w, True), self._pipe(up_r, writer, False))

    async def _main(self, started: threading.Event) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        started.set()
        async with server:
            await self._stop.wait()

    @contextlib.contextmanager
    def running(self) -> Iterator[RecordingProxy]:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()
        loop = self._loop
        self._thread = threading.Thread(
            target=lambda: loop.run_until_complete(self._main(started)), daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("recording proxy did not start")
        try:
            yield self
        finally:
            if self._stop is not None:
                loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(5)


def replay(port: int, requests: list[Recorded]) -> float:
    """Seconds to send the recorded requests one by one and read every answer to its end."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DIAGNOSE_TIMEOUT_S)
    try:
        for r in requests:
            headers = {k: v for k, v in r.headers.items() if k not in ("host", "content-length")}
            conn.request(r.method, r.path, body=r.body or None, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.getheader("connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DIAGNOSE_TIMEOUT_S)
    finally:
        conn.close()
    return time.perf_counter() - start


def refused_connect_s(port: int, tries: int = 20) -> float:
    """Mean seconds for one refused TCP connect on loopback."""
    total = 0.0
    for _ in range(tries):
        t = time.perf_counter()
        with socket.socket() as s, contextlib.suppress(OSError):
            s.connect(("127.0.0.1", port))
        total += time.perf_counter() - t
    return total / tries


def _cli() -> list[str]:
    return [str(Path(sys.executable).with_name("picoclaw-vllm"))]


def time_command(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=DIAGNOSE_TIMEOUT_S,
        start_new_session=True,
    )
    return time.perf_counter() - start, done.returncode, done.stdout[-20000:] + done.stderr[-2000:]


def _summary(out: str) -> dict[str, Any]:
    """The doctor's own duration, status and finding ids from its --json document."""
    try:
        data = json.loads(out[out.index("{") :])
    except ValueError:
        return {}
    findings = [f for f in data.get("findings") or [] if isinstance(f, dict)]
    return {
        "duration_s": data.get("duration_s"),
        "status": data.get("status"),
        "findings": [f"{f.get('id')} ({f.get('severity')})" for f in findings][:12],
    }


def write_config(home: Path, model: str, max_tokens: int) -> Path:
    """A PicoClaw config (legacy format) that fits the server: vLLM first, a keyless fallback."""
    path = home / "config.json"
    config = {
        "providers": {"vllm": {"api_base": "http://127.0.0.1:8000/v1"}},
        "agents": {
            "defaults": {
                "model": f"vllm/{model}",
                "max_tokens": max_tokens,
                "model_fallbacks": [f"vllm/{model}"],
            }
        },
    }
    path.write_text(json.dumps(config, indent=2))
    return path


def run_doctor(
    base_url: str, model: str, repeats: int, log: Callable[[str], None], max_tokens: int = 256
) -> dict[str, Any]:
    """Time the doctor (healthy through the proxy, with and without the hub; refused port)."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PICOCLAW_HOME": home, "VLLM_API_KEY": ""}
        write_config(Path(home), model, max_tokens)
        upstream = int(base_url.rsplit(":", 1)[1].split("/")[0])
        startup = [time_command([*_cli(), "diagnose", "--list"], env)[0] for _ in range(repeats)]
        out: dict[str, Any] = {"cli_startup_s": mean(startup), "startup_parts_s": {}}
        for part, snippet in STARTUP_PARTS.items():
            argv = [sys.executable, "-c", snippet]
            out["startup_parts_s"][part] = mean(
                [time_command(argv, env)[0] for _ in range(repeats)]
            )
        log(f"  CLI start-up {mean(startup):.2f} s; parts {out['startup_parts_s']}")
        for label, extra in (("healthy", ["--no-hub"]), ("healthy_with_hub", [])):
            times, floors, exits, calls = [], [], [], []
            summary: dict[str, Any] = {}
            for _ in range(repeats):
                proxy = RecordingProxy(upstream)
                with proxy.running():
                    argv = [
                        *_cli(),
                        "diagnose",
                        "--api-base",
                        f"http://127.0.0.1:{proxy.port}/v1",
                        "--model",
                        model,
                        "--json",
                        *extra,
                    ]
                    t, code, text = time_command(argv, env)
                times.append(t)
                exits.append(code)
                calls = [f"{r.method} {r.path}" for r in proxy.requests]
                floors.append(replay(upstream, proxy.requests))
                summary = _summary(text)
            out[label] = {
                "doctor_s": mean(times),
                "doctor_s_min": min(times),
                "floor_s": mean(floors),
                "exit_codes": exits,
                "http_calls": calls,
                "self_reported_s": summary.get("duration_s"),
                "status": summary.get("status"),
                "findings": summary.get("findings"),
            }
            log(
                f"  doctor {label}: {mean(times):.2f} s (floor {mean(floors):.3f} s, "
                f"{len(calls)} calls, exit {exits[-1]})"
            )
        port = free_port()
        times, exits = [], []
        text = ""
        for _ in range(repeats):
            argv = [
                *_cli(),
                "diagnose",
                "--api-base",
                f"http://127.0.0.1:{port}/v1",
                "--model",
                model,
                "--json",
                "--no-hub",
            ]
            t, code, text = time_command(argv, env)
            times.append(t)
            exits.append(code)
        out["refused"] = {
            "doctor_s": mean(times),
            "doctor_s_min": min(times),
            "floor_s": refused_connect_s(port),
            "exit_codes": exits,
            **{k: v for k, v in _summary(text).items() if k != "duration_s"},
            "self_reported_s": _summary(text).get("duration_s"),
        }
        log(f"  doctor refused: {mean(times):.2f} s (exit {exits[-1]})")
        return out
