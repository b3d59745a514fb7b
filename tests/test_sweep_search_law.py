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
from picoclaw_vllm import run_layout
from picoclaw_vllm.intervals import Outcome, judge, quantile_interval
from reports.build import build_report
from reports.gates import Gates
from reports.search_judge import step_judge
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
    # unsettled, neither a pass nor a failure
    assert result.passes_at == 3 and result.unsettled_at == 4 and result.fails_at is None
    boundary = next(r for r in result.as_json()["levels"] if r["level"] == 4)
    assert boundary == {"level": 4, "outcome": "inconclusive", "step_ids": ["c4-x1", "c4-x2"]}
    assert "unsettled at 4 (still inconclusive) on ttft_p95_ms" in result.answer()


def test_an_unsettled_level_below_a_failing_one_is_kept_apart_from_it() -> None:
    outcomes = {1: Outcome.PASS, 2: Outcome.PASS, 3: Outcome.INCONCLUSIVE, 4: Outcome.FAIL}

    def measure(level: int, attempt: int) -> Measured:
        outcome = outcomes.get(level, Outcome.FAIL)
        return Measured(f"c{level}-x{attempt}", outcome, "ttft_p95_ms", "")

    result = search(measure, start=1, resolution=1, max_level=64, budget_s=60, tries=2)
    doc = result.as_json()
    assert (doc["passes_at"], doc["unsettled_at"], doc["fails_at"]) == (2, 3, 4)
    assert [lv["level"] for lv in doc["levels"]] == [1, 2, 4, 3]


def test_the_report_reads_every_search_key_the_sweep_writes() -> None:
    """Writer (sweeps.search.SearchResult.as_json, stored as sweep.json settings[id].search)
    and reader (reports.ties.from_search) agree on the keys and what they mean."""
    from reports.steps import Step
    from reports.ties import candidate, from_search, search_sentence

    outcomes = {1: Outcome.PASS, 2: Outcome.PASS, 3: Outcome.INCONCLUSIVE, 4: Outcome.FAIL}
    doc = search(
        lambda level, attempt: Measured(f"s-c{level}", outcomes[level], "ttft_p95_ms", ""),
        start=1, resolution=1, max_level=4, budget_s=60,
    ).as_json()  # fmt: skip
    read = {"passes_at", "fails_at", "unsettled_at", "binding"}
    assert read <= set(doc)
    steps = [
        Step({"step_id": f"s-c{c}", "setting_id": "s", "status": "ok", "load_mode": "concurrency",
              "concurrency": c, "output_throughput": 10.0 * c})
        for c in (1, 2, 3, 4)
    ]  # fmt: skip
    plain = candidate(steps[0], steps[1], True, 0.95, label="s")
    cand = from_search(plain, json.loads(json.dumps(doc)), steps)
    assert (cand.passes_at, cand.unsure_at, cand.fails_at) == (2.0, 3.0, 4.0)
    assert cand.binding == "ttft_p95_ms" and cand.step.step_id == "s-c2"
    text = search_sentence(cand, "sessions")
    assert "passes at 2, unsettled at 3, fails at 4; ttft_p95_ms binds" in text, text
    unsettled_only = from_search(plain, {**doc, "fails_at": None}, steps)
    assert "is inconclusive at 3 sessions" in search_sentence(unsettled_only, "sessions")


SLOTS, TTFT_MS, LIMIT_MS = 2, 200, 500  # 4 users: 400 ms each; 5: 400-600 ms; 6: 600 ms


@pytest.fixture
def slotted(tmp_path: Path) -> Iterator[str]:
    yield from _start(tmp_path, "--ttft-ms", str(TTFT_MS), "--slots", str(SLOTS))


def test_the_sweep_s_search_on_a_slotted_stand_in(slotted: str, tmp_path: Path) -> None:
    # an error-rate limit a short step can settle (0 of 12 failed: Wilson's upper bound ~24 %)
    gates = Gates.from_values({"e2el_p50_ms": LIMIT_MS, "error_rate_pct": 50})
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
    manifest = json.loads((run_dir / run_layout.MANIFEST).read_text())
    found = manifest["settings"]["external"]["search"]
    # the law: ceil(c/2) * 200 ms <= 500 ms up to c = 4; c = 5 mixes 400 and 600 ms answers
    # (its median may stay inconclusive: then it is unsettled, and 6 fails)
    assert found["passes_at"] in (4, 5)
    upper = found["unsettled_at"] or found["fails_at"]
    assert upper == found["passes_at"] + 1 and found["fails_at"] in (5, 6)
    assert found["binding"] == "e2el_p50_ms" and found["resolution"] == 1
    assert [lv["level"] for lv in found["levels"]][:4] == [1, 2, 4, 8]
    assert wall < budget_s + 30  # the budget, plus the step under way when it ended
    with (run_dir / run_layout.RESULTS_CSV).open() as f:
        rows = {r["step_id"]: r for r in csv.DictReader(f)}
    assert rows["external-c4"]["search_level"] == "4" and rows["external-c4"]["budget_met"] == "1"
    for level in found["levels"]:
        assert all((run_dir / "records" / f"{sid}.jsonl").is_file() for sid in level["step_ids"])
    # the report reads what the sweep wrote (sweep.json settings[id].search)
    rec = build_report(run_dir, gates, out_dir=tmp_path / "out").document["recommendation"]
    said = f"passes at {found['passes_at']}"
    assert any(said in d and "capacity search" in d for d in rec["details"]), rec["details"]
