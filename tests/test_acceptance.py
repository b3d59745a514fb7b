"""`picoclaw-vllm acceptance` end to end against the real session server (--launch external),
and its embedded defaults. The embedded run itself (four server starts) is the README's main
job; it is not repeated here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_API_KEY

from picoclaw_vllm.acceptance_command import _fill_defaults, embedded_picoclaw_config
from picoclaw_vllm.cli import build_parser
from picoclaw_vllm.intervals import proportion_interval, quantile_needs
from picoclaw_vllm.server.embedded import EMBEDDED_MAX_MODEL_LEN
from picoclaw_vllm.server.launcher import ServerHandle
from reports.gates import Gates, parse_slo_argument


def _acceptance(
    tmp_path: Path, server: ServerHandle, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PICOCLAW_HOME": str(tmp_path / "picoclaw"),
        "VLLM_API_KEY": TEST_API_KEY,
    }
    return subprocess.run(
        [
            sys.executable, "-m", "picoclaw_vllm", "acceptance",
            "--launch", "external", "--api-base", server.api_base,
            "--concurrency", "1,4", "--duration", "3s", "--warmup", "1s",
            "--prompt-tokens", "32", "--output-tokens", "16",
            "--out", str(tmp_path / "run"), "--format", "json,junit,md",
            *extra,
        ],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip


def _picoclaw_config(tmp_path: Path, server: ServerHandle, max_tokens: int) -> Path:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "providers": {"vllm": {"api_base": server.api_base, "api_key": TEST_API_KEY}},
                "agents": {"defaults": {"model": "vllm/tiny-llama", "max_tokens": max_tokens}},
            }
        )
    )
    return path


@pytest.mark.vllm
def test_external_acceptance_passes_and_writes_every_part(
    vllm_server: ServerHandle, tmp_path: Path
) -> None:
    config = _picoclaw_config(tmp_path, vllm_server, max_tokens=256)
    # 50 %: an error-free short run bounds it (Wilson) from a handful of requests; 5 % needs ~73
    r = _acceptance(tmp_path, vllm_server, "--config", str(config), "--slo", "error_rate_pct=50")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    doctor = json.loads((run / "doctor.json").read_text())
    assert doctor["schema"] == "picoclaw-vllm/diagnosis/v1"
    assert not [f for f in doctor["findings"] if f["severity"] == "fail"]
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["verdict"]["passed"] is True
    rows = (run / "results.csv").read_text().splitlines()
    assert len(rows) == 3  # header + two load steps
    junit = (run / "report" / "report-junit.xml").read_text()
    assert 'failures="0"' in junit
    everything = (
        r.stdout
        + r.stderr
        + "".join(p.read_text(errors="replace") for p in run.rglob("*") if p.is_file())
    )
    assert TEST_API_KEY not in everything


@pytest.mark.vllm
def test_max_tokens_above_the_context_fails_the_doctor_gate(
    vllm_server: ServerHandle, tmp_path: Path
) -> None:
    config = _picoclaw_config(tmp_path, vllm_server, max_tokens=EMBEDDED_MAX_MODEL_LEN + 1)
    r = _acceptance(tmp_path, vllm_server, "--config", str(config), "--concurrency", "1")
    assert r.returncode == 1, r.stderr
    doctor = json.loads((tmp_path / "run" / "doctor.json").read_text())
    assert "context_overflow" in [f["id"] for f in doctor["findings"]]
    junit = (tmp_path / "run" / "report" / "report-junit.xml").read_text()
    assert "<failure" in junit and "doctor" in junit
    assert "acceptance FAILED" in r.stderr


def test_embedded_defaults_are_small_and_gated() -> None:
    args = build_parser("acceptance").parse_args(["acceptance"])
    assert _fill_defaults(args) is True
    assert args.max_num_seqs == (2, 8)
    assert args.tensor_parallel_size == (1, 2)
    assert args.duration <= 10
    assert args.slo_ttft_ms is not None
    # each step runs until its gates can be settled: the budget holds what they need
    assert args.min_requests == 36 and args.precision == "coarse" and args.max_step_time <= 60
    gates = Gates.from_values(parse_slo_argument(args.slo[0]))
    assert gates.max_error_rate_pct is not None and {g.stat for g in gates.latency} == {"p50"}
    upper = proportion_interval(0, args.min_requests).high
    assert upper is not None and 100 * upper < gates.max_error_rate_pct
    assert quantile_needs(0.5) <= args.min_requests


def test_embedded_with_a_duration_or_gates_of_its_own_gets_no_budget() -> None:
    for extra in (["--duration", "8s"], ["--slo", "ttft_p95_ms=900"]):
        args = build_parser("acceptance").parse_args(["acceptance", *extra])
        _fill_defaults(args)
        assert args.min_requests is None and args.precision is None, extra


def test_general_defaults_for_a_real_model() -> None:
    args = build_parser("acceptance").parse_args(
        ["acceptance", "--model", "meta-llama/Llama-3.2-3B-Instruct", "--concurrency", "4"]
    )
    assert _fill_defaults(args) is False
    assert args.concurrency == (4,)
    assert args.max_num_seqs is None
    assert args.output_tokens == 128


def test_embedded_picoclaw_config_is_one_picoclaw_reads(tmp_path: Path) -> None:
    from picoclaw_vllm.picoclaw.config import PicoclawConfig, load

    path = embedded_picoclaw_config(tmp_path / "c.json", "http://127.0.0.1:9/v1")
    config = load(path)
    assert isinstance(config, PicoclawConfig)
    assert config.api_base == "http://127.0.0.1:9/v1"
    assert config.model_sent == "tiny-llama"
    # PicoClaw's own default max_tokens, which the embedded server's context holds
    assert config.max_tokens == 32768 < EMBEDDED_MAX_MODEL_LEN
