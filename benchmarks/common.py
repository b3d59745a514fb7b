"""What the benchmark parts share: the workload, started processes, their CPU time, the stub.

Every process a benchmark starts is the leader of its own process group
(`picoclaw_vllm.procs.spawn_group`) and is stopped with `stop_group` in a `finally`, so an
interrupted run (Ctrl-C, SIGTERM) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from picoclaw_vllm.procs import group_members, spawn_group, stop_group
from picoclaw_vllm.server.embedded import free_port

REPO = Path(__file__).resolve().parent.parent
Endpoint = str  # "chat" | "completions"


class BenchmarkError(RuntimeError):
    """A benchmark step could not run (a process failed to start or answer)."""


@dataclass(frozen=True)
class Workload:
    """One closed-loop load: what both clients are asked to send."""

    concurrency: int
    requests: int  # vllm bench: --num-prompts; Locust runs for the time vLLM's run took
    prompt_tokens: int
    output_tokens: int
    endpoint: Endpoint = "chat"


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def post_json(url: str, payload: Any, timeout: float = 10.0) -> Any:
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def group_pids(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The leader, its descendants and the rest of its process group."""
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        leader = psutil.Process(proc.pid)
        found[leader.pid] = leader
        for child in leader.children(recursive=True):
            found[child.pid] = child
    for p in group_members(proc.pid):
        found.setdefault(p.pid, p)
    return list(found.values())


class CpuMeter:
    """CPU seconds (user + system) of a process group, remembered per pid across samples.

    A process that exits between samples keeps its last reading, so its time is not lost.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._last: dict[int, float] = {}
        self._procs: dict[int, psutil.Process] = {}

    def seconds(self) -> float:
        for p in group_pids(self.proc):
            self._procs.setdefault(p.pid, p)
        for pid, p in self._procs.items():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                self._last[pid] = t.user + t.system
        return sum(self._last.values())

    def process_count(self) -> int:
        return len(self._procs)


class CpuSampler:
    """A CpuMeter read every `every_s` in a thread while the block runs, so a process that
    ends inside the block (a Locust run) still has its CPU time counted; `cores` is CPU
    seconds per wall second of the block."""

    def __init__(self, proc: subprocess.Popen[bytes], every_s: float = 0.25) -> None:
        self.meter = CpuMeter(proc)
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = self._wall = 0.0
        self._cpu0 = self._cpu = 0.0

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.meter.seconds()

    def __enter__(self) -> CpuSampler:
        self._cpu0 = self.meter.seconds()
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._cpu = self.meter.seconds() - self._cpu0
        self._wall = time.monotonic() - self._start

    @property
    def cores(self) -> float:
        return self._cpu / self._wall if self._wall > 0 else 0.0


@contextlib.contextmanager
def group(
    cmd: Sequence[str], *, log_path: Path, cwd: Path = REPO, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run cmd as a process group for the duration of the block; always stopped after."""
    proc = spawn_group(cmd, log_path=log_path, cwd=cwd, env=env)
    try:
        yield proc
    finally:
        if not stop_group(proc, grace_s=5.0):
            print(f"warning: processes of {cmd[0]} were left behind", file=sys.stderr)


@dataclass
class Stub:
    base_url: str
    proc: subprocess.Popen[bytes]

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = get_json(f"{self.base_url}/stub/stats")
        return data

    def reset(self) -> None:
        post_json(f"{self.base_url}/stub/reset", {})


@contextlib.contextmanager
def stub_server(
    log_dir: Path, *, ttft_ms: float = 0.0, itl_ms: float = 0.0, cpu: int | None = None
) -> Iterator[Stub]:
    """The stub server (benchmarks.stub_server) on a free loopback port, optionally pinned."""
    port = free_port()
    cmd = [sys.executable, "-m", "benchmarks.stub_server", "--port", str(port)]
    cmd += ["--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    log = log_dir / f"stub-{port}.log"
    with group(cmd, log_path=log) as proc:
        stub = Stub(f"http://127.0.0.1:{port}", proc)
        deadline = time.monotonic() + 15.0
        while True:
            try:
                stub.stats()
                break
            except OSError as e:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchmarkError(f"the stub server did not start: {e} (see {log})") from e
                time.sleep(0.05)
        yield stub


def pinned(cmd: Sequence[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if cpu is not None else list(cmd)


def set_affinity(proc: subprocess.Popen[bytes], cpus: set[int]) -> None:
    """Pin every thread of every process of proc's group to cpus (new threads inherit it)."""
    for p in group_pids(proc):
        task_dir = Path(f"/proc/{p.pid}/task")
        tids = [int(t.name) for t in task_dir.iterdir()] if task_dir.exists() else [p.pid]
        for tid in tids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)
