"""Interrupting `picoclaw-vllm sweep` leaves nothing running and keeps finished steps;
`--resume` finishes the sweep without redoing them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from conftest import FAST_START_ARGS, TEST_API_KEY

from picoclaw_vllm import run_layout
from picoclaw_vllm.server.launcher import ServerHandle
from sweeps.results import RunDir

pytestmark = pytest.mark.vllm

ROOT = Path(__file__).resolve().parent.parent


def sweep_cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "VLLM_API_KEY": TEST_API_KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "picoclaw_vllm", "sweep", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"sweep ended early ({proc.returncode}): {output}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the sweep")
        time.sleep(0.2)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(p.cmdline())[:200])
        except psutil.Error:
            continue
    return left


def interrupt(proc: subprocess.Popen[str], watched: list[psutil.Process]) -> str:
    watched += [p for p in descendants(proc.pid) if p.pid not in {w.pid for w in watched}]
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, output
    # margin: the sweep stops its server group (SIGTERM, then SIGKILL after a bounded wait)
    # before it exits; 10 s more only absorbs a starved machine reaping the processes
    deadline = time.monotonic() + 10
    while alive(watched) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(watched) == [], output
    return output


def test_interrupt_then_resume_external(vllm_server: ServerHandle, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = RunDir(out)
    args = [
        "--launch", "external", "--api-base", vllm_server.api_base, "--concurrency", "1,2,3",
        "--duration", "3s", "--prompt-tokens", "32", "--output-tokens", "16", "--out", str(out),
    ]  # fmt: skip
    proc = sweep_cli(*args)
    watched: list[psutil.Process] = []

    def second_step_running() -> bool:
        watched.extend(descendants(proc.pid))
        return len(run.rows()) == 1 and run.records_path("external-c2").exists()

    wait_for(second_step_running, proc, 180)
    interrupt(proc, watched)
    kept = run.rows()
    assert [r["step_id"] for r in kept] == ["external-c1"]
    first_records = run.records_path("external-c1")
    stamp = first_records.stat().st_mtime_ns

    resumed = sweep_cli("--resume", "--out", str(out))
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    rows = run.rows()
    assert [r["step_id"] for r in rows] == ["external-c1", "external-c2", "external-c3"]
    assert rows[0] == kept[0]  # not redone
    assert first_records.stat().st_mtime_ns == stamp
    assert all(int(r["completed"]) > 0 for r in rows)
    assert (out / run_layout.RESULTS_PARQUET).exists()


def test_refuses_to_overwrite_without_resume(vllm_server: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / run_layout.MANIFEST).write_text("{}")
    proc = sweep_cli("--launch", "external", "--api-base", vllm_server.api_base,
                     "--out", str(tmp_path / "run"))  # fmt: skip
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--resume" in output


@pytest.mark.timeout(900)
def test_interrupt_then_kill_9_of_a_local_sweep(cpu_env: None, tmp_path: Path) -> None:
    """Ctrl-C in the first step: vLLM and Locust stopped, the step no result. --resume redoes
    it and goes on; kill -9 in the second step: the watchdogs stop vLLM and Locust within
    seconds, sweep.json names the server it had started, the first step stays a result. (That
    a resume then finishes the sweep is test_interrupt_then_resume_external's: one server
    start fewer here.)"""
    out = tmp_path / "run"
    run = RunDir(out)
    proc = sweep_cli(
        "--max-num-seqs", "2", "--concurrency", "1,2", "--duration", "4s",
        "--prompt-tokens", "32", "--output-tokens", "16", "--out", str(out),
        *(f"--vllm-arg={a}" for a in FAST_START_ARGS),
    )  # fmt: skip
    watched: list[psutil.Process] = []

    def step_running(step_id: str, sweep: subprocess.Popen[str]) -> Callable[[], bool]:
        def running() -> bool:
            watched.extend(descendants(sweep.pid))
            records = run.records_path(step_id)
            return records.exists() and records.stat().st_size > 0

        return running

    wait_for(step_running("s2-tp1-c1", proc), proc, 600)
    cmdlines = " ".join(" ".join(p.cmdline()) for p in watched if p.is_running())
    assert "vllm.entrypoints.openai.api_server" in cmdlines and "locust" in cmdlines
    interrupt(proc, watched)
    assert run.rows() == []  # the interrupted step is not a result
    assert (out / run_layout.LOGS_DIR / "s2-tp1.log").exists()

    resumed = sweep_cli("--resume", "--out", str(out))
    watched = []
    wait_for(step_running("s2-tp1-c2", resumed), resumed, 600)
    watched += [p for p in descendants(resumed.pid) if p.pid not in {w.pid for w in watched}]
    cmdlines = " ".join(" ".join(p.cmdline()) for p in watched if p.is_running())
    assert "vllm.entrypoints.openai.api_server" in cmdlines and "locust" in cmdlines
    recorded = run.read_manifest()["servers"]["s2-tp1"]
    assert recorded["port"] and "vllm.entrypoints" in recorded["command"]
    assert recorded["pid"] in {p.pid for p in watched}

    resumed.kill()
    resumed.wait(timeout=10)
    t0 = time.monotonic()
    while alive(watched) and time.monotonic() - t0 < 30:
        time.sleep(0.2)
    assert alive(watched) == []
    gone_after_s = time.monotonic() - t0
    print(f"kill -9 of the sweep: nothing left after {gone_after_s:.1f} s")
    assert gone_after_s < 15, gone_after_s
    rows = run.rows()
    assert [r["step_id"] for r in rows] == ["s2-tp1-c1"] and int(rows[0]["completed"]) > 0
