"""Sample-budget steps and repeats, through the real sweep engine and Locust against the
benchmarks' stub server (a stand-in: the stop must be timed against a known answer rate)."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_benchmarks_stub import _start

from benchmarks.ceiling import write_prompt_file
from loadtests.option_table import sweep_defaults
from loadtests.records import read_records
from picoclaw_vllm import run_layout
from sweeps.config import SweepConfig
from sweeps.engine import run_sweep
from sweeps.observer import RecordingObserver

TTFT_MS = 100  # one user: about 10 answers a second


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[str]:
    yield from _start(tmp_path, "--ttft-ms", str(TTFT_MS))


def _config(stub: str, tmp_path: Path, name: str, **given: object) -> SweepConfig:
    prompts = write_prompt_file(tmp_path / "prompts.jsonl", 8)
    return SweepConfig(
        out=tmp_path / name, launch="external", api_base=f"{stub}/v1", model="stub",
        concurrency=(1,), stop_timeout_s=5.0,
        load=sweep_defaults(warmup_s=1.0, output_tokens=2, prompt_file=str(prompts)),
        **given,  # type: ignore[arg-type]
    )  # fmt: skip


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / run_layout.RESULTS_CSV).open() as f:
        return list(csv.DictReader(f))


def test_a_step_stops_when_its_budget_is_met_and_counts_only_its_window(
    stub: str, tmp_path: Path
) -> None:
    observer = RecordingObserver()
    began = time.monotonic()
    run_dir = run_sweep(
        _config(stub, tmp_path, "met", min_requests=20, max_step_time_s=60.0), observer
    )
    wall = time.monotonic() - began
    (row,) = _rows(run_dir)
    # 20 answers of ~100 ms: about 2 s measured, far from the 60 s maximum
    assert row["budget_met"] == "1" and wall < 30, wall
    end = float(row["window_end_unix"])
    records = [r for r in read_records(run_dir / "records" / f"{row['step_id']}.jsonl")]
    counted = [r for r in records if not r.warmup and r.start_unix <= end]
    assert int(row["completed"]) + int(row["failed"]) == len(counted) >= 20
    assert float(row["window_start_unix"]) == min(r.start_unix for r in counted)
    budgets = [p.budget for p in observer.updates if p.phase == "running" and p.budget]
    assert budgets and "/20 requests" in budgets[-1]


def test_a_step_whose_budget_is_not_met_stops_at_its_maximum_time(
    stub: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    run_dir = run_sweep(_config(stub, tmp_path, "max", min_requests=100_000, max_step_time_s=3.0))
    wall = time.monotonic() - began
    (row,) = _rows(run_dir)
    assert row["status"] == "ok" and row["budget_met"] == "0"
    assert row["window_end_unix"] == ""
    assert 0 < int(row["completed"]) < 100_000
    assert 4.0 <= wall < 30, wall  # the 1 s warm-up and the 3 s maximum, then Locust's exit


def test_repeats_get_their_own_ids_rows_and_records(stub: str, tmp_path: Path) -> None:
    run_dir = run_sweep(_config(stub, tmp_path, "rep", repeats=2, duration_s=1.0))
    rows = _rows(run_dir)
    assert [(r["step_id"], r["repeat"]) for r in rows] == [
        ("external-c1", "1"), ("external-c1-x2", "2"),
    ]  # fmt: skip
    for r in rows:
        assert read_records(run_dir / "records" / f"{r['step_id']}.jsonl")
        assert int(r["completed"]) > 0


def test_the_options_group_renders_and_fills_the_config(tmp_path: Path) -> None:
    import argparse

    from sweeps import command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert "±25% (coarse)" in parser.format_help()
    args = parser.parse_args(
        ["--out", str(tmp_path / "o"), "--search", "--search-slo", "ttft_p95_ms=500",
         "--precision", "normal", "--max-step-time", "45s", "--repeats", "3"]
    )  # fmt: skip
    config = command.config_from_args(args)
    assert (config.search, config.precision, config.max_step_time_s, config.repeats) == (
        True, "normal", 45.0, 3,
    )  # fmt: skip
    assert config.gated == (("ttft", 0.95),)


def test_acceptance_presets_the_search_only_when_asked(tmp_path: Path) -> None:
    import argparse

    from picoclaw_vllm import acceptance_command
    from sweeps import command

    parser = argparse.ArgumentParser()
    acceptance_command.add_arguments(parser)
    configs = []
    for extra in ([], ["--search"]):
        args = parser.parse_args(["--out", str(tmp_path / str(len(extra))), *extra])
        acceptance_command._fill_defaults(args)
        configs.append(command.config_from_args(args))
    plain, searched = configs
    # the plain embedded run is sized by samples too (acceptance_command.EMBEDDED_BUDGET)
    assert (plain.search, plain.budget_mode, plain.step_time_s) == (False, True, 60.0)
    assert plain.min_requests == 36
    assert (searched.search, searched.search_max, searched.min_turns) == (True, 8, 12)
    assert (searched.precision, searched.step_time_s) == ("coarse", 30.0)
