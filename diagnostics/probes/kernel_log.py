"""The kernel's OOM-killer lines (`journalctl -k`, else `dmesg`), read in bounded time.

Reading the kernel log often needs privileges (dmesg_restrict) or is impossible in a
container: then KernelLog.error says why and nothing else fails.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

COMMANDS: tuple[tuple[str, ...], ...] = (
    ("journalctl", "-k", "--no-pager", "-q", "-o", "short-iso", "--since", "-7d"),
    ("dmesg", "-T"),
)
TIMEOUT_S = 3.0
MAX_BYTES = 16 * 1024 * 1024
OOM_LINE = re.compile(
    r"Out of memory: Killed process (?P<pid>\d+) \((?P<name>[^)]*)\)"
    r"|oom-kill:.*task=(?P<task>[^,]*),pid=(?P<task_pid>\d+)"
    r"|Memory cgroup out of memory: Killed process (?P<cg_pid>\d+) \((?P<cg_name>[^)]*)\)"
)
VLLM_NAMES = re.compile(r"VLLM|vllm|python|EngineCor", re.IGNORECASE)


@dataclass(frozen=True)
class KernelLog:
    source: str | None  # the command that answered
    oom_lines: tuple[str, ...] = ()  # newest last
    errors: tuple[str, ...] = field(default_factory=tuple)  # why a command could not be read

    def killed(self, pid: str | None) -> str | None:
        """The newest OOM-killer line naming pid, else one naming a vLLM/Python process."""
        if pid:
            for line in reversed(self.oom_lines):
                if re.search(rf"(?:process |pid=){pid}\b", line):
                    return line
        for line in reversed(self.oom_lines):
            if VLLM_NAMES.search(line):
                return line
        return None


def _run(cmd: Sequence[str], timeout_s: float) -> tuple[str | None, str | None]:
    try:
        done = subprocess.run(
            list(cmd), capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        return None, f"{cmd[0]} is not installed"
    except subprocess.TimeoutExpired:
        return None, f"{cmd[0]} did not answer within {timeout_s:g} s"
    except OSError as e:
        return None, f"{cmd[0]}: {e.strerror or e}"
    out = done.stdout[-MAX_BYTES:].decode("utf-8", "replace")
    if done.returncode != 0 or not out.strip():
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, f"{cmd[0]}: {why[-1][:160] if why else f'exit {done.returncode}, no output'}"
    return out, None


def read_kernel_log(
    commands: Sequence[Sequence[str]] = COMMANDS, timeout_s: float = TIMEOUT_S
) -> KernelLog:
    errors = []
    for cmd in commands:
        out, error = _run(cmd, timeout_s)
        if out is None:
            errors.append(error or cmd[0])
            continue
        lines = tuple(line.strip() for line in out.splitlines() if OOM_LINE.search(line))
        return KernelLog(" ".join(cmd[:2]), lines[-20:], tuple(errors))
    return KernelLog(None, (), tuple(errors))
