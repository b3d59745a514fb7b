"""Bad answers and edges a real vLLM cannot be made to show on demand, from LOCAL stand-ins
(tests/diagnose_standins.py): a proxy's HTML 502, non-JSON bodies, a dead engine, a socket
that never answers, a process that looks like a loading vLLM, and a Hub stand-in behind
HF_ENDPOINT. Every one must end as a clear finding, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from diagnose_helpers import ids, run_cli, run_json, status_of
from diagnose_standins import (
    closing_socket,
    crashed_engine_healthy_health,
    dead_engine,
    http_standin,
    hub,
    nginx_502,
    no_chat_template,
    plain_text_ok,
    raw_markup_tool_calls,
    silent_socket,
    stream_error_chunk,
)

from diagnostics import runner
from diagnostics.facts import Facts
from diagnostics.options import DiagnoseOptions
from picoclaw_vllm.server.embedded import free_port

LOGS = Path(__file__).parent / "data" / "diagnose" / "logs"

HF_TEST_TOKEN = "hf_TestTokenAbCdEfGhIjKlMnOp1234"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PICOCLAW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no saved token
    for name in ("VLLM_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def test_nginx_502_page_is_named_as_a_proxy_error(capsys: pytest.CaptureFixture[str]) -> None:
    with http_standin(nginx_502) as base:
        rc, doc = run_json(capsys, "--api-base", f"{base}/v1", "--model", "m", "--no-hub")
    finding = next(f for f in doc["findings"] if f["id"] == "unexpected_answer")
    assert "proxy answers 502" in finding["message"]
    assert "502 Bad Gateway" in finding["evidence"]
    assert status_of(doc, "auth") == "skip" and rc == 1


def test_non_json_body_is_not_vllm(capsys: pytest.CaptureFixture[str]) -> None:
    with http_standin(plain_text_ok) as base:
        rc, out, err = run_cli(capsys, "--api-base", f"{base}/v1", "--model", "m", "--no-hub")
    assert "[unexpected_answer]" in out and "not JSON" in out
    assert "Traceback" not in out + err and rc == 1


def test_server_that_never_answers_is_bounded_by_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with silent_socket() as base:
        start = time.monotonic()
        rc, doc = run_json(
            capsys, "--api-base", f"{base}/v1", "--model", "m", "--timeout", "1", "--no-hub"
        )
        elapsed = time.monotonic() - start
    finding = next(f for f in doc["findings"] if f["id"] == "connection_refused")
    assert "no answer within the timeout" in finding["message"]
    assert "within 1 s" in finding["evidence"]
    assert elapsed < 10, elapsed  # bounded (unbounded would hang): probes run concurrently
    assert rc == 1


def test_connection_closed_at_once_points_at_docker(capsys: pytest.CaptureFixture[str]) -> None:
    with closing_socket() as base:
        rc, doc = run_json(capsys, "--api-base", f"{base}/v1", "--model", "m", "--no-hub")
    finding = next(f for f in doc["findings"] if f["id"] == "connection_refused")
    assert "closed without an answer" in finding["message"]
    assert "docker logs" in finding["remedy"] and rc == 1


def test_dead_engine_health_503(capsys: pytest.CaptureFixture[str]) -> None:
    with http_standin(dead_engine) as base:
        rc, doc = run_json(capsys, "--api-base", f"{base}/v1", "--model", "tiny-llama")
    finding = next(f for f in doc["findings"] if f["id"] == "engine_dead")
    assert "503" in finding["message"] and "--log" in finding["remedy"]
    assert status_of(doc, "completion") == "skip" and rc == 1


def test_crashed_engine_behind_a_healthy_health(capsys: pytest.CaptureFixture[str]) -> None:
    with http_standin(crashed_engine_healthy_health) as base:
        rc, doc = run_json(
            capsys, "--api-base", f"{base}/v1", "--model", "tiny-llama", "--check", "completion"
        )
    assert status_of(doc, "health") == "pass"
    finding = next(f for f in doc["findings"] if f["id"] == "engine_dead")
    assert "EngineCore encountered an issue" in finding["evidence"] and rc == 1


def test_dns_failure_and_wrong_schemes_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "http://no-such-host.invalid:8000/v1": "DNS",
        "localhost:8000/v1": "wrong URL scheme",
    }
    with http_standin(plain_text_ok) as base:
        cases[base.replace("http://", "https://") + "/v1"] = "wrong URL scheme"
        for api_base, label in cases.items():
            _, doc = run_json(capsys, "--api-base", api_base, "--check", "connection")
            finding = next(f for f in doc["findings"] if f["id"] == "connection_refused")
            assert label in finding["message"], (api_base, finding)
            if label == "wrong URL scheme":
                assert '"api_base": "http://' in finding["remedy"]


@pytest.fixture
def loading_vllm() -> Iterator[int]:
    """A process whose command line is a vLLM server's and which never listens (= loading)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)",
         "-m", "vllm.entrypoints.openai.api_server", "--port", str(port)]
    )  # fmt: skip
    try:
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_refused_port_of_a_loading_vllm_is_still_starting(
    loading_vllm: int, capsys: pytest.CaptureFixture[str]
) -> None:
    time.sleep(0.2)
    _rc, doc = run_json(capsys, "--api-base", f"http://127.0.0.1:{loading_vllm}/v1", "--model", "m")
    finding = next(f for f in doc["findings"] if f["id"] == "connection_refused")
    assert finding["severity"] == "warn"
    assert "still starting" in finding["message"] and " s " in finding["message"]
    assert status_of(doc, "auth") == "skip"  # a warning that still stops the dependents


