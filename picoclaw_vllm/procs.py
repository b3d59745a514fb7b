"""Starting and stopping process groups so that nothing the tool starts outlives it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil


def spawn_group(
    cmd: Sequence[str],
    *,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start cmd as the leader of a new session (and so of a new process group)."""
    out: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("ab")
    try:
        return subprocess.Popen(
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
                return True
            time.sleep(0.1)
    proc.poll()
    return _gone(pgid, tracked)
