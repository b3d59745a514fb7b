"""A server marked by a picoclaw-vllm that is gone is a leftover: found, named by the doctor,
stopped. The stand-in is a plain sleeping process with the mark (no vLLM needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from diagnose_helpers import run_json

from picoclaw_vllm.leftovers import OWNER_ENV, find_leftovers, owner_tag, stop_leftover


@pytest.fixture
def orphan() -> Iterator[subprocess.Popen[bytes]]:
    """A group leader marked as started by pid 1's namesake that no longer exists."""
    env = {**os.environ, OWNER_ENV: "999999999:12345.00:sweep runs/killed"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], env=env, start_new_session=True
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_marked_server_whose_tool_is_gone_is_found_named_and_stopped(
    orphan: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    found = [left for left in find_leftovers() if left.pid == orphan.pid]
    assert len(found) == 1 and found[0].started_by == "sweep runs/killed"
    _, doc = run_json(capsys, "--api-base", "http://127.0.0.1:9/v1", "--check", "leftovers")
    finding = next(f for f in doc["findings"] if f["id"] == "leftover_server")
    assert f"kill -- -{orphan.pid}" in finding["remedy"]
    assert "sweep runs/killed" in finding["evidence"]
    assert stop_leftover(found[0], grace_s=5) is True
    assert orphan.wait(timeout=5) is not None


def test_a_server_whose_tool_lives_is_no_leftover() -> None:
    env = {**os.environ, OWNER_ENV: owner_tag("this test")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True
    )
    try:
        assert proc.pid not in {left.pid for left in find_leftovers()}
    finally:
        proc.kill()
        proc.wait(timeout=10)
