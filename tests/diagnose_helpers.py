"""Helpers shared by the doctor's tests: run the CLI in-process, write PicoClaw configs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from picoclaw_vllm.cli import main

# Every diagnosis the current test produced: conftest attaches them to its failure report,
# so an assertion on a real server's findings always explains itself.
DIAGNOSES: list[dict[str, Any]] = []


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["diagnose", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    rc, out, err = run_cli(capsys, "--json", *argv)
    assert out.strip(), err
    doc = json.loads(out)
    DIAGNOSES.append(doc)
    return rc, doc


def ids(doc: dict[str, Any]) -> list[str]:
    return [f["id"] for f in doc["findings"]]


def status_of(doc: dict[str, Any], check: str) -> str:
    return next(c["status"] for c in doc["checks"] if c["name"] == check)


def legacy_config(
    tmp_path: Path,
    api_base: str,
    model: str,
    api_key: str | None = None,
    max_tokens: int | None = 512,
    fallbacks: bool = True,
) -> Path:
    providers: dict[str, Any] = {"vllm": {"api_base": api_base}}
    if api_key:
        providers["vllm"]["api_key"] = api_key
    defaults: dict[str, Any] = {"model": model}
    if max_tokens is not None:
        defaults["max_tokens"] = max_tokens
    if fallbacks:
        defaults["model_fallbacks"] = ["openrouter/meta-llama/llama-3.2-3b-instruct"]
        providers["openrouter"] = {"api_key": "sk-or-v1-fallbackkey123"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"agents": {"defaults": defaults}, "providers": providers}))
    return path


def explain(doc: dict[str, Any]) -> str:
    """The whole diagnosis, for an assertion's message: a failure explains itself."""
    return "the diagnosis was:\n" + json.dumps(doc, indent=1)


def one_finding(doc: dict[str, Any], finding_id: str) -> dict[str, Any]:
    """The first finding with this id; a failure message with the diagnosis when none."""
    found = [f for f in doc["findings"] if f["id"] == finding_id]
    assert found, f"no {finding_id!r} finding; {explain(doc)}"
    return found[0]


def startup_s() -> float:
    """What starting the CLI costs on this machine at this moment (a bare `diagnose --list`):
    the margin a timed whole-process test adds for a loaded, shared machine."""
    root = Path(__file__).resolve().parent.parent
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "picoclaw_vllm", "diagnose", "--list"], cwd=root,
                   capture_output=True, check=True)  # fmt: skip
    return time.monotonic() - start
