"""How a vLLM server is run: a local interpreter, Docker, or nothing at all (external)."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from picoclaw_vllm.server.settings import ServerSettings

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"


class Backend(Protocol):
    name: str

    def command(self, settings: ServerSettings) -> list[str] | None:
        """The command that starts the server, or None when nothing is started."""

    def environment(self, settings: ServerSettings) -> dict[str, str]:
        """Variables the command needs on top of the caller's environment."""

    def cleanup(self, settings: ServerSettings) -> None:
        """Anything left after the process group is gone (a container)."""


def cpu_thread_binding(tp: int, cpus: list[int] | None = None) -> str | None:
    """VLLM_CPU_OMP_THREADS_BIND for tp CPU workers: the allowed cores split in tp blocks."""
    if cpus is None:
        cpus = sorted(os.sched_getaffinity(0))
    if tp < 2 or len(cpus) < tp:
        return None
    per = len(cpus) // tp
    blocks = [cpus[i * per : (i + 1) * per] for i in range(tp)]
    return "|".join(f"{b[0]}-{b[-1]}" if len(b) > 1 else str(b[0]) for b in blocks)


# A CPU vLLM shares its cores with its API server, whose event loop then stalls for seconds:
# with vLLM's 5 s HTTP keep-alive, the timer fires before a waiting request is read and the
# connection is closed under it (25 of 2,048 requests at 32 users, 0 of 2,560 at 120 s:
# benchmarks/results/keepalive-race.md). A value in the caller's environment wins.
KEEP_ALIVE_ENV = "VLLM_HTTP_TIMEOUT_KEEP_ALIVE"
CPU_KEEP_ALIVE_S = "120"


@dataclass
class LocalBackend:
    """`python -m vllm.entrypoints.openai.api_server` from a chosen interpreter."""

    python: str
    cpu: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)
    name: str = "local"

    def command(self, settings: ServerSettings) -> list[str]:
        return [self.python, "-m", API_SERVER_MODULE, *settings.vllm_args()]

    def environment(self, settings: ServerSettings) -> dict[str, str]:
        env = dict(self.extra_env)
        if settings.api_key:
            env["VLLM_API_KEY"] = settings.api_key
        if self.cpu:
            binding = cpu_thread_binding(settings.tensor_parallel_size)
            if binding and "VLLM_CPU_OMP_THREADS_BIND" not in env:
                env["VLLM_CPU_OMP_THREADS_BIND"] = binding
            if KEEP_ALIVE_ENV not in env and KEEP_ALIVE_ENV not in os.environ:
                env[KEEP_ALIVE_ENV] = CPU_KEEP_ALIVE_S
        return env

    def cleanup(self, settings: ServerSettings) -> None:
        return None


@dataclass
class DockerBackend:
    """The seed document's `docker run ... vllm/vllm-openai` form.

    The HF token and API key are passed by name (`-e HF_TOKEN`), so their values come from
    the caller's environment and never appear on a command line.
    """

    image: str = "vllm/vllm-openai"
    tag: str = "latest"
    gpus: str = "all"
    hf_cache: str = "~/.cache/huggingface"
    container_port: int = 8000
    docker: str = "docker"
    name: str = "docker"

    def container_name(self, settings: ServerSettings) -> str:
        return f"picoclaw-vllm-{settings.port}"

    def command(self, settings: ServerSettings) -> list[str]:
        cmd = [
            self.docker, "run", "--rm",
            "--name", self.container_name(settings),
            "--gpus", self.gpus,
            "-v", f"{os.path.expanduser(self.hf_cache)}:/root/.cache/huggingface",
            "-p", f"{settings.host}:{settings.port}:{self.container_port}",
            "--ipc=host",
            "-e", "HF_TOKEN",
        ]  # fmt: skip
        if settings.api_key:
            cmd += ["-e", "VLLM_API_KEY"]
        cmd.append(f"{self.image}:{self.tag}")
        return cmd + settings.vllm_args(bind=False)

    def environment(self, settings: ServerSettings) -> dict[str, str]:
        return {"VLLM_API_KEY": settings.api_key} if settings.api_key else {}

    def cleanup(self, settings: ServerSettings) -> None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [self.docker, "rm", "-f", self.container_name(settings)],
                capture_output=True,
                timeout=30,
                check=False,
            )


@dataclass
class ExternalBackend:
    """A server someone else runs: nothing is started or stopped."""

    name: str = "external"

    def command(self, settings: ServerSettings) -> None:
        return None

    def environment(self, settings: ServerSettings) -> dict[str, str]:
        return {}

    def cleanup(self, settings: ServerSettings) -> None:
        return None


def render_command(cmd: list[str], env: Mapping[str, str]) -> str:
    """The command as a shell line, environment names shown but secret values masked."""
    shown = " ".join(
        f"{k}=***" if "KEY" in k or "TOKEN" in k else f"{k}={shlex.quote(v)}"
        for k, v in sorted(env.items())
    )
    line = shlex.join(cmd)
    return f"{shown} {line}" if shown else line


def local_python_default() -> Path:
    from picoclaw_vllm.paths import cpu_python

    return cpu_python()
