"""The search for the limit (sweeps.search) on stand-ins whose latency follows a known law.

The pure part: a simulated server of S slots with service time T (latency ceil(c/S)*T plus
noise, judged with the order-statistic interval). The whole sweep: the benchmarks' stub server
with `--slots` (a stand-in: a queueing law known exactly cannot come from a real vLLM), run by
the real sweep engine and Locust, judged by the command layer's gate adapter.
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_benchmarks_stub import _start

from benchmarks.ceiling import write_prompt_file
from loadtests.option_table import sweep_defaults
from picoclaw_vllm.intervals import Outcome, judge, quantile_interval
from picoclaw_vllm.search_judge import step_judge
from reports.gates import Gates
from sweeps import run_layout
from sweeps.config import SweepConfig
from sweeps.engine import run_sweep
from sweeps.search import Measure, Measured, search


def _law_measure(
    slots: int, service_ms: float, limit_ms: float, clock: list[float], seed: int
) -> tuple[list[int], Measure]:
    rng = random.Random(seed)
    tried: list[int] = []

    def measure(level: int, attempt: int) -> Measured:
        tried.append(level)
        base = math.ceil(level / slots) * service_ms
        samples = [base * rng.uniform(0.97, 1.03) for _ in range(80 * attempt)]
        clock[0] += 5.0 * attempt  # a step costs simulated time
        outcome = judge(quantile_interval(samples, 0.95), limit_ms, "<=")
        return Measured(f"c{level}-x{attempt}", outcome, "e2el_p95_ms", "")

    return tried, measure


@pytest.mark.parametrize(
    ("slots", "limit_ms", "resolution"), [(2, 450, 1), (8, 1000, 1), (4, 2100, 3), (1, 50, 1)]
)
def test_finds_the_law_s_boundary_within_its_resolution(
    slots: int, limit_ms: float, resolution: int
) -> None:
    service_ms = 100.0
    true_limit = slots * math.floor(limit_ms / service_ms / 1.031)  # ceil(c/S)*T*1.03 <= L
    clock = [0.0]
    _, measure = _law_measure(slots, service_ms, limit_ms, clock, seed=slots)
    result = search(
        measure,
        start=1, resolution=resolution, max_level=256, budget_s=600, clock=lambda: clock[0],
    )  # fmt: skip
    if true_limit == 0:
        assert result.passes_at is None and result.fails_at == 1
        return
    assert result.passes_at is not None and result.fails_at is not None
    assert result.passes_at <= true_limit < result.fails_at
    assert result.fails_at - result.passes_at <= resolution
    assert result.binding == "e2el_p95_ms" and not result.budget_exhausted
    assert clock[0] <= 600
    doc = result.as_json()
    assert doc["levels"][0] == {"level": 1, "outcome": "pass", "step_ids": ["c1-x1"]}


def test_the_budget_ends_the_search_and_says_so() -> None:
    clock = [0.0]
    tried, measure = _law_measure(64, 100.0, 10_000, clock, seed=1)
    result = search(
        measure,
        start=1, resolution=1, max_level=10_000, budget_s=12, clock=lambda: clock[0],
    )  # fmt: skip
    assert tried == [1, 2, 4]  # 5 s a step: the fourth would start after 15 s > 12 s
    assert result.budget_exhausted and result.passes_at == 4 and result.fails_at is None
    assert "at least 4" in result.answer()


def test_an_inconclusive_level_is_measured_again_and_never_counts_as_a_pass() -> None:
    calls: list[tuple[int, int]] = []

    def measure(level: int, attempt: int) -> Measured:
        calls.append((level, attempt))
        outcome = Outcome.PASS if level < 4 else Outcome.INCONCLUSIVE
        return Measured(f"c{level}-x{attempt}", outcome, "ttft_p95_ms", "")

    result = search(measure, start=1, resolution=1, max_level=64, budget_s=60, tries=2)
    assert (4, 1) in calls and (4, 2) in calls
    assert result.passes_at == 3 and result.fails_at == 4
    boundary = next(r for r in result.as_json()["levels"] if r["level"] == 4)
    assert boundary == {"level": 4, "outcome": "inconclusive", "step_ids": ["c4-x1", "c4-x2"]}
    assert "not shown to pass at 4" in result.answer()


SLOTS, TTFT_MS, LIMIT_MS = 2, 200, 500  # 4 users: 400 ms each; 5: 400-600 ms; 6: 600 ms


@pytest.fixture
def slotted(tmp_path: Path) -> Iterator[str]:
    yield from _start(tmp_path, "--ttft-ms", str(TTFT_MS), "--slots", str(SLOTS))


def test_the_sweep_s_search_on_a_slotted_stand_in(slotted: str, tmp_path: Path) -> None:
    gates = Gates.from_values({"e2el_p50_ms": LIMIT_MS, "error_rate_pct": 1})
    budget_s = 120.0
    config = SweepConfig(
        out=tmp_path / "run", launch="external", api_base=f"{slotted}/v1", model="stub",
        search=True, search_start=1, search_max=16, search_resolution=1, search_budget_s=budget_s,
        min_requests=12, max_step_time_s=20.0, stop_timeout_s=5.0,
        load=sweep_defaults(warmup_s=1.0, output_tokens=2, prompt_file=str(
            write_prompt_file(tmp_path / "prompts.jsonl", 8))),
    )  # fmt: skip
    began = time.monotonic()
    run_dir = run_sweep(config, judge=step_judge(gates))
    wall = time.monotonic() - began
    found = json.loads((run_dir / run_layout.MANIFEST).read_text())["search"]["external"]
    # the law: ceil(c/2) * 200 ms <= 500 ms up to c = 4; c = 5 mixes 400 and 600 ms answers
    assert found["passes_at"] in (4, 5) and found["fails_at"] == found["passes_at"] + 1
    assert found["binding"] == "e2el_p50_ms" and found["resolution"] == 1
    assert [lv["level"] for lv in found["levels"]][:4] == [1, 2, 4, 8]
    assert wall < budget_s + 30  # the budget, plus the step under way when it ended
    with (run_dir / run_layout.RESULTS_CSV).open() as f:
        rows = {r["step_id"]: r for r in csv.DictReader(f)}
    assert rows["external-c4"]["search_level"] == "4" and rows["external-c4"]["budget_met"] == "1"
    for level in found["levels"]:
        assert all((run_dir / "records" / f"{sid}.jsonl").is_file() for sid in level["step_ids"])
