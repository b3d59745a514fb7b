"""Running one load step as a headless Locust subprocess (a master and N workers with N > 0).

The API key reaches Locust in the environment (VLLM_API_KEY), never on its command line.
While Locust runs, `RecordTail` reads the records file as it grows, for live figures.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import loadtests
from loadtests import option_table
from picoclaw_vllm.procs import spawn_group, stop_group
from sweeps.config import LoadStep, SweepConfig

# the Locust load profile (loadtests/chat.py), run by path as `locust -f` runs it
CHAT_FILE = Path(loadtests.__file__).with_name("chat.py")
SETUP_MARGIN_S = 180.0


@dataclass(frozen=True)
class LocustRun:
    command: list[str]
    records: Path
    log: Path

    @property
    def command_line(self) -> str:
        return shlex.join(self.command)


def locust_command(
    config: SweepConfig,
    load: LoadStep,
    *,
    step_id: str,
    host: str,
    model: str,
    records: Path,
    prompt_file: Path | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The Locust command of one step; `prompt_file` overrides config.prompt_file."""
    users = max(1, load.concurrency)
    run_time = math.ceil(config.warmup_s + config.step_time_s)
    cmd = [
        python, "-m", "locust", "-f", str(CHAT_FILE), "--headless",
        "--host", host, "-u", str(users), "-r", str(users), "-t", f"{run_time}s",
        "--stop-timeout", f"{math.ceil(config.stop_timeout_s)}",
        "--exit-code-on-error", "0", "--only-summary", "--loglevel", "INFO",
        "--model", model,
        "--records", str(records),
        "--load-mode", load.mode,
        "--step-id", step_id,
    ]  # fmt: skip
    cmd += option_table.locust_args(config.load)
    prompt_file = None if config.workload == "agent" else prompt_file or config.prompt_file
    if prompt_file:
        cmd += ["--prompt-file", str(prompt_file)]
    if load.mode == "rate" and load.rate:
        cmd += ["--rate", f"{load.rate:g}"]
    if config.workers > 0:
        cmd += ["--processes", str(config.workers)]
    return cmd


def locust_timeout_s(config: SweepConfig) -> float:
    return config.warmup_s + config.step_time_s + config.stop_timeout_s + SETUP_MARGIN_S


class RecordTail:
    """Counts the requests and output tokens in a growing records file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.requests = 0
        self.failures = 0
        self.output_tokens = 0

    def poll(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self._offset += end
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            self.requests += 1
            if record.get("ok"):
                self.output_tokens += record.get("output_tokens") or 0
            else:
                self.failures += 1


class LocustFailed(RuntimeError):
    def __init__(self, message: str, exit_code: int | None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit): ")
_LOGGED_ERROR = re.compile(r"\b(?:ERROR|CRITICAL)\b")


def log_cause(path: Path, max_chars: int = 400) -> str:
    """The line of a Locust log that says why it failed: the last exception raised, else the
    last line logged as an error, else the last lines (Locust ends with its stats table, which
    says nothing about the cause)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for pattern in (_EXCEPTION_LINE, _LOGGED_ERROR):
        found = [line.strip() for line in lines if pattern.search(line.strip())]
        if found:
            return f"{found[-1][:max_chars]} (see {path.name})"
    return "\n".join(lines[-5:])


def run_locust(
    run: LocustRun,
    *,
    env: Mapping[str, str],
    timeout_s: float,
    on_tick: Callable[[RecordTail, float], bool | None] = lambda _t, _e: None,
    tick_s: float = 0.5,
    stop_grace_s: float = 5.0,
) -> RecordTail:
    """Run Locust to its end, or until `on_tick` returns True (the step has enough: its group
    is stopped then, and its exit status is not a failure); stop its whole group on timeout or
    interrupt. Raises LocustFailed. `stop_grace_s`: how long a group stopped early may take
    (Locust lets the requests in flight finish within its --stop-timeout on SIGTERM)."""
    run.records.unlink(missing_ok=True)
    tail = RecordTail(run.records)
    proc: subprocess.Popen[bytes] = spawn_group(run.command, log_path=run.log, env=env)
    started = time.monotonic()
    enough = False
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > timeout_s:
                raise LocustFailed(f"Locust did not finish within {timeout_s:.0f} s", None)
            time.sleep(tick_s)
            tail.poll()
            if on_tick(tail, time.monotonic() - started):
                enough = True
                break
    finally:
        stop_group(proc, grace_s=stop_grace_s if enough else 5.0)
    tail.poll()
    if proc.returncode != 0 and not enough:
        raise LocustFailed(
            f"Locust exited with code {proc.returncode}: {log_cause(run.log)}", proc.returncode
        )
    return tail
