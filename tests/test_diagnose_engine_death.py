"""kill -9 of the engine core (`VLLM::EngineCore`, what the kernel's OOM killer does) of a
real CPU vLLM server started for this test alone: the doctor, given the server's log, names
engine_dead and "killed by a signal", exit 1, both while /health answers 503 and after the
API server has exited."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from diagnose_helpers import ids, run_json

from picoclaw_vllm.server.embedded import embedded_backend, embedded_settings
from picoclaw_vllm.server.launcher import ServerHandle, start_server

pytestmark = pytest.mark.vllm


@pytest.fixture
def own_server(cpu_env: None, tmp_path: Path) -> Iterator[ServerHandle]:
    handle = start_server(embedded_settings(), embedded_backend(), log_path=tmp_path / "vllm.log")
    try:
        yield handle
    finally:
        assert handle.stop(), "the killed server left processes behind"


def health(base_url: str) -> int | None:
    try:
        return httpx.get(f"{base_url}/health", timeout=2).status_code
    except httpx.HTTPError:
        return None


def dead_engine(capsys: pytest.CaptureFixture[str], handle: ServerHandle, *checks: str) -> dict:  # type: ignore[type-arg]
    argv = ["--api-base", handle.api_base, "--model", handle.settings.name, "--no-hub",
            "--log", str(handle.log_path)]  # fmt: skip
    for check in checks:
        argv += ["--check", check]
    rc, doc = run_json(capsys, *argv)
    assert rc == 1, doc
    assert "engine_dead" in ids(doc), doc
    messages = " | ".join(f["message"] for f in doc["findings"] if f["id"] == "engine_dead")
    assert "killed by a signal, with no error of its own" in messages, doc
    return doc


@pytest.mark.timeout(600)
def test_killed_engine_core_is_named_while_503_and_after_exit(
    own_server: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert own_server.process is not None and own_server.log_path is not None
    api = psutil.Process(own_server.process.pid)
    (core,) = [p for p in api.children(recursive=True) if p.name().startswith("VLLM::EngineCor")]
    os.kill(core.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while health(own_server.base_url) != 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health(own_server.base_url) == 503
    while "engine core exited" not in own_server.log_path.read_text(errors="replace"):
        time.sleep(0.05)

    during = dead_engine(capsys, own_server, "health", "server_log")
    health_check = next(c for c in during["checks"] if c["name"] == "health")
    assert health_check["status"] == "fail", during  # /health answered 503 to the doctor

    own_server.process.wait(timeout=60)
    after = dead_engine(capsys, own_server)
    assert "connection_refused" in ids(after)
