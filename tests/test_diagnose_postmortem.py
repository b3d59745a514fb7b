"""Post-mortems from server logs: a run-time death and its cause, the OOM killer, restarts,
run-time counts, what was read of a log; and the log reader's bounds (size, line length,
binary, chunk edges). The logs are tests/data/diagnose/logs (engine_killed_cpu.log is the
real CPU vLLM's, the others are written like it); the kernel log is a stand-in command."""

from __future__ import annotations

import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from diagnostics import log_scan
from diagnostics.options import DiagnoseOptions
from diagnostics.runner import diagnose
from diagnostics.server_runs import read_server_log
from picoclaw_vllm.vllm_api.log_signatures import FOLLOW_LINES, KEYWORDS

LOGS = Path(__file__).parent / "data" / "diagnose" / "logs"
NO_KERNEL_LOG = (("false",),)


def judge(name: str, kernel: tuple[tuple[str, ...], ...] = NO_KERNEL_LOG) -> dict[str, Any]:
    log = read_server_log(path=LOGS / f"{name}.log", source=name)
    options = DiagnoseOptions(
        api_base="http://127.0.0.1:9/v1", server_log=log,
        checks=("server_log",), kernel_log_commands=kernel,
    )  # fmt: skip
    diagnosis = diagnose(options)
    return {
        "ids": diagnosis.finding_ids(),
        "findings": {f.id: f for f in diagnosis.findings},
        "exit": diagnosis.exit_code(),
        "notes": diagnosis.results[-1].outcome.notes,
    }


@pytest.mark.parametrize(
    ("name", "cause", "remedy_has"),
    [("runtime_cuda_oom", "[cuda_oom]", "--max-num-seqs"),
     ("runtime_nccl_timeout", "[nccl_error]", "NCCL_DEBUG=INFO"),
     ("runtime_model_runner_exception", "Python exception (IndexError)", "report it")],
)  # fmt: skip
def test_a_runtime_death_is_engine_dead_with_the_cause_before_it(
    name: str, cause: str, remedy_has: str
) -> None:
    got = judge(name)
    dead = got["findings"]["engine_dead"]
    assert dead.severity == "fail" and got["exit"] == 1
    assert "died at run time" in dead.message and cause in dead.message
    assert "ready at line 6" in dead.message and "start 1 of 1" in dead.message
    assert remedy_has in dead.remedy
    assert "engine core exited unexpectedly" in dead.evidence
    assert got["findings"]["requests_aborted"].message.startswith("2 request(s) failed because")


def test_a_startup_failure_keeps_its_own_cause_not_engine_dead() -> None:
    got = judge("cuda_oom")
    assert got["ids"] == ["cuda_oom"]
    assert "start-up of start 1 of 1" in got["findings"]["cuda_oom"].evidence


def test_the_oom_killer_line_in_a_journal_is_quoted() -> None:
    got = judge("oom_killer_journal")
    assert got["ids"][:2] == ["engine_dead", "oom_killed"]
    assert "OOM killer killed the engine" in got["findings"]["engine_dead"].message
    oom = got["findings"]["oom_killed"]
    assert "Out of memory: Killed process 4200 (VLLM::EngineCor)" in oom.evidence
    assert "RAM" in oom.remedy


def test_sigkill_of_the_real_engine_core_is_killed_by_a_signal() -> None:
    got = judge("engine_killed_cpu")
    dead = got["findings"]["engine_dead"]
    assert "killed by a signal, with no error of its own" in dead.message
    assert "ready at line 103, died at line 114" in dead.message
    assert "kernel log could not be read (false:" in dead.evidence
    assert got["exit"] == 1


def test_the_kernel_log_names_the_oom_killer_of_the_engine_pid(tmp_path: Path) -> None:
    kernel = tmp_path / "kern.log"
    kernel.write_text(
        "[Thu Dec  4 05:00:00 2026] Out of memory: Killed process 777 (python) total-vm:1kB\n"
        "[Thu Dec  4 05:11:23 2026] Out of memory: Killed process 12498 (VLLM::EngineCor) "
        "total-vm:9031244kB, anon-rss:6100232kB\n"
    )
    got = judge("engine_killed_cpu", kernel=(("cat", str(kernel)),))
    assert got["ids"][:2] == ["engine_dead", "oom_killed"]
    assert "Killed process 12498 (VLLM::EngineCor)" in got["findings"]["oom_killed"].evidence


def test_a_restart_after_a_death_names_the_earlier_death_and_counts_the_newest_start() -> None:
    got = judge("restarted_after_death")
    assert set(got["ids"]) == {"preemptions", "context_rejected", "engine_dead"}
    assert got["exit"] == 0  # the server runs again: warnings
    assert "start 2 of 2 at line 25" in got["findings"]["preemptions"].message
    rejected = got["findings"]["context_rejected"]
    assert rejected.message.startswith("2 request(s) rejected") and "8192" in rejected.message
    earlier = got["findings"]["engine_dead"]
    assert earlier.severity == "warn" and "start 1 of 2" in earlier.message
    assert "cuda_oom" in earlier.message


