"""Local vLLM server processes (found by command line), to tell 'still starting' from 'down'."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from picoclaw_vllm.procs import is_vllm_server

DEFAULT_PORT = 8000


@dataclass(frozen=True)
class VllmProcess:
    pid: int
    port: int
    running_for_s: float
    cmdline: str

    def log_file(self) -> Path | None:
        """The regular file its stderr (else stdout) goes to, when it is one we can read."""
        for fd in (2, 1):
            try:
                target = Path(os.readlink(f"/proc/{self.pid}/fd/{fd}"))
                if target.is_file() and os.access(target, os.R_OK):
                    return target
            except OSError:
                continue
        return None


def _port(args: list[str]) -> int:
    for i, arg in enumerate(args):
        if arg == "--port" and i + 1 < len(args) and args[i + 1].isdigit():
            return int(args[i + 1])
        if arg.startswith("--port=") and arg[7:].isdigit():
            return int(arg[7:])
    return DEFAULT_PORT


def local_vllm_processes() -> list[VllmProcess]:
    """Only the top of each server's process tree (EngineCore children share its cmdline)."""
    found: dict[int, VllmProcess] = {}
    now = time.time()
    for proc in psutil.process_iter(["pid", "ppid", "cmdline", "create_time"]):
        try:
            args = proc.info["cmdline"] or []
            if is_vllm_server(args):
                found[proc.pid] = VllmProcess(
                    proc.pid, _port(args), now - float(proc.info["create_time"]), " ".join(args)
                )
        except (psutil.Error, TypeError, ValueError):
            continue
    parents = {p.pid for p in found.values()}
    result = []
    for p in found.values():
        try:
            if psutil.Process(p.pid).ppid() in parents:
                continue
        except psutil.Error:
            continue
        result.append(p)
    return result
