"""Start a vLLM server, wait until it really answers, and stop it without leaving anything."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from picoclaw_vllm.errors import LaunchError
from picoclaw_vllm.leftovers import OWNER_ENV, owner_tag
from picoclaw_vllm.procs import spawn_group, stop_group
from picoclaw_vllm.redact import redact, register_secret
from picoclaw_vllm.server.backends import Backend, render_command
from picoclaw_vllm.server.settings import ServerSettings

LOG_TAIL_CHARS = 20_000


def read_log_tail(path: Path | None, chars: int = LOG_TAIL_CHARS) -> str:
    if path is None or not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - chars))
        return redact(f.read().decode("utf-8", errors="replace"))


@dataclass
class ServerHandle:
    settings: ServerSettings
    backend: Backend
    base_url: str
    log_path: Path | None
    command_line: str | None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = field(default_factory=time.monotonic)
    ready_after_s: float | None = None

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def log_tail(self) -> str:
        return read_log_tail(self.log_path)

    def stop(self, grace_s: float = 10.0) -> bool:
        """Stop the server's whole process group. True when nothing of it is left."""
        gone = True
        if self.process is not None:
            gone = stop_group(self.process, grace_s=grace_s)
        self.backend.cleanup(self.settings)
        return gone

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def probe_ready(client: httpx.Client, base_url: str, settings: ServerSettings) -> str | None:
    """None when the server answers a real 1-token completion, else why not yet."""
    try:
        health = client.get(f"{base_url}/health")
        if health.status_code != 200:
            return f"/health answered {health.status_code}"
        r = client.post(
            f"{base_url}/v1/completions",
            json={"model": settings.name, "prompt": "hi", "max_tokens": 1},
            headers=_auth_headers(settings.api_key),
        )
    except httpx.HTTPError as e:
        return f"{type(e).__name__}"
    if r.status_code != 200:
        return f"completion answered {r.status_code}: {redact(r.text[:300])}"
    return None


def wait_ready(handle: ServerHandle, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=2.0)) as client:
        while True:
            proc = handle.process
            if proc is not None and proc.poll() is not None:
                raise LaunchError(
                    f"vLLM exited with code {proc.returncode} before it was ready",
                    log_path=handle.log_path,
                    log_text=handle.log_tail(),
                    exit_code=proc.returncode,
                )
            why = probe_ready(client, handle.base_url, handle.settings)
            if why is None:
                handle.ready_after_s = time.monotonic() - handle.started_at
                return
            last = why
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"vLLM was not ready after {timeout_s:.0f} s ({last})",
                    log_path=handle.log_path,
                    log_text=handle.log_tail(),
                )
            time.sleep(0.5)


def start_server(
    settings: ServerSettings,
    backend: Backend,
    *,
    log_path: Path | None = None,
    ready_timeout_s: float = 300.0,
    base_url: str | None = None,
    started_by: str = "picoclaw-vllm",
) -> ServerHandle:
    """Start (unless external) and wait for readiness; on any failure nothing is left running.

    The server dies with this process (procs.spawn_group's watchdog) and carries
    leftovers.OWNER_ENV naming started_by (e.g. the sweep's run directory)."""
    register_secret(settings.api_key)
    cmd = backend.command(settings)
    env = backend.environment(settings)
    handle = ServerHandle(
        settings=settings,
        backend=backend,
        base_url=(base_url or f"http://{settings.host}:{settings.port}").rstrip("/"),
        log_path=log_path if cmd else None,
        command_line=render_command(cmd, env) if cmd else None,
    )
    try:
        if cmd:
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_path.write_text(f"$ {handle.command_line}\n")
            env = {**os.environ, **env, OWNER_ENV: owner_tag(started_by)}
            handle.process = spawn_group(cmd, log_path=log_path, env=env)
        wait_ready(handle, ready_timeout_s)
    except BaseException:
        handle.stop()
        raise
    return handle


@contextmanager
def running_server(
    settings: ServerSettings,
    backend: Backend,
    *,
    log_path: Path | None = None,
    ready_timeout_s: float = 300.0,
    base_url: str | None = None,
    started_by: str = "picoclaw-vllm",
) -> Iterator[ServerHandle]:
    handle = start_server(
        settings,
        backend,
        log_path=log_path,
        ready_timeout_s=ready_timeout_s,
        base_url=base_url,
        started_by=started_by,
    )
    try:
        yield handle
    finally:
        handle.stop()
