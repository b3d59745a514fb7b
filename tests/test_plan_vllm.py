"""The plan against the real CPU vLLM: the flags `picoclaw-vllm plan` prints for the tiny
model, started as printed (on 127.0.0.1 and a free port), give the KV tokens and concurrency
the plan computed (vLLM's "CPU KV cache size: N tokens, Maximum concurrency for L tokens per
request: X.XXx"), count PicoClaw's prompt as the plan did (/tokenize), and pass
`picoclaw-vllm diagnose` with the PicoClaw entry the plan printed, with no failure.

One server start (about 60 s). The session server's start-up log is a second data point.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from diagnose_helpers import run_json
from engine_cpu import pin_engine

from picoclaw_vllm.cli import main
from picoclaw_vllm.paths import cpu_python, tiny_model_dir
from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.plan import arithmetic, picoclaw_needs
from picoclaw_vllm.plan.model_source import locate
from picoclaw_vllm.server.backends import LocalBackend
from picoclaw_vllm.server.embedded import free_port
from picoclaw_vllm.server.launcher import ServerHandle, start_server
from picoclaw_vllm.server.settings import ServerSettings

pytestmark = pytest.mark.vllm

KV_LINE = re.compile(
    r"CPU KV cache size: ([\d,]+) tokens, Maximum concurrency for ([\d,]+) tokens per "
    r"request: ([\d.]+)x"
)
AUTO_KV = re.compile(r"Auto set \(([\d.]+)/[\d.]+\) GiB for KV cache")
# vLLM gives the KV cache whole blocks and prints the concurrency to 2 decimals
TOKEN_TOLERANCE = 0.005


def logged_kv(log: Path) -> tuple[int, int, float]:
    found = KV_LINE.findall(log.read_text(errors="replace"))
    assert found, f"no 'CPU KV cache size' line in {log}"
    tokens, length, concurrency = found[-1]
    return int(tokens.replace(",", "")), int(length.replace(",", "")), float(concurrency)


def step(doc: dict[str, Any], key: str) -> Any:
    lay = next(
        lay for lay in doc["layouts"]
        if lay["tensor_parallel_size"] == doc["chosen_tensor_parallel_size"]
    )  # fmt: skip
    return next(s["value"] for s in lay["steps"] if s["key"] == key)


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """The measured figures, shown with -s, kept out of the captured output the test reads."""
    with capsys.disabled():
        print(line)


def start_as_printed(doc: dict[str, Any], log: Path) -> ServerHandle:
    args: list[str] = doc["launch"]["vllm_args"]
    assert args[0] == "--model" and args[2] == "--served-model-name"
    settings = ServerSettings(
        model=args[1], served_model_name=args[3], host="127.0.0.1", port=free_port(),
        extra_args=tuple(args[4:]),
    )  # fmt: skip
    backend = LocalBackend(python=str(cpu_python()), cpu=True,
                           extra_env=doc["launch"]["environment"])  # fmt: skip
    handle = start_server(settings, backend, log_path=log)
    pin_engine(handle.pid)
    return handle


def test_planned_flags_match_vllm_and_pass_the_doctor(
    cpu_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["plan", "--json", "--model", str(tiny_model_dir()), "--kv-cache-gib", "1",
               "--sessions", "2"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert doc["launch"] is not None, doc["why"]
    # the tiny model's 65,536-token context holds the first request and 26 of 50 iterations
    assert rc == 1 and doc["status"] == "reduced"
    log = tmp_path / "planned.log"
    handle = start_as_printed(doc, log)
    try:
        tokens, length, concurrency = logged_kv(log)
        planned_tokens = step(doc, "kv_tokens")
        planned_concurrency = step(doc, "concurrency")
        error = abs(tokens - planned_tokens) / tokens
        report(capsys, f"KV tokens: vLLM {tokens}, plan {planned_tokens}, error {error:.4%}; "
              f"concurrency at {length}: vLLM {concurrency:.2f}x, "
              f"plan {planned_concurrency:.2f}x")  # fmt: skip
        assert length == doc["launch"]["max_model_len"]
        assert error <= TOKEN_TOLERANCE
        assert tokens == step(doc, "kv_tokens_logged")
        assert abs(concurrency - planned_concurrency) <= 0.01
        assert int(concurrency) >= doc["launch"]["max_num_seqs"] >= 2

        body = {"model": handle.settings.name, "messages": picoclaw_request.first_messages(),
                "tools": picoclaw_request.default_tools()}  # fmt: skip
        counted = httpx.post(f"{handle.base_url}/tokenize", json=body, timeout=30).json()
        report(capsys, f"PicoClaw's prompt: /tokenize {counted['count']}, "
              f"plan {doc['picoclaw']['prompt_tokens']}")  # fmt: skip
        assert doc["picoclaw"]["exact"] is True
        assert counted["count"] == doc["picoclaw"]["prompt_tokens"]

        entry = doc["launch"]["picoclaw_config"]
        entry["model_list"][0]["api_base"] = handle.api_base
        config = tmp_path / "picoclaw" / "config.json"
        config.parent.mkdir()
        config.write_text(json.dumps(entry))
        _, diagnosis = run_json(capsys, "--config", str(config), "--no-hub")
        failures = [f for f in diagnosis["findings"] if f["severity"] == "fail"]
        assert not failures, failures
        assert any(c["name"] == "context" and c["status"] == "pass" for c in diagnosis["checks"])
    finally:
        assert handle.stop(), "the planned vLLM server left processes behind"


def test_session_server_kv_matches_the_plan_arithmetic(vllm_server: ServerHandle) -> None:
    """The session server (auto-sized KV cache, --max-model-len 65536, float32): the plan's
    arithmetic at the GiB vLLM logged gives vLLM's tokens, within the 2-decimal rounding of
    that GiB figure."""
    if vllm_server.log_path is None:
        pytest.skip("an external server: no start-up log")
    text = vllm_server.log_path.read_text(errors="replace")
    auto = AUTO_KV.findall(text)
    assert auto, "no 'Auto set (X/Y) GiB for KV cache' line"
    gib = float(auto[-1])
    tokens, length, concurrency = logged_kv(vllm_server.log_path)
    source = locate(str(tiny_model_dir()))
    needs = picoclaw_needs.count(source, 50, 32768, 1)
    inputs = arithmetic.Inputs(
        config=source.config, weights_bytes=source.weights_bytes or 0, weights_formula="files",
        needs=needs, gpus=1, gpu_gib=0.0, kv_cache_gib=gib, dtype="float32", block_size=128,
        max_model_len=length,
    )  # fmt: skip
    lay = arithmetic.layout(inputs, 1)
    # the GiB is printed to 2 decimals: the true size is within +-0.005 GiB of it
    tolerance = 0.005 / gib + TOKEN_TOLERANCE
    error = abs(tokens - lay.kv_tokens) / tokens
    print(f"session server: {gib} GiB -> vLLM {tokens} tokens, plan {lay.kv_tokens}, error "
          f"{error:.4%} (tolerance {tolerance:.4%}); concurrency vLLM {concurrency:.2f}x, "
          f"plan {lay.concurrency:.2f}x")  # fmt: skip
    assert error <= tolerance
    assert abs(concurrency - lay.concurrency) <= concurrency * tolerance + 0.01
