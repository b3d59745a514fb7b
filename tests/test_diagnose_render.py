"""Renderers: exact console text (80 columns, no colour in a pipe), the JSON document, the
catalog listing, exit codes, and that secrets never leave."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from diagnose_helpers import run_cli
from rich.console import Console

from diagnostics import render_console, render_json
from diagnostics.catalog import CATALOG
from diagnostics.checks.base import Check
from diagnostics.facts import Target
from diagnostics.findings import Finding, Outcome, Severity
from diagnostics.runner import CHECKS, CheckResult, Diagnosis
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.picoclaw.config import PicoclawConfig

SECRET = "render-test-key-8c1d"


def _noop(facts: object) -> Outcome:
    return Outcome.ok()


def sample() -> Diagnosis:
    target = Target(
        api_base="http://gpu-box:8000/v1", model="tiny-llama", model_configured="vllm/tiny-llama",
        provider="vllm", api_key=SECRET, key_source="config", max_tokens=512,
        request_timeout_s=120.0, config=PicoclawConfig(path="/home/u/.picoclaw/config.json",
                                                       format="legacy"),
    )  # fmt: skip
    conn = Check("connection", "Server reachable", "Server", _noop)
    auth = Check("auth", "API key", "Server", _noop, ("connection",))
    log = Check("server_log", "Server log", "Server log", _noop)
    return Diagnosis(
        target=target,
        results=[
            CheckResult(conn, Outcome.ok("GET /v1/models -> 200")),
            CheckResult(auth, Outcome.of(Finding(
                FindingId.AUTH_FAILED, Severity.FAIL,
                "the server rejects the key PicoClaw sends (wrong key, from config)",
                evidence=f"GET http://gpu-box:8000/v1/models -> 401 (key {SECRET})",
                remedy='~/.picoclaw/config.json: "providers": {"vllm": {"api_key": "<key>"}}',
            ))),
            CheckResult(log, Outcome.skip("no server log given")),
        ],
        vllm_version="0.32.0",
        duration_s=0.42,
    )  # fmt: skip


EXPECTED = """\
picoclaw-vllm diagnose: http://gpu-box:8000/v1, model tiny-llama, vLLM 0.32.0

Server
  ✓ Server reachable
  ✗ API key: the server rejects the key PicoClaw sends (wrong key, from config)
    [auth_failed] GET http://gpu-box:8000/v1/models -> 401 (key ***)
    fix: ~/.picoclaw/config.json: "providers": {"vllm": {"api_key": "<key>"}}

Server log
  - Server log (skipped: no server log given)

