"""The machine and software a benchmark ran on, and how busy the machine was otherwise."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psutil

from benchmarks.common import REPO
from picoclaw_vllm import __version__


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
            timeout=5,
        )  # fmt: skip
        return done.stdout.strip() or None
    return None


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    mem = psutil.virtual_memory()
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(mem.total / 2**30, 1),
        "os": platform.platform(),
        "kernel": platform.release(),
    }


def versions(vllm: str | None) -> dict[str, Any]:
    return {
        "picoclaw_vllm": __version__,
        "git_commit": git_commit(),
        "vllm": vllm,
        "locust": _version("locust"),
        "python": platform.python_version(),
    }


def other_activity(own: set[int], sample_s: float = 1.0) -> dict[str, Any]:
    """Load average and the busiest processes that are not this run's (over sample_s)."""
    procs = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
            procs.append(p)
    time.sleep(sample_s)
    busy = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            pct = p.cpu_percent(None)
            if pct >= 5.0 and p.pid not in own:
                cmd = " ".join(p.info.get("cmdline") or [p.info.get("name") or "?"])
                busy.append({"pid": p.pid, "cpu_percent": round(pct, 1), "cmd": cmd[:120]})
    busy.sort(key=lambda b: -float(str(b["cpu_percent"])))
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "busy_processes": busy[:8]}
