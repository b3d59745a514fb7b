"""Real start-up failures of the CPU vLLM: each server is started with one bad setting,
fails, and its log is handed to the doctor (as LaunchError.log_text and as --log FILE)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import TEST_SERVER_ARGS
from diagnose_helpers import explain, one_finding, run_json

from diagnostics.options import DiagnoseOptions
from diagnostics.probes.processes import local_vllm_processes
from diagnostics.runner import diagnose
from picoclaw_vllm.errors import LaunchError
from picoclaw_vllm.server.embedded import embedded_backend, embedded_settings, free_port
from picoclaw_vllm.server.launcher import start_server
from picoclaw_vllm.vllm_api.log_signatures import root_cause

pytestmark = pytest.mark.vllm


def failed_start(
    tmp_path: Path, port: int | None = None, **overrides: object
) -> tuple[LaunchError, Path, int]:
    """vLLM started with `overrides` for real; the launcher's error carries its log."""
    port = port or free_port()
    log = tmp_path / "vllm.log"
    try:
        handle = start_server(
            embedded_settings(port=port, extra_args=TEST_SERVER_ARGS, **overrides),
            embedded_backend(), log_path=log,
            ready_timeout_s=300,
        )  # fmt: skip
    except LaunchError as e:
        assert not [p for p in local_vllm_processes() if p.port == port], "server left behind"
        assert "exited with code" in str(e)
        assert e.log_path == log
        return e, log, port
    handle.stop()
    pytest.fail(f"vLLM started although {overrides} should make it fail")


@pytest.mark.parametrize(
    ("overrides", "logged", "finding_id", "remedy_has"),
    [
        ({"gpu_memory_utilization": 0.99}, "less than desired CPU memory utilization",
         "gpu_memory_in_use", "--gpu-memory-utilization 0."),
        ({"tensor_parallel_size": 3}, "must be divisible by tensor parallel size (3)",
         "tensor_parallel_invalid", "--tensor-parallel-size"),
    ],
    ids=["memory-utilization-too-high", "tp-does-not-divide-heads"],
)  # fmt: skip
def test_real_startup_failure_is_named(
    cpu_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, object],
    logged: str,
    finding_id: str,
    remedy_has: str,
) -> None:
    monkeypatch.setenv("PICOCLAW_HOME", str(tmp_path / "home"))
    port = free_port()
    outcome: list[tuple[LaunchError, Path, int]] = []
    starting = threading.Thread(
        target=lambda: outcome.append(failed_start(tmp_path, port, **overrides))
    )
    starting.start()
    while_loading = None
    deadline = time.monotonic() + 60
    while starting.is_alive() and time.monotonic() < deadline:
        if [p for p in local_vllm_processes() if p.port == port]:
            while_loading = diagnose(
                DiagnoseOptions(api_base=f"http://127.0.0.1:{port}/v1", checks=("connection",))
            )
            break
        time.sleep(0.2)
    starting.join()
    assert outcome, "the start-up thread failed"
    error, log, port = outcome[0]
    assert logged in error.log_text
    # Diagnosed while the real vLLM process ran and its port was not open yet. Timing, with a
    # margin: the doctor runs within 0.2 s of seeing the process, and vLLM takes 10 s or more
    # (imports, then the engine) to fail; the doctor's connection check needs well under 1 s.
    assert while_loading is not None
    (finding,) = while_loading.findings
    assert finding.id == "connection_refused" and "still starting" in finding.message
    cause = root_cause(error.log_text)
    assert cause is not None, error.log_text[-2000:]
    assert cause.finding_id == finding_id, cause

    diagnosis = diagnose(
        DiagnoseOptions(api_base=f"http://127.0.0.1:{port}/v1", log_text=error.log_text,
                        checks=("server_log",))
    )  # fmt: skip
    assert diagnosis.finding_ids() == [finding_id]

    rc, doc = run_json(
        capsys, "--api-base", f"http://127.0.0.1:{port}/v1", "--model", "tiny-llama",
        "--log", str(log), "--no-hub",
    )  # fmt: skip
    finding = one_finding(doc, finding_id)
    assert remedy_has in finding["remedy"]
    assert f"{log} line" in finding["evidence"]
    assert "connection_refused" in [f["id"] for f in doc["findings"]], explain(doc)  # it is down
    assert rc == 1