def test_a_log_ending_in_a_shutdown_says_the_server_is_not_running(tmp_path: Path) -> None:
    text = (LOGS / "healthy.log").read_text() + "INFO:     Shutting down\n"
    got = judge_text(tmp_path, text)
    assert got["ids"] == ["server_stopped"]


def judge_text(tmp_path: Path, text: str | bytes) -> dict[str, Any]:
    path = tmp_path / "server.log"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    options = DiagnoseOptions(
        api_base="http://127.0.0.1:9/v1", server_log=read_server_log(path=path, source="x.log"),
        checks=("server_log",), kernel_log_commands=NO_KERNEL_LOG,
    )  # fmt: skip
    diagnosis = diagnose(options)
    return {"ids": diagnosis.finding_ids(), "findings": {f.id: f for f in diagnosis.findings}}


@pytest.mark.parametrize(("content", "why"), [(b"", "empty"), (b"\x00\x01\x02" * 5000, "binary")])
def test_an_empty_or_binary_log_says_nothing_was_read(
    tmp_path: Path, content: bytes, why: str
) -> None:
    got = judge_text(tmp_path, content)
    finding = got["findings"]["log_unreadable"]
    assert why in finding.message and "nothing was read" in finding.message


def test_dev_zero_and_a_100_mb_line_neither_hang_nor_fill_memory(tmp_path: Path) -> None:
    long_line = tmp_path / "long.log"
    with long_line.open("wb") as f:
        for _ in range(100):
            f.write(b"x" * 1_000_000)
        f.write(b"\n(EngineCore pid=1) ERROR torch.OutOfMemoryError: CUDA out of memory.\n")
    tracemalloc.start()
    t0 = time.monotonic()
    zero = read_server_log(path=Path("/dev/zero"), source="/dev/zero")
    assert zero.scan.binary and zero.scan.coverage() == (
        "it is not a text log (binary data): nothing was read"
    )
    log = read_server_log(path=long_line, source="long.log")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.monotonic() - t0 < 60
    assert peak < 64 * 1024 * 1024, peak
    assert log.scan.long_lines == 1 and log.scan.line_count == 2
    cause = log.root_cause()
    assert cause is not None and cause.finding_id == "cuda_oom" and cause.line_number == 2


def test_a_log_bigger_than_the_bound_is_read_from_its_end(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    healthy = (LOGS / "healthy.log").read_text()
    path.write_text(healthy * 200 + (LOGS / "runtime_cuda_oom.log").read_text())
    lines: list[tuple[int, str]] = []
    scan = log_scan.scan_file(path, lambda n, line: lines.append((n, line)), limit=20_000)
    assert scan.skipped_head_bytes > 0
    assert "only its last 0 MiB of 0 MiB were read" in (scan.coverage() or "")
    assert any("CUDA out of memory" in line for _, line in lines)


def test_kept_lines_match_a_plain_line_by_line_filter_across_chunk_edges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast reader keeps exactly the keyword lines (and those after them), numbered."""
    rng = random.Random(7)
    words = [k.decode() for k in KEYWORDS] + ["alpha", "beta gamma", "delta"] * 12
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 4))) for _ in range(3000)]
    text = "\n".join(lines) + "\n"
    expected: set[int] = set()
    for i, line in enumerate(lines):
        if any(k.decode() in line for k in KEYWORDS):
            expected.update(range(i + 1, min(len(lines), i + FOLLOW_LINES + 1) + 1))
    monkeypatch.setattr(log_scan, "CHUNK_BYTES", 997)
    got: list[tuple[int, str]] = []
    scan = log_scan.scan_text(text, lambda n, line: got.append((n, line)))
    assert scan.line_count == len(lines)
    assert [n for n, _ in got] == sorted(expected)
    assert all(lines[n - 1] == line for n, line in got)


def test_a_large_log_with_a_runtime_oom_near_its_end(tmp_path: Path) -> None:
    """20 MB of healthy traffic, then a run-time CUDA OOM: named (speed: benchmarks/)."""
    from benchmarks.big_log import write_log

    path = write_log(tmp_path / "big.log", 20_000_000)
    log = read_server_log(path=path, source="big.log")
    newest = log.newest
    assert newest is not None and newest.outcome == "died"
    cause = newest.death_cause()
    assert cause is not None and cause.finding_id == "cuda_oom"


@pytest.mark.parametrize("path", sorted(LOGS.glob("*.log")), ids=lambda p: p.stem)
def test_the_fast_reader_finds_the_same_start_up_cause_as_a_line_by_line_read(path: Path) -> None:
    """Every signature's line holds a keyword (or follows one): nothing is skipped unseen."""
    from picoclaw_vllm.vllm_api.log_signatures import all_causes

    text = path.read_text(errors="replace").replace("\r", " ")
    expected = {(c.line_number, c.finding_id) for c in all_causes(text)}
    log = read_server_log(text=text)
    got = {(c.line_number, c.finding_id) for s in log.starts for c in s.causes()}
    assert expected <= got
