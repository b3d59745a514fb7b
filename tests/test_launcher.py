"""The launcher against a real CPU vLLM server: start, answer, stop cleanly when interrupted.
A real TP 2 start is the small sweep's (tests/test_sweep_small.py), real start-up failures
tests/test_diagnose_startup.py's: each costs a server start, so each is started once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import TEST_API_KEY

from picoclaw_vllm.server.backends import DockerBackend, LocalBackend, cpu_thread_binding
from picoclaw_vllm.server.embedded import (
    EMBEDDED_MAX_MODEL_LEN,
)
from picoclaw_vllm.server.launcher import ServerHandle
from picoclaw_vllm.server.settings import ServerSettings


def _descendants_alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.vllm
def test_session_server_answers_models_and_chat(vllm_server: ServerHandle) -> None:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    models = httpx.get(f"{vllm_server.api_base}/models", headers=headers, timeout=10).json()
    assert [m["id"] for m in models["data"]] == ["tiny-llama"]
    assert models["data"][0]["max_model_len"] == EMBEDDED_MAX_MODEL_LEN
    r = httpx.post(
        f"{vllm_server.api_base}/chat/completions",
        headers=headers,
        json={
            "model": "tiny-llama",
            "messages": [{"role": "user", "content": "Hello"}],
            "max_tokens": 12,
            "ignore_eos": True,
        },
        timeout=60,
    )
    assert r.status_code == 200
    assert r.json()["usage"]["completion_tokens"] == 12


@pytest.mark.vllm
def test_interrupting_a_launch_leaves_no_server(cpu_env: None, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    tool = subprocess.Popen(
        [sys.executable, "-m", "picoclaw_vllm", "server", "run", "--once", "--log", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server_pids: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(server_pids) < 2:
        server_pids = {p.pid for p in psutil.Process(tool.pid).children(recursive=True)}
        server_pids |= {c.pid for pid in list(server_pids) for c in _children_safe(pid)}
        time.sleep(0.5)
    assert server_pids, "the tool never started vLLM"
    time.sleep(3)
    server_pids |= _all_descendants(server_pids)
    os.kill(tool.pid, signal.SIGINT)
    _out, err = tool.communicate(timeout=60)
    assert tool.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err
    assert _descendants_alive(server_pids) == set()


def _children_safe(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _all_descendants(pids: set[int]) -> set[int]:
    return {c.pid for pid in pids for c in _children_safe(pid)}


def test_local_backend_passes_the_key_by_environment_only() -> None:
    settings = ServerSettings(model="m", api_key="s3cret-key", tensor_parallel_size=2)
    backend = LocalBackend(python="/venv/bin/python", cpu=True)
    cmd = backend.command(settings)
    assert cmd[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert "s3cret-key" not in " ".join(cmd)
    env = backend.environment(settings)
    assert env["VLLM_API_KEY"] == "s3cret-key"


def test_a_cpu_server_keeps_idle_connections_120_s_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ServerSettings(model="m")
    monkeypatch.delenv("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", raising=False)
    assert (
        LocalBackend(python="p", cpu=True).environment(settings)["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"]
        == "120"
    )
    assert "VLLM_HTTP_TIMEOUT_KEEP_ALIVE" not in LocalBackend(python="p").environment(settings)
    given = LocalBackend(python="p", cpu=True, extra_env={"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "9"})
    assert given.environment(settings)["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"] == "9"
    monkeypatch.setenv("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "7")  # the user's own, inherited as is
    assert "VLLM_HTTP_TIMEOUT_KEEP_ALIVE" not in LocalBackend(python="p", cpu=True).environment(
        settings
    )


def test_cpu_thread_binding_splits_cores_per_worker() -> None:
    assert cpu_thread_binding(2, [0, 1]) == "0|1"
    assert cpu_thread_binding(2, [0, 1, 2, 3]) == "0-1|2-3"
    assert cpu_thread_binding(1, [0, 1]) is None
    assert cpu_thread_binding(3, [0, 1]) is None


def test_docker_backend_builds_the_seed_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/alice")
    settings = ServerSettings(
        model="meta-llama/Llama-3.2-3B-Instruct",
        port=8000,
        host="127.0.0.1",
        max_model_len=4096,
        max_num_seqs=128,
        gpu_memory_utilization=0.9,
        api_key="k-123456",
    )
    backend = DockerBackend(tag="v0.32.0")
    assert backend.command(settings) == [
        "docker", "run", "--rm",
        "--name", "picoclaw-vllm-8000",
        "--gpus", "all",
        "-v", "/home/alice/.cache/huggingface:/root/.cache/huggingface",
        "-p", "127.0.0.1:8000:8000",
        "--ipc=host",
        "-e", "HF_TOKEN",
        "-e", "VLLM_API_KEY",
        "vllm/vllm-openai:v0.32.0",
        "--model", "meta-llama/Llama-3.2-3B-Instruct",
        "--max-model-len", "4096",
        "--max-num-seqs", "128",
        "--gpu-memory-utilization", "0.9",
    ]  # fmt: skip
    assert backend.environment(settings) == {"VLLM_API_KEY": "k-123456"}


def test_docker_backend_tensor_parallel_and_gpu_selection() -> None:
    settings = ServerSettings(model="meta-llama/Llama-3.1-70B-Instruct", tensor_parallel_size=2)
    cmd = DockerBackend(gpus='"device=0,1"').command(settings)
    assert cmd[cmd.index("--gpus") + 1] == '"device=0,1"'
    assert cmd[-2:] == ["--tensor-parallel-size", "2"]
    assert "-e" in cmd and "VLLM_API_KEY" not in cmd
