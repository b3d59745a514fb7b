"""The doctor ends within its deadline however the server behaves, and a first SIGTERM or
Ctrl-C stops it, measured on the whole process (start-up and exit included). The server is a
LOCAL stand-in (tests/diagnose_standins.py): a chat stream that never ends, one token a
second, is not something the real vLLM can be made to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from diagnose_helpers import one_finding, startup_s
from diagnose_standins import dripping_stream

from diagnostics.deadline import Deadline, default_budget

ROOT = Path(__file__).resolve().parent.parent
# The documented bound is the deadline (start-up and exit included); 2 s is the margin the
# issue sets. On this shared 2-core machine a bare `diagnose --list` has taken 0.3 to 4.7 s
# (load average 8), so each timed test adds what start-up costs right now: a measured margin.
EXIT_MARGIN_S = 2.0


STREAMING = threading.Event()


@pytest.fixture
def dripping() -> Iterator[str]:
    STREAMING.clear()
    with dripping_stream(interval_s=1.0, streaming=STREAMING) as base:
        yield f"{base}/v1"


def doctor(api_base: str, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PICOCLAW_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "picoclaw_vllm", "diagnose", "--api-base", api_base,
         "--model", "tiny-llama", "--no-hub", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], timeout_s: float) -> tuple[str, str]:
    """The process's output; killed (and the test failed) when it runs past timeout_s."""
    try:
        return proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running after {timeout_s:g} s: {(out + err)[-2000:]}")


def test_a_stream_that_never_ends_is_cut_at_the_deadline(dripping: str, tmp_path: Path) -> None:
    margin = EXIT_MARGIN_S + startup_s()
    start = time.monotonic()
    proc = doctor(dripping, tmp_path, "--timeout", "5", "--json")
    out, err = finish(proc, 60)
    wall = time.monotonic() - start
    budget = default_budget(5.0)
    assert wall <= budget + margin, (wall, margin, err)
    doc = json.loads(out)
    completion = next(c for c in doc["checks"] if c["name"] == "completion")
    assert completion["status"] == "fail", json.dumps(doc, indent=1)
    finding = one_finding(doc, "completion_failed")
    assert "did not end within 5 s" in finding["evidence"], finding
    assert proc.returncode == 1 and "Traceback" not in err


def test_the_deadline_flag_overrides_the_default(dripping: str, tmp_path: Path) -> None:
    margin = EXIT_MARGIN_S + startup_s()
    start = time.monotonic()
    proc = doctor(dripping, tmp_path, "--timeout", "30", "--deadline", "4", "--json")
    out, err = finish(proc, 60)
    wall = time.monotonic() - start
    assert wall <= 4 + margin, (wall, margin, err)
    doc = json.loads(out)
    finding = one_finding(doc, "completion_failed")
    assert "deadline" in finding["evidence"], finding


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_first_signal_stops_the_doctor(dripping: str, tmp_path: Path, sig: int) -> None:
    proc = doctor(dripping, tmp_path, "--timeout", "60")
    # created and confirmed: the doctor is reading a dripping stream (its deadline 180 s away)
    assert STREAMING.wait(60), "the doctor never started its stream"
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = finish(proc, 30)
    assert time.monotonic() - sent < EXIT_MARGIN_S, err
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_bad_deadline_is_a_usage_error(tmp_path: Path, value: str) -> None:
    proc = doctor("http://127.0.0.1:9/v1", tmp_path, "--deadline", value)
    _, err = finish(proc, 60)
    assert proc.returncode == 2 and "--deadline" in err and "Traceback" not in err, err


def test_requests_stop_before_the_end_so_metrics_can_be_read_once_more() -> None:
    # exact bounds less the time this test itself took (a loaded machine may pause it)
    start = time.monotonic()
    deadline = Deadline(10.0, start=start)
    try:
        bound, queued = deadline.bound(30.0), deadline.bound(30.0, queued=True)
        elapsed = time.monotonic() - start
        assert bound is not None and 9.0 - elapsed <= bound <= 9.0  # 1 s to write and exit
        assert queued is not None and 7.5 - elapsed <= queued <= 7.5
        assert deadline.bound(1.0, queued=True) == 1.0
    finally:
        deadline.cancel()
    gone = Deadline(0.01)
    time.sleep(0.02)
    assert gone.bound(5.0) is None and gone.expired
    gone.cancel()


def test_a_body_cut_at_the_requests_cutoff_is_the_deadline_not_a_protocol_error() -> None:
    """Measured on a starved host: vLLM sent /v1/models' headers, the body came after the
    requests' cutoff, the deadline shut the socket, and the doctor once called the server "not
    an HTTP server" (connection_refused). A LOCAL stand-in socket that sends the headers and
    stalls makes it happen on purpose."""
    import socket

    from diagnostics.probes.http import ServerClient

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def serve() -> None:
        conn, _ = listener.accept()
        held.append(conn)
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 489\r\n\r\n{\"object\":")  # fmt: skip

    threading.Thread(target=serve, daemon=True).start()
    deadline = Deadline(3.0)  # its requests' cutoff comes before its end: 2.25 s, then 2.7 s
    client = ServerClient(f"http://127.0.0.1:{port}/v1", None, 30.0, deadline=deadline)
    try:
        answer = client.get("/models")
    finally:
        client.close()
        deadline.cancel()
        listener.close()
        for conn in held:
            conn.close()
    assert answer.failure is not None and answer.failure.kind == "deadline", answer.failure
    assert 1.5 < answer.elapsed_s < deadline.budget_s, answer.elapsed_s