Problems found: 1 failed, 0 warnings, 1 passed, 1 skipped in 0.4 s
"""


def console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=80, force_terminal=False, color_system=None), buffer


def test_console_exact_text() -> None:
    from picoclaw_vllm.redact import register_secret

    register_secret(SECRET)
    c, buffer = console()
    render_console.render(sample(), c)
    assert buffer.getvalue() == EXPECTED


def test_console_verbose_adds_probe_details_within_80_columns() -> None:
    c, buffer = console()
    render_console.render(sample(), c, verbose=True)
    text = buffer.getvalue()
    assert "    · GET /v1/models -> 200" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert not any(line != line.rstrip() for line in text.splitlines())


def test_json_document_is_versioned_and_never_holds_the_key() -> None:
    doc = json.loads(render_json.render(sample()))
    assert doc["schema"] == "picoclaw-vllm/diagnosis/v1"
    assert doc["tool"]["name"] == "picoclaw-vllm" and doc["tool"]["version"]
    assert doc["vllm"] == {"version": "0.32.0"}
    assert doc["target"]["api_base"] == "http://gpu-box:8000/v1"
    assert doc["target"]["api_key_set"] is True
    assert [c["status"] for c in doc["checks"]] == ["pass", "fail", "skip"]
    assert doc["findings"][0].keys() == {"id", "severity", "message", "evidence", "remedy"}
    assert SECRET not in json.dumps(doc)


def test_exit_codes() -> None:
    d = sample()
    assert d.exit_code() == 1
    d.results = [d.results[0], d.results[2]]
    assert d.exit_code() == 0 and d.exit_code(strict=True) == 0
    warn = Outcome.of(Finding(FindingId.FALLBACK_MISSING, Severity.WARN, "m", "e", "r"))
    d.results.append(CheckResult(Check("fallbacks", "Fallbacks", "PicoClaw config", _noop), warn))
    assert d.exit_code() == 0 and d.exit_code(strict=True) == 1
    bad = Outcome.of(Finding(FindingId.CONFIG_INVALID, Severity.FAIL, "m", "e", "r"))
    d.results.append(CheckResult(Check("config", "PicoClaw config", "PicoClaw config", _noop), bad))
    assert d.exit_code() == 2


def test_list_shows_every_finding_id(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "--list")
    assert rc == 0 and "***" not in out
    for finding_id in CATALOG:
        assert finding_id in out
    required = {
        "config_invalid", "connection_refused", "api_base_path", "auth_failed",
        "model_not_found", "context_overflow", "engine_dead", "completion_failed",
        "slow_responses", "cuda_oom", "gpu_memory_in_use", "kv_cache_insufficient", "hf_gated",
        "hf_repo_not_found", "tensor_parallel_invalid", "shm_too_small", "port_in_use",
        "no_kernel_image", "fallback_missing",
    }  # fmt: skip
    assert required <= set(CATALOG)


def test_every_check_finding_id_is_catalogued() -> None:
    for check in CHECKS:
        assert set(check.finding_ids) <= set(CATALOG), check.name


def test_unknown_check_and_bad_log_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = run_cli(capsys, "--check", "nope")
    assert rc == 2 and "unknown check" in err
    rc, _, err = run_cli(capsys, "--log", str(tmp_path / "missing.log"))
    assert rc == 2 and "--log" in err


def test_log_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PICOCLAW_HOME", str(tmp_path))
    log = "(EngineCore pid=7) ERROR x [core.py:1] torch.OutOfMemoryError: CUDA out of memory.\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(log))
    rc, out, _ = run_cli(capsys, "--log", "-", "--check", "server_log")
    assert "[cuda_oom] stdin line 1" in out and rc == 1


def fake_tool(tmp_path: Path, name: str, script: str) -> None:
    """A stand-in `docker` / `journalctl` on PATH (neither exists on the test machines)."""
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


LOGS = Path(__file__).parent / "data" / "diagnose" / "logs"


@pytest.mark.parametrize(
    ("flag", "tool", "expected_args"),
    [("--docker", "docker", "logs --tail 2000000 vllm"),
     ("--journal", "journalctl", "-u vllm -n 2000000 --no-pager -o cat")],
)  # fmt: skip
def test_log_from_docker_and_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    flag: str, tool: str, expected_args: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("PICOCLAW_HOME", str(tmp_path))
    fake_tool(tmp_path, tool, f'echo "$@" > {tmp_path}/args; cat {LOGS}/shm_too_small.log')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    rc, out, _ = run_cli(capsys, flag, "vllm", "--check", "server_log")
    assert "[shm_too_small]" in out and "--ipc=host" in out and rc == 1
    assert (tmp_path / "args").read_text().strip() == expected_args


def test_docker_missing_or_failing_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    rc, _, err = run_cli(capsys, "--docker", "vllm")
    assert rc == 2 and "docker is not installed" in err
    fake_tool(tmp_path, "docker", 'echo "Error: No such container: vllm" >&2; exit 1')
    rc, _, err = run_cli(capsys, "--docker", "vllm")
    assert rc == 2 and "No such container" in err


def test_help_names_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli(capsys, "--help")
    out = " ".join(capsys.readouterr().out.split())
    for check in CHECKS:
        assert f" {check.name}" in out, check.name