def test_an_old_vllm_that_does_not_listen_is_not_still_starting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], loading_vllm: int
) -> None:
    from diagnostics.checks import server

    monkeypatch.setattr(server, "STARTING_MAX_S", 0.5)
    time.sleep(1.0)
    rc, doc = run_json(capsys, "--api-base", f"http://127.0.0.1:{loading_vllm}/v1", "--model", "m",
                       "--check", "connection")  # fmt: skip
    finding = next(f for f in doc["findings"] if f["id"] == "connection_refused")
    assert finding["severity"] == "fail" and rc == 1
    assert "still starting" not in finding["message"]
    assert "without listening" in finding["message"]


def test_a_young_vllm_whose_log_ends_in_a_death_is_not_still_starting(
    capsys: pytest.CaptureFixture[str], loading_vllm: int
) -> None:
    rc, doc = run_json(capsys, "--api-base", f"http://127.0.0.1:{loading_vllm}/v1", "--model", "m",
                       "--log", str(LOGS / "engine_killed_cpu.log"), "--check", "connection",
                       "--check", "server_log")  # fmt: skip
    finding = next(f for f in doc["findings"] if f["id"] == "connection_refused")
    assert finding["severity"] == "fail" and "its engine died" in finding["message"]
    assert "engine_dead" in ids(doc) and rc == 1


def test_a_crashing_check_is_a_result_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(self: Facts) -> object:
        raise RuntimeError("NVML exploded")

    monkeypatch.setattr(Facts, "gpus", broken)
    rc, out, err = run_cli(capsys, "--api-base", "http://127.0.0.1:9/v1", "--check", "gpu_memory")
    assert "[check_crashed]" in out and "NVML exploded" in out
    assert "Traceback" not in out + err and rc == 1


# --- Hugging Face Hub: a local stand-in behind HF_ENDPOINT, answering like huggingface.co ---


def hub_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoint: str, repo: str
) -> dict[str, object]:
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    _, doc = run_json(
        capsys, "--api-base", f"http://127.0.0.1:{free_port()}/v1", "--model", repo,
        "--check", "hub",
    )  # fmt: skip
    return doc


def test_hub_gated_repo_without_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with http_standin(hub()) as endpoint:
        doc = hub_json(capsys, monkeypatch, endpoint, "meta-llama/Llama-3.2-3B-Instruct")
    finding = next(f for f in doc["findings"] if f["id"] == "hf_gated")  # type: ignore[union-attr]
    assert "no Hugging Face token" in finding["message"]
    assert "huggingface-cli login" in finding["remedy"] and "-e HF_TOKEN" in finding["remedy"]


