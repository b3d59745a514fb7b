"""A real CPU vLLM server started for this module alone, with --no-enable-prefix-caching:
first the doctor warns prefix_cache_off on it, then kill -9 of its engine core
(`VLLM::EngineCore`, what the kernel's OOM killer does): the doctor, given the server's log,
names engine_dead and "killed by a signal", exit 1, both while /health answers 503 and after
the API server has exited. (One server for both: each start costs about 40 s of the suite.)"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
from conftest import TEST_SERVER_ARGS
from diagnose_helpers import explain, ids, run_json

from picoclaw_vllm.server.embedded import embedded_backend, embedded_settings
from picoclaw_vllm.server.launcher import ServerHandle, start_server

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def own_server(cpu_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    settings = embedded_settings(extra_args=(*TEST_SERVER_ARGS, "--no-enable-prefix-caching"))
    log = tmp_path_factory.mktemp("own-server") / "vllm.log"
    handle = start_server(settings, embedded_backend(), log_path=log)
    try:
        yield handle
    finally:
        assert handle.stop(), "the killed server left processes behind"


def health(base_url: str) -> int | None:
    try:
        return httpx.get(f"{base_url}/health", timeout=2).status_code
    except httpx.HTTPError:
        return None


def dead_engine(capsys: pytest.CaptureFixture[str], handle: ServerHandle, *checks: str) -> dict:  # type: ignore[type-arg]
    argv = ["--api-base", handle.api_base, "--model", handle.settings.name, "--no-hub",
            "--log", str(handle.log_path)]  # fmt: skip
    for check in checks:
        argv += ["--check", check]
    rc, doc = run_json(capsys, *argv)
    assert rc == 1, doc
    assert "engine_dead" in ids(doc), doc
    messages = " | ".join(f["message"] for f in doc["findings"] if f["id"] == "engine_dead")
    assert "killed by a signal, with no error of its own" in messages, doc
    return doc


def test_a_server_without_prefix_caching_gets_the_warning(
    own_server: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--api-base", own_server.api_base, "--model", own_server.settings.name]
    rc, doc = run_json(capsys, *argv, "--no-hub", "--check", "prefix_cache")
    (finding,) = [f for f in doc["findings"] if f["id"] == "prefix_cache_off"]
    assert finding["severity"] == "warn" and rc == 0, explain(doc)
    # the source it used: the answer's usage (vLLM 0.32 sends prompt_tokens_details with
    # cached_tokens 0 here even without --enable-prompt-tokens-details) or the counters
    assert "cached_tokens 0" in finding["evidence"] or (
        "vllm:prefix_cache_queries_total" in finding["evidence"]
    ), explain(doc)
    assert "--enable-prefix-caching" in finding["remedy"]


@pytest.mark.timeout(600)
def test_killed_engine_core_is_named_while_503_and_after_exit(
    own_server: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert own_server.process is not None and own_server.log_path is not None
    api = psutil.Process(own_server.process.pid)
    (core,) = [p for p in api.children(recursive=True) if p.name().startswith("VLLM::EngineCor")]
    os.kill(core.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while health(own_server.base_url) != 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health(own_server.base_url) == 503
    while "engine core exited" not in own_server.log_path.read_text(errors="replace"):
        time.sleep(0.05)

    during = dead_engine(capsys, own_server, "health", "server_log")
    health_check = next(c for c in during["checks"] if c["name"] == "health")
    # /health answered 503 to the doctor, or (CI saw it once) vLLM's API server, which exits
    # within about a second of its engine, was gone by then: nothing listened, truly gone
    if health_check["status"] != "fail":
        assert "connection_refused" in ids(during), during

    own_server.process.wait(timeout=60)
    after = dead_engine(capsys, own_server)
    assert "connection_refused" in ids(after)
