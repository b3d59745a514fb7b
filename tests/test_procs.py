"""Process-group stopping, on real processes that ignore SIGTERM and fork children."""

from __future__ import annotations

import sys
import textwrap
import time

import psutil

from picoclaw_vllm.procs import WATCHDOG_GRACE_S, group_members, spawn_group, stop_group

STUBBORN = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


def test_stop_group_kills_a_group_that_ignores_sigterm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "out.log"
    proc = spawn_group([sys.executable, "-c", STUBBORN], log_path=log)
    deadline = time.monotonic() + 20
    while not log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    child_pid = int(log.read_text().split()[0])
    assert {p.pid for p in group_members(proc.pid)} >= {proc.pid, child_pid}

    t0 = time.monotonic()
    assert stop_group(proc, grace_s=0.5) is True
    assert time.monotonic() - t0 < 10
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == "zombie"
    assert group_members(proc.pid) == []
    assert proc.returncode is not None


def test_stop_group_on_an_already_exited_process() -> None:
    proc = spawn_group([sys.executable, "-c", "pass"])
    proc.wait(timeout=20)
    assert stop_group(proc, grace_s=0.5) is True


TOOL = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from picoclaw_vllm.procs import spawn_group
    proc = spawn_group([sys.executable, "-c", sys.argv[1]], log_path=Path(sys.argv[2]))
    print(proc.pid, flush=True)
    time.sleep(600)
    """
)


def _wait_for_pids(log, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 20
    while len(log.read_text().split()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return [int(p) for p in log.read_text().split()[:n]]


def test_a_killed_tool_leaves_no_group_behind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """kill -9 of the tool: its watchdog stops the group (SIGTERM, then SIGKILL: ignored here)."""
    log = tmp_path / "group.log"
    tool = psutil.Popen([sys.executable, "-c", TOOL, STUBBORN, str(log)], stdout=-1, text=True)
    try:
        assert tool.stdout is not None
        leader = int(tool.stdout.readline())
        (child,) = _wait_for_pids(log, 1)
        assert group_members(leader)
        tool.kill()
        tool.wait(timeout=10)
        t0 = time.monotonic()
        while group_members(leader) and time.monotonic() - t0 < 20:
            time.sleep(0.1)
        assert group_members(leader) == []
        assert time.monotonic() - t0 < WATCHDOG_GRACE_S + 6
        assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
    finally:
        for pid in [tool.pid]:
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()


def test_stop_group_dismisses_its_watchdog() -> None:
    proc = spawn_group([sys.executable, "-c", "import time; time.sleep(60)"])
    # this group's watchdog (others, e.g. the session server's, may be running too)
    watchdogs = [
        p
        for p in psutil.Process().children()
        if "killpg" in " ".join(p.cmdline()) and str(proc.pid) in p.cmdline()
    ]
    assert len(watchdogs) == 1
    assert stop_group(proc, grace_s=0.5) is True
    assert not watchdogs[0].is_running() or watchdogs[0].status() == "zombie"
