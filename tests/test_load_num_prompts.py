"""`--num-prompts N`: the whole run sends exactly N requests, then drains and ends by itself,
as `vllm bench serve --num-prompts` does. Against the benchmarks' stub server (a stand-in at
the edge: the count and the drain are the load generator's, not the model's)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.ceiling import write_prompt_file
from benchmarks.common import Stub, stub_server
from loadtests.options import parse_for_test
from loadtests.records import read_records
from loadtests.request_quota import RequestQuota, share
from picoclaw_vllm.procs import spawn_group, stop_group

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[Stub]:
    with stub_server(tmp_path, ttft_ms=5, itl_ms=2) as running:
        yield running


def _locust(stub: Stub, tmp_path: Path, users: int, *extra: str) -> tuple[int, float, Path]:
    records = tmp_path / "records.jsonl"
    log = tmp_path / "locust.log"
    argv = [
        sys.executable, "-m", "locust", "-f", "loadtests/chat.py", "--headless",
        "--only-summary", "--host", stub.base_url, "-u", str(users), "-r", "100",
        "-t", "60s", "--model", "stub", "--output-tokens", "8", "--records", str(records),
        "--prompt-file", str(write_prompt_file(tmp_path / "prompts.jsonl")), *extra,
    ]  # fmt: skip
    started = time.monotonic()
    proc = spawn_group(argv, log_path=log, cwd=REPO)
    try:
        code = proc.wait(timeout=90)
    finally:
        assert stop_group(proc, grace_s=5.0)
    return code, time.monotonic() - started, records


def test_the_run_stops_after_exactly_n_requests(stub: Stub, tmp_path: Path) -> None:
    code, wall, path = _locust(stub, tmp_path, 8, "--num-prompts", "50")
    records = read_records(path)
    assert code == 0, (tmp_path / "locust.log").read_text()[-2000:]
    assert len(records) == 50 and all(r.ok for r in records)
    assert wall < 40  # ended by itself, long before -t 60s
    assert stub.stats()["completed"] == 50  # the server saw no request beyond N


def test_agent_sessions_stop_after_n_calls(stub: Stub, tmp_path: Path) -> None:
    extra = ("--workload", "agent", "--think-time", "0", "--num-prompts", "13")
    code, wall, path = _locust(stub, tmp_path, 3, *extra)
    records = read_records(path)
    assert code == 0, (tmp_path / "locust.log").read_text()[-2000:]
    assert len(records) == 13 and all(r.call_index is not None for r in records)
    assert wall < 40


def test_quota_and_shares() -> None:
    assert [share(10, 3, i) for i in range(3)] == [4, 3, 3]
    assert sum(share(7, 4, i) for i in range(4)) == 7
    quota = RequestQuota(2)
    assert quota.take() and quota.take() and not quota.take()
    assert quota.release() is False  # one still in flight
    assert quota.release() is True  # the last one: the run may end
    quota.in_flight += 1
    assert quota.release() is False  # never twice
    unlimited = RequestQuota()
    assert all(unlimited.take() for _ in range(1000))
    assert not unlimited.release()


def test_negative_num_prompts_is_refused() -> None:
    assert parse_for_test(["--num-prompts", "5"]).num_prompts == 5
    with pytest.raises(ValueError, match="--num-prompts"):
        parse_for_test(["--num-prompts", "-1"])
