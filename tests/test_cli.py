"""The command line: help, version, usage errors (exit 2, one line, no traceback)."""

from __future__ import annotations

import subprocess
import sys

from picoclaw_vllm import __version__


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picoclaw_vllm", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_every_subcommand() -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    for name in ("diagnose", "sweep", "report", "acceptance", "server"):
        assert f"    {name}" in r.stdout


def test_version() -> None:
    r = run_cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"picoclaw-vllm {__version__}"


def test_usage_error_is_one_line_exit_2() -> None:
    r = run_cli("server", "run", "--no-such-flag")
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "--no-such-flag" in lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_subcommand_is_usage_error() -> None:
    r = run_cli("frobnicate")
    assert r.returncode == 2
    assert "invalid choice" in r.stderr
    assert "Traceback" not in r.stderr
