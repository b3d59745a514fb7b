"""Process-group stopping, on real processes that ignore SIGTERM and fork children."""

from __future__ import annotations

import sys
import textwrap
import time

import psutil

from picoclaw_vllm.procs import group_members, spawn_group, stop_group

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
