"""Shared fixtures. `vllm_server` is ONE real CPU vLLM server for the whole session.

Set PICOCLAW_VLLM_TEST_BASE_URL to reuse a server already running with the same settings
(see `dev_server_settings`), e.g. while iterating; CI always starts its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from diagnose_helpers import DIAGNOSES
from engine_cpu import pin_engine

from picoclaw_vllm.server.backends import ExternalBackend
from picoclaw_vllm.server.cpu_env import setup_cpu
from picoclaw_vllm.server.embedded import EMBEDDED_TOOL_ARGS, embedded_backend, embedded_settings
from picoclaw_vllm.server.launcher import ServerHandle, start_server
from picoclaw_vllm.server.settings import ServerSettings

TEST_API_KEY = "test-secret-key-5f2a9c"
SESSION_MAX_NUM_SEQS = 2
# Servers the tests start skip torch.compile: the tests judge vLLM's answers, queueing, metrics
# and failures, not its kernels. Measured here: ready after about 28 s instead of 36 s, and
# 66 s on a machine whose compile cache is still empty, as on a fresh CI machine.
FAST_START_ARGS = ("-O0",)
TEST_SERVER_ARGS = (*EMBEDDED_TOOL_ARGS, *FAST_START_ARGS)


def dev_server_settings(port: int | None = None) -> ServerSettings:
    """The session server: small --max-num-seqs so queueing is easy to cause, and a key."""
    return embedded_settings(
        port=port,
        max_num_seqs=SESSION_MAX_NUM_SEQS,
        api_key=TEST_API_KEY,
        extra_args=TEST_SERVER_ARGS,
    )


@pytest.fixture(scope="session")
def cpu_env() -> None:
    setup_cpu()


@pytest.fixture(scope="session")
def vllm_server(cpu_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    external = os.environ.get("PICOCLAW_VLLM_TEST_BASE_URL")
    if external:
        settings = dev_server_settings(port=int(external.rsplit(":", 1)[1]))
        handle = start_server(settings, ExternalBackend(), base_url=external, ready_timeout_s=30)
    else:
        log = tmp_path_factory.mktemp("vllm") / "session-server.log"
        handle = start_server(dev_server_settings(), embedded_backend(), log_path=log)
        pin_engine(handle.pid)
    try:
        yield handle
    finally:
        assert handle.stop(), "the session vLLM server left processes behind"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    """A failed test's report carries every diagnosis it produced (the JSON, whole)."""
    if call.when == "setup":
        DIAGNOSES.clear()
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and DIAGNOSES:
        for number, doc in enumerate(DIAGNOSES, 1):
            report.sections.append((f"diagnosis {number}", json.dumps(doc, indent=1)))


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / ".artifacts"
    path.mkdir(exist_ok=True)
    return path


from conftest_sweep import (  # noqa: E402, F401
    small_agent_sweep_run,
    small_sweep,
    small_sweep_run,
)
