"""Starting and stopping process groups so that nothing the tool starts outlives it.

Every group `spawn_group` starts gets a watchdog: a small process in a session of its own
that holds the read end of a pipe whose write end only this tool holds. When the tool ends
in any way, `kill -9` included, the pipe closes and the watchdog stops the group (SIGTERM,
WATCHDOG_GRACE_S, SIGKILL). `stop_group` tells it first that all is done, so it exits quietly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

WATCHDOG_GRACE_S = 5.0
# argv: PGID GRACE_S; stdin: the pipe. A byte means "done"; end of file means the tool died.
WATCHDOG = """
import os, signal, sys, time
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
try:
    done = os.read(0, 1)
except OSError:
    done = b""
if done:
    sys.exit(0)
def alive():
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        sys.exit(0)
    end = time.monotonic() + wait
    while time.monotonic() < end and alive():
        time.sleep(0.1)
"""
_watchdogs: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}
_watchdogs_lock = threading.Lock()


def _start_watchdog(pgid: int) -> None:
    read_end, write_end = os.pipe()  # both non-inheritable: no other child holds the write end
    try:
        watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(pgid), str(WATCHDOG_GRACE_S)],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    with _watchdogs_lock:
        _watchdogs[pgid] = (write_end, watchdog)


def release_watchdog(pgid: int) -> None:
    """Tell the group's watchdog that the group was stopped (or is no longer ours)."""
    with _watchdogs_lock:
        entry = _watchdogs.pop(pgid, None)
    if entry is None:
        return
    write_end, watchdog = entry
    with contextlib.suppress(OSError):
        os.write(write_end, b"x")
    os.close(write_end)
    with contextlib.suppress(subprocess.TimeoutExpired):
        watchdog.wait(timeout=5)


def spawn_group(
    cmd: Sequence[str],
    *,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start cmd as the leader of a new session (and so of a new process group), watched:
    the group is stopped when this process ends, however it ends."""
    out: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("ab")
    try:
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        if not isinstance(out, int):
            out.close()
    try:
        _start_watchdog(proc.pid)
    except OSError:
        stop_group(proc, grace_s=1.0)
        raise
    return proc


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of the process group pgid."""
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return members


def _alive(procs: Sequence[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.Error:
            continue
    return alive


def _signal_all(pgid: int, tracked: Sequence[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for p in _alive(tracked):
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)


def _gone(pgid: int, tracked: Sequence[psutil.Process]) -> bool:
    return not _alive(tracked) and not group_members(pgid)


def stop_group(proc: subprocess.Popen[bytes], *, grace_s: float = 10.0) -> bool:
    """SIGTERM the whole group, wait up to grace_s, then SIGKILL it. True when nothing is left.

    Descendants that left the group (a session of their own) are collected first and
    signalled too.
    """
    pgid = proc.pid
    try:
        leader = psutil.Process(proc.pid)
        tracked = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        tracked = []
    known = {t.pid for t in tracked}
    tracked += [p for p in group_members(pgid) if p.pid not in known]
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        _signal_all(pgid, tracked, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()
            if _gone(pgid, tracked):
                release_watchdog(pgid)
                return True
            time.sleep(0.1)
    proc.poll()
    gone = _gone(pgid, tracked)
    if gone:
        release_watchdog(pgid)
    return gone


def is_vllm_server(args: list[str]) -> bool:
    """Whether a command line is a vLLM OpenAI-compatible server."""
    if any("vllm.entrypoints" in a for a in args):
        return True
    return any(a.endswith("/vllm") or a == "vllm" for a in args[:2]) and "serve" in args
