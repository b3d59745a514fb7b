"""Servers this tool started whose tool is gone: found by the mark in their environment.

Every vLLM server the tool starts carries OWNER_ENV = "TOOL_PID:TOOL_START:WHAT" (WHAT: the
run directory, or what started it). A server whose tool process no longer exists (or is
another process by now) is a leftover: the sweep stops it before it starts its own, and the
doctor names it. The watchdog of picoclaw_vllm.procs makes leftovers rare; this catches the
rest (a watchdog killed too, a server that left its process group).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

import psutil

from picoclaw_vllm.procs import group_members

OWNER_ENV = "PICOCLAW_VLLM_OWNER"


def owner_tag(what: str) -> str:
    me = psutil.Process()
    return f"{me.pid}:{me.create_time():.2f}:{what}"


@dataclass(frozen=True)
class Leftover:
    pid: int
    pgid: int
    cmdline: str
    owner_pid: int
    started_by: str  # the run directory or what started it

    def describe(self) -> str:
        return (
            f"pid {self.pid} (process group {self.pgid}), left by picoclaw-vllm pid "
            f"{self.owner_pid} ({self.started_by or 'unknown'}): {self.cmdline[:120]}"
        )


def _owner_alive(pid: int, started: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except psutil.Error:
        return False


def find_leftovers() -> list[Leftover]:
    """Group leaders marked with OWNER_ENV whose tool is gone."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            tag = proc.environ().get(OWNER_ENV)
            if not tag or os.getpgid(proc.pid) != proc.pid:
                continue
            pid_text, started, what = tag.split(":", 2)
            if _owner_alive(int(pid_text), float(started)):
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            found.append(Leftover(proc.pid, proc.pid, cmdline, int(pid_text), what))
        except (psutil.Error, OSError, ValueError):
            continue
    return found


def stop_leftover(leftover: Leftover, grace_s: float = 10.0) -> bool:
    """SIGTERM its process group, then SIGKILL; True when nothing of it is left."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leftover.pgid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not group_members(leftover.pgid):
                return True
            time.sleep(0.1)
    return not group_members(leftover.pgid)
