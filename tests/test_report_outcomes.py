"""Gates with three outcomes and recommendations that declare ties, on SYNTHETIC data (no vLLM):
samples drawn from known distributions, so whether an interval lies within, beyond or across a
limit is known before the gate is judged."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from report_synthetic_run import write_synthetic_run

from picoclaw_vllm.cli import main
from picoclaw_vllm.intervals import Outcome
from reports import ties
from reports.build import EXIT_INCONCLUSIVE, build_report
from reports.gates import Gates
from reports.run_data import StepSamples
from reports.steps import Step
from reports.verdict import judge_step, judge_step_records, step_outcome


def _step(
    setting: str, load: int, ttft: np.ndarray, tokens_per_s: np.ndarray, **values: Any
) -> Step:
    """A step whose TTFT samples are `ttft` and whose requests finish one per 0.1 s with
    output tokens so that each 1/5 of the step runs at the rates in `tokens_per_s`."""
    n = len(ttft)
    ends = 1_800_000_000.0 + 0.1 * np.arange(n)
    window = np.minimum((np.arange(n) * 5) // n, 4)
    tokens = tokens_per_s[window] * 0.1
    samples = StepSamples(
        n, n, 0, 0, values={"ttft": [float(v) for v in ttft]},
        finishes=[(float(e), float(t)) for e, t in zip(ends, tokens, strict=True)],
    )  # fmt: skip
    row: dict[str, Any] = {
        "step_id": f"{setting}-c{load}",
        "setting_id": setting,
        "status": "ok",
        "load_mode": "concurrency",
        "concurrency": load,
        "completed": n,
        "failed": 0,
        "ttft_ms_p95": float(np.percentile(ttft, 95)),
        "output_throughput": float(tokens.sum() / (ends[-1] - ends[0])),
        "tensor_parallel_size": 1,
        "max_num_seqs": 8,
        **values,
    }
    return Step(row, samples)


RNG = np.random.default_rng(7)
TTFT = RNG.lognormal(np.log(300), 0.4, 600)  # p95 about 580 ms
P95 = float(np.percentile(TTFT, 95))  # within its own interval: a limit there straddles it


@pytest.mark.parametrize(
    ("limit", "outcome"),
    [(2 * P95, Outcome.PASS), (P95 / 2, Outcome.FAIL), (P95, Outcome.INCONCLUSIVE)],
)
def test_gate_outcome_follows_where_the_interval_lies(limit: float, outcome: Outcome) -> None:
    step = _step("a", 4, TTFT, np.full(5, 100.0))
    (check,) = judge_step(step, Gates.from_values({"ttft_p95_ms": limit}))
    assert check.estimate is not None and check.estimate.bounded
    assert check.result == outcome
    assert check.passed == (outcome == Outcome.PASS)
    assert bool(check.settle) == (outcome == Outcome.INCONCLUSIVE)


def test_too_few_requests_for_a_p99_is_inconclusive_and_says_how_many() -> None:
    step = _step("a", 4, TTFT[:26], np.full(5, 100.0))
    (check,) = judge_step(step, Gates.from_values({"ttft_p99_ms": 10_000}))
    assert check.result == Outcome.INCONCLUSIVE  # even a far limit: the p99 is not bounded
    assert "needs ≥ 368 requests" in check.settle and "(has 26)" in check.settle
    assert step_outcome([check])[:2] == (Outcome.INCONCLUSIVE, "ttft_p99_ms")


def test_inconclusive_gate_never_makes_the_report_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = write_synthetic_run(tmp_path / "run")
    # s8-tp1 at 8 users: p95 TTFT 400 ms with the 95 % interval [381.0, 463.8]: 420 straddles it
    gates = Gates.from_values({"ttft_p95_ms": 420, "target_concurrency": 8})
    result = build_report(run_dir, gates, out_dir=tmp_path / "out")
    verdict = result.document["verdict"]
    assert verdict["outcome"] == "inconclusive" and not result.passed
    assert verdict["inconclusive_gates"] == ["ttft_p95_ms"] and verdict["failed_gates"] == []
    assert result.headline.startswith("INCONCLUSIVE") and "PASS" not in result.headline
    assert result.exit_code == EXIT_INCONCLUSIVE
    case = next(ET.parse(result.paths["junit"]).getroot().iter("testcase"))
    failure = case.find("failure")
    assert failure is not None and failure.attrib["type"] == "inconclusive"
    assert "? INCONCLUSIVE" in result.paths["md"].read_text()
    common = [str(run_dir), "--slo", "ttft_p95_ms=420", "--target-concurrency", "8"]
    assert main(["report", *common, "--out", str(tmp_path / "a")]) == EXIT_INCONCLUSIVE
    assert main(["report", *common, "--allow-inconclusive", "--out", str(tmp_path / "b")]) == 0
    assert "INCONCLUSIVE" in capsys.readouterr().out
    # a wider interval at 99 %: still inconclusive; a bad confidence is one line, exit 2
    assert main(["report", *common, "--confidence", "99", "--out", str(tmp_path / "c")]) == 3
    assert main(["report", *common, "--confidence", "1.5"]) == 2


def test_judge_step_records_uses_the_report_rule(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run")
    records = run_dir / "records" / "s8-tp1-c8.jsonl"
    row = {"step_id": "s8-tp1-c8", "status": "ok", "completed": 400, "failed": 0,
           "ttft_ms_p95": 400.0, "concurrency": 8}  # fmt: skip
    gates = Gates.from_values({"ttft_p95_ms": 420, "error_rate_pct": 1})
    assert judge_step_records(records, row, gates)[:2] == (Outcome.INCONCLUSIVE, "ttft_p95_ms")
    assert judge_step_records(records, row, Gates.from_values({"ttft_p95_ms": 600})) == (
        Outcome.PASS,
        None,
        "every gate is met",
    )
    outcome, binding, detail = judge_step_records(
        records, row, Gates.from_values({"ttft_p95_ms": 300})
    )
    assert (outcome, binding) == (Outcome.FAIL, "ttft_p95_ms") and "381.0" in detail
    assert json.loads(records.read_text().splitlines()[0])["warmup"]  # warm-up lines skipped


def _candidate(setting: str, tp: int, seqs: int, rates: np.ndarray) -> ties.Candidate:
    step = _step(setting, 8, TTFT, rates, tensor_parallel_size=tp, max_num_seqs=seqs)
    return ties.candidate(step, None, False, 0.95)


def test_same_distribution_is_a_tie_broken_by_the_stated_rule() -> None:
    rng = np.random.default_rng(3)
    a = _candidate("s8-tp2", 2, 8, rng.normal(200, 15, 5))
    b = _candidate("s4-tp1", 1, 4, rng.normal(200, 15, 5))
    c = _candidate("s8-tp1", 1, 8, rng.normal(200, 15, 5))
    choice = ties.choose([a, b, c], "users")
    assert choice is not None
    assert {t.setting_id for t in choice.tied} == {"s8-tp2", "s4-tp1", "s8-tp1"}
    assert choice.best.setting_id == "s4-tp1"  # TP 1 before TP 2, then max-num-seqs 4 before 8
    assert "cannot be told apart" in choice.sentences[0] and ties.TIE_RULE in choice.sentences[0]
    assert "limit was not reached" in choice.sentences[0]


def test_a_difference_beyond_the_noise_picks_the_better_setting() -> None:
    rng = np.random.default_rng(4)
    slow = _candidate("s4-tp1", 1, 4, rng.normal(100, 5, 5))  # the rule would pick it in a tie
    fast = _candidate("s8-tp2", 2, 8, rng.normal(300, 5, 5))
    choice = ties.choose([slow, fast], "users")
    assert choice is not None and choice.best.setting_id == "s8-tp2" and len(choice.tied) == 1
    assert any("delivers more output tokens/s than" in s for s in choice.sentences)


def test_capacity_beyond_doubt_beats_throughput() -> None:
    rng = np.random.default_rng(5)
    step = _step("big", 8, TTFT, rng.normal(100, 5, 5))
    small_up = _step("small", 8, TTFT, rng.normal(300, 5, 5))
    small = _step("small", 4, TTFT, rng.normal(300, 5, 5))
    big = ties.candidate(step, None, False, 0.95)
    limited = ties.candidate(small, small_up, True, 0.95)  # fails at 8, where big passes
    choice = ties.choose([limited, big], "users")
    assert choice is not None and choice.best.setting_id == "big"
    assert any("serves more than" in s for s in choice.sentences)


def test_repeats_give_throughput_from_the_runs_and_flag_a_large_cv() -> None:
    from reports.steps import with_repeats

    steady = [_step("a", 4, TTFT, np.full(5, r), output_throughput=r) for r in (100, 102, 98)]
    shaky = [_step("b", 4, TTFT, np.full(5, r), output_throughput=r) for r in (100, 140, 70)]
    for k, s in enumerate([*steady, *shaky], start=1):
        s.values.update(step_id=f"{s.setting_id}-c4-x{k}", repeat=k)
    steps = with_repeats([*steady, *shaky])
    a, b = steps[0], steps[3]
    assert len(a.repeats) == 3 and not a.warnings
    assert any("output tok/s varies" in w and "across 3 runs" in w for w in b.warnings)
    assert b.as_json()["repeats"]["cv"]["output_throughput"] > 0.10  # type: ignore[index]
    (check,) = judge_step(a, Gates.from_values({"output_tokens_per_s": 90}))
    assert check.estimate is not None and check.estimate.n == 3 and check.estimate.method == "t"
    assert check.result == Outcome.PASS  # mean 100, t interval over 3 runs about ±5
    (check,) = judge_step(b, Gates.from_values({"output_tokens_per_s": 90}))
    assert check.result == Outcome.INCONCLUSIVE  # the runs spread 70-140


def test_capacity_search_in_sweep_json_is_read(tmp_path: Path) -> None:
    from report_synthetic_agent_run import write_synthetic_agent_run

    run_dir = write_synthetic_agent_run(tmp_path / "run")
    manifest = json.loads((run_dir / "sweep.json").read_text())
    manifest["settings"]["s4-tp1"]["search"] = {
        "passes_at": 4, "fails_at": 6, "binding": "ttft_p95_ms", "resolution": 2,
        "levels": [{"level": 4, "outcome": "pass", "step_ids": ["s4-tp1-c4"]}],
    }  # fmt: skip
    (run_dir / "sweep.json").write_text(json.dumps(manifest))
    gates = Gates.from_values({"ttft_p95_ms": 2000, "error_rate_pct": 1})
    rec = build_report(run_dir, gates, out_dir=tmp_path / "out").document["recommendation"]
    assert any(
        "serves 4 PicoClaw sessions (passes at 4, fails at 6; ttft_p95_ms binds" in d
        for d in rec["details"]
    ), rec["details"]
