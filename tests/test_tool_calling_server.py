"""PicoClaw's tool-carrying requests against REAL CPU vLLM servers: the session server (started
with --enable-auto-tool-choice --tool-call-parser hermes, as the embedded default is) and a
server started as the seed page shows it (no tool flags) with a context just above PicoClaw's
first prompt."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FAST_START_ARGS, TEST_API_KEY
from diagnose_helpers import legacy_config, run_json, status_of

from diagnostics.options import DiagnoseOptions
from diagnostics.runner import diagnose
from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.server.embedded import embedded_backend, embedded_settings
from picoclaw_vllm.server.launcher import ServerHandle, start_server

pytestmark = pytest.mark.vllm

# PicoClaw's first prompt is 14,803 tokens on the tiny byte-level tokenizer (2026-12-04): this
# context holds it, but not it plus 1024 output tokens, and not PicoClaw's default 32768.
SEED_MAX_MODEL_LEN = 15360
ROOM_TOKENS = 48  # what the over-the-context test leaves for the answer


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PICOCLAW_HOME", str(tmp_path / "home"))
    for name in ("VLLM_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def seed_server(cpu_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """vLLM as the seed page starts it: no tool-calling flags."""
    settings = embedded_settings(extra_args=FAST_START_ARGS, max_model_len=SEED_MAX_MODEL_LEN)
    log = tmp_path_factory.mktemp("seed") / "seed-server.log"
    handle = start_server(settings, embedded_backend(), log_path=log)
    try:
        yield handle
    finally:
        assert handle.stop(), "the seed-like vLLM server left processes behind"


def explain(doc: dict[str, Any]) -> str:
    return json.dumps(doc["findings"], indent=1)[:4000]


def prompt_tokens(
    api_base: str,
    key: str | None = None,
    *,
    tools: bool = True,
    user_text: str = picoclaw_request.FIRST_USER_MESSAGE,
) -> int:
    body = {
        "model": "tiny-llama",
        "messages": picoclaw_request.first_messages(user_text),
        "tools": picoclaw_request.default_tools() if tools else [],
        "add_generation_prompt": True,
    }
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.post(api_base.removesuffix("/v1") + "/tokenize", json=body, headers=headers)
    count: int = r.json()["count"]
    return count


def test_seed_server_fails_picoclaw_with_the_tool_flags_as_remedy(
    seed_server: ServerHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = legacy_config(tmp_path, seed_server.api_base, "vllm/tiny-llama", max_tokens=None)
    rc, doc = run_json(capsys, "--config", str(config), "--no-hub")
    assert rc == 1, explain(doc)
    found = {f["id"]: f for f in doc["findings"]}
    tools = found["tool_choice_rejected"]
    assert '"auto" tool choice requires --enable-auto-tool-choice' in tools["evidence"]
    assert "--enable-auto-tool-choice --tool-call-parser hermes" in tools["remedy"]
    assert "docker run" in tools["remedy"] and "api_server" in tools["remedy"]
    assert "ExecStart" in tools["remedy"]
    # PicoClaw's default max_tokens cannot fit the context either, with vLLM's own 400
    overflow = found["context_overflow"]
    assert "32768" in overflow["message"] and str(SEED_MAX_MODEL_LEN) in overflow["message"]
    assert "max_tokens=32768 cannot be greater than max_model_len" in overflow["evidence"]
    # one failure, not a cascade: the completion check waits for the tools to be accepted
    assert status_of(doc, "completion") == "skip"


def test_context_below_prompt_plus_max_tokens_names_both_numbers(
    seed_server: ServerHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = prompt_tokens(seed_server.api_base)
    assert prompt < SEED_MAX_MODEL_LEN < prompt + 1024, "precondition: the context is set so"
    config = legacy_config(tmp_path, seed_server.api_base, "vllm/tiny-llama", max_tokens=1024)
    _rc, doc = run_json(capsys, "--config", str(config), "--no-hub", "--check", "context")
    finding = next((f for f in doc["findings"] if f["id"] == "context_headroom"), None)
    assert finding is not None, explain(doc)
    assert finding["severity"] == "warn"
    assert f"{prompt} prompt tokens" in finding["evidence"]
    assert str(SEED_MAX_MODEL_LEN) in finding["evidence"]
    assert f"prompt + max_tokens = {prompt + 1024}" in finding["evidence"]


def test_vllm_accepts_prompt_plus_max_tokens_over_the_context_and_cuts_the_answer(
    seed_server: ServerHandle,
) -> None:
    """What the context check says of vLLM 0.32, held against the real server. The user turn
    is padded until ROOM_TOKENS or so are left, so that the cut answer is short to generate."""
    bare = prompt_tokens(seed_server.api_base, tools=False, user_text="")
    words = SEED_MAX_MODEL_LEN - bare - ROOM_TOKENS
    per_word = (prompt_tokens(seed_server.api_base, tools=False, user_text="fox " * words)
                - bare) / words  # fmt: skip
    user_text = "fox " * int(words / per_word)
    prompt = prompt_tokens(seed_server.api_base, tools=False, user_text=user_text)
    room = SEED_MAX_MODEL_LEN - prompt
    assert 0 < room < 4 * ROOM_TOKENS, room
    shape = picoclaw_request.RequestShape(model="tiny-llama", max_tokens=room + 200)
    body = picoclaw_request.body(
        shape, picoclaw_request.first_messages(user_text), tools=[], extra={"ignore_eos": True}
    )
    r = httpx.post(f"{seed_server.api_base}/chat/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text[:500]
    answer = r.json()
    assert answer["usage"]["prompt_tokens"] == prompt
    assert answer["usage"]["completion_tokens"] <= room
    assert answer["choices"][0]["finish_reason"] == "length"


def test_acceptance_fails_a_server_without_tool_flags(
    seed_server: ServerHandle, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    config = legacy_config(tmp_path, seed_server.api_base, "vllm/tiny-llama", max_tokens=1024)
    proc = subprocess.run(
        [sys.executable, "-m", "picoclaw_vllm", "acceptance", "--launch", "external",
         "--api-base", seed_server.api_base, "--config", str(config), "--out", str(out),
         "--concurrency", "1", "--duration", "2s", "--warmup", "0s", "--format", "json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(next(out.rglob("report.json")).read_text())
    assert report["verdict"]["passed"] is False and "doctor" in report["verdict"]["failed_gates"]
    assert "tool_choice_rejected" in json.dumps(report["gates"]["results"])


def test_session_server_serves_picoclaws_tools(
    vllm_server: ServerHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = legacy_config(tmp_path, vllm_server.api_base, "vllm/tiny-llama", TEST_API_KEY,
                           max_tokens=None)  # fmt: skip
    rc, doc = run_json(capsys, "--config", str(config), "--no-hub")
    for check in ("context", "tools", "completion", "tool_result"):
        assert status_of(doc, check) == "pass", explain(doc)
    # the random model's forced path argument runs past 256 tokens by chance: then not judged
    forced = next(c for c in doc["checks"] if c["name"] == "tool_call")
    assert forced["status"] == "pass" or "cut at max_tokens" in forced["skip_reason"], forced
    # its own answers are noise: never a pass of the parser, never a fault of it
    auto = next(c for c in doc["checks"] if c["name"] == "tool_call_auto")
    assert auto["status"] == "skip" and auto["skip_reason"].startswith("not judged"), auto
    assert rc == 0, explain(doc)
    shape = picoclaw_request.RequestShape(model="tiny-llama", max_tokens=256,
                                          api_key=TEST_API_KEY)  # fmt: skip
    choice = {"type": "function", "function": {"name": "read_file"}}
    body = picoclaw_request.body(shape, picoclaw_request.first_messages(), tool_choice=choice)
    r = httpx.post(f"{vllm_server.api_base}/chat/completions", json=body,
                   headers=picoclaw_request.headers(shape), timeout=120)  # fmt: skip
    calls = r.json()["choices"][0]["message"]["tool_calls"]
    assert calls[0]["function"]["name"] == "read_file"
    json.loads(calls[0]["function"]["arguments"])


def test_forced_call_cut_short_is_not_judged(vllm_server: ServerHandle) -> None:
    """A real cut: 16 tokens leave vLLM's `<tool_call>` markup as text in content, a valid
    prefix of the call format: not a parser fault (it used to fail as tool_call_unparsed)."""
    diagnosis = diagnose(
        DiagnoseOptions(
            api_base=vllm_server.api_base,
            model="vllm/tiny-llama",
            api_key=TEST_API_KEY,
            checks=("tool_call",),
            forced_call_max_tokens=16,
            check_hub=False,
        )
    )
    doc = diagnosis.to_json_dict()
    row = next(c for c in doc["checks"] if c["name"] == "tool_call")
    assert row["status"] == "skip", doc
    assert "cut at max_tokens 16" in json.dumps(row)
    assert "a valid prefix of the call format" in json.dumps(row)
    assert "<tool_call>" in json.dumps(row)
    assert not [f for f in doc["findings"] if f["id"] == "tool_call_unparsed"]
    assert diagnosis.exit_code() == 0