def test_hub_gated_repo_with_a_token_that_has_no_access(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", HF_TEST_TOKEN)
    with http_standin(hub(granted_token="another-token")) as endpoint:
        doc = hub_json(capsys, monkeypatch, endpoint, "meta-llama/Llama-3.2-3B-Instruct")
    assert ids(doc) == ["hf_gated"]  # type: ignore[arg-type]
    assert "token: yes" in doc["findings"][0]["evidence"]  # type: ignore[index]
    assert HF_TEST_TOKEN not in json.dumps(doc)


def test_hub_gated_repo_with_access_passes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", HF_TEST_TOKEN)
    with http_standin(hub(granted_token=HF_TEST_TOKEN)) as endpoint:
        doc = hub_json(capsys, monkeypatch, endpoint, "meta-llama/Llama-3.2-3B-Instruct")
    assert status_of(doc, "hub") == "pass"  # type: ignore[arg-type]


def test_hub_missing_repo(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with http_standin(hub()) as endpoint:
        doc = hub_json(capsys, monkeypatch, endpoint, "meta-lama/Llama-3.2-3B-Instruct")
    assert ids(doc) == ["hf_repo_not_found"]  # type: ignore[arg-type]


def test_hub_unreachable_is_said_and_not_a_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    rc, doc = run_json(
        capsys, "--api-base", f"http://127.0.0.1:{free_port()}/v1", "--model",
        "Qwen/Qwen2.5-7B-Instruct", "--check", "hub",
    )  # fmt: skip
    assert ids(doc) == ["hf_hub_unreachable"] and doc["findings"][0]["severity"] == "info"
    assert rc == 0


def test_hub_offline_mode_skips(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with http_standin(hub()) as endpoint:
        doc = hub_json(capsys, monkeypatch, endpoint, "meta-lama/Llama-3.2-3B-Instruct")
    assert status_of(doc, "hub") == "skip"  # type: ignore[arg-type]


def test_hub_token_never_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", HF_TEST_TOKEN)
    with http_standin(hub()) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        _, out, err = run_cli(
            capsys, "--api-base", f"http://127.0.0.1:{free_port()}/v1", "--model",
            "meta-llama/Llama-3.2-3B-Instruct", "-v",
        )  # fmt: skip
    assert "[hf_gated]" in out
    assert HF_TEST_TOKEN not in out + err


def test_options_api_is_usable_without_the_cli() -> None:
    with http_standin(dead_engine) as base:
        diagnosis = runner.diagnose(
            DiagnoseOptions(api_base=f"{base}/v1", model="tiny-llama", timeout_s=10.0)
        )
    assert "engine_dead" in diagnosis.finding_ids()
    assert diagnosis.exit_code() == 1
    assert diagnosis.to_json_dict()["target"]["model"] == "tiny-llama"


def test_picoclaw_request_rejected_for_no_chat_template_is_chat_template_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with http_standin(no_chat_template) as base:
        rc, doc = run_json(capsys, "--api-base", f"{base}/v1", "--model", "tiny-llama",
                           "--check", "completion")  # fmt: skip
    finding = next(f for f in doc["findings"] if f["id"] == "chat_template_missing")
    assert "400" in finding["message"] and "chat template" in finding["evidence"]
    assert rc == 1


def test_stream_ending_in_an_error_chunk_is_completion_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with http_standin(stream_error_chunk) as base:
        _, doc = run_json(capsys, "--api-base", f"{base}/v1", "--model", "tiny-llama",
                          "--check", "completion")  # fmt: skip
    assert ids(doc) == ["completion_failed"]
    assert "streaming" in doc["findings"][0]["message"]
    assert "EngineCore step failed" in doc["findings"][0]["evidence"]


def test_picoclaw_headers_are_sent(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[dict[str, str]] = []

    def record(
        method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if path.endswith("/chat/completions"):
            seen.append(headers)
        return stream_error_chunk(method, path, headers)

    with http_standin(record) as base:
        run_cli(
            capsys, "--api-base", f"{base}/v1", "--model", "tiny-llama", "--check", "completion"
        )
        run_cli(capsys, "--api-base", f"{base}/v1", "--model", "tiny-llama", "--api-key",
                "k-12345", "--check", "completion")  # fmt: skip
    assert seen and all(h["user-agent"].startswith("PicoClaw/") for h in seen)
    no_key, with_key = seen[: len(seen) // 2], seen[len(seen) // 2 :]
    assert all("authorization" not in h for h in no_key)
    assert all(h["authorization"] == "Bearer k-12345" for h in with_key)
    bodies = [json.loads(h["x-body"]) for h in seen]
    # PicoClaw's body: its tools with tool_choice "auto", max_tokens lowered to 1 for the probe
    assert all(b["tool_choice"] == "auto" and len(b["tools"]) >= 10 for b in bodies)
    assert all(b["max_tokens"] == 1 and b["temperature"] == 0.7 for b in bodies)
    assert all(b["messages"][0]["role"] == "system" for b in bodies)


@pytest.mark.parametrize(
    "markup",
    [
        '<|python_tag|>{"name": "read_file", "parameters": {"path": "README.md"}}',
        '[TOOL_CALLS][{"name": "read_file", "arguments": {"path": "README.md"}}]',
        '{"name": "read_file", "arguments": {"path": "README.md"}}',
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "README.md"}}\n</tool_call>',
    ],
)
def test_tool_call_markup_left_in_content_is_a_parser_mismatch(
    capsys: pytest.CaptureFixture[str], markup: str
) -> None:
    """Stand-in (a real model with a wrong parser cannot run here): the answer is a 200 whose
    tool call stayed as text, so PicoClaw would never run the tool."""
    with http_standin(raw_markup_tool_calls(markup)) as base:
        rc, doc = run_json(capsys, "--api-base", f"{base}/v1", "--model", "tiny-llama",
                           "--check", "tool_call")  # fmt: skip
    finding = next(f for f in doc["findings"] if f["id"] == "tool_call_unparsed")
    assert rc == 1
    assert "raw" in finding["message"] and markup[:8] in finding["evidence"]
    assert "--tool-call-parser llama3_json" in finding["remedy"]
