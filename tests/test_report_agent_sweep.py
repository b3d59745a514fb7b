"""A REAL two-setting agent sweep on the CPU vLLM (fixture `small_agent_sweep_run`,
tests/conftest_sweep.py: PicoClaw sessions at --max-num-seqs 2 and 8) runs end to end, and its
report has the capacity answer (from the measured steps only) and the agent plots, checked in
headless Chromium when it is installed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from report_checks import assert_numbers_match_results, html_table, markdown_table
from report_chromium import CHROMIUM, chromium, console_messages, plot_figures

from picoclaw_vllm import run_layout
from picoclaw_vllm.acceptance_command import DEFAULT_AGENT_GATES
from picoclaw_vllm.cli import main
from reports.capacity import RESOURCES
from reports.formatting import AGENT_TITLE

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def report(small_agent_sweep_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("agent-report")
    argv = ["report", str(small_agent_sweep_run), "--slo", DEFAULT_AGENT_GATES]
    code = main([*argv, "--no-doctor-gate", "--out", str(out)])
    assert code in (0, 1, 3)  # 3: a gate the short steps cannot settle (inconclusive)
    outcome = json.loads((out / "report.json").read_text())["verdict"]["outcome"]
    assert code == {"pass": 0, "fail": 1, "inconclusive": 3}[outcome]
    return out


def test_agent_sweep_measured_every_step(small_agent_sweep_run: Path) -> None:
    results = pd.read_csv(small_agent_sweep_run / run_layout.RESULTS_CSV)
    assert sorted(results["step_id"]) == ["s2-tp1-c1", "s2-tp1-c4", "s8-tp1-c1", "s8-tp1-c4"]
    assert (results["status"] == "ok").all(), results[["step_id", "failure_message"]]
    assert (results["workload"] == "agent").all()
    assert (results["turns"] > 0).all() and (results["tool_call_answers"] > 0).all()


def test_report_has_the_capacity_answer(small_agent_sweep_run: Path, report: Path) -> None:
    document = json.loads((report / "report.json").read_text())
    assert_numbers_match_results(document, small_agent_sweep_run)
    rec = document["recommendation"]
    assert rec["workload"] == "agent"
    steps = {s["step_id"]: s for s in document["steps"]}
    capacity = {c["setting_id"]: c for c in rec["capacity"]}
    assert sorted(capacity) == ["s2-tp1", "s8-tp1"]
    for sid, cap in capacity.items():
        series = sorted(
            (s for s in steps.values() if s["setting_id"] == sid), key=lambda s: s["load"]
        )
        served = 0.0
        for step in series:  # the capacity: the measured level below the first unmet gate
            if step["gates_missed"] or step["gates_inconclusive"]:
                break
            served = step["load"]
        assert cap["sessions"] == served, cap
        unmet = [s for s in series if s["gates_missed"] or s["gates_inconclusive"]]
        assert cap["limit_measured"] == bool(unmet)
        for shortage in cap["runs_out_first"]:
            assert shortage["resource"] in RESOURCES
            assert shortage["load"] in {s["load"] for s in series}
        assert "PicoClaw session" in cap["summary"]
    best = max(c["sessions"] for c in capacity.values())
    assert rec["sessions"] == best and rec["found"] == (best > 0)
    if rec["found"]:
        assert "PicoClaw session" in rec["summary"] and rec["setting_id"] in capacity
    hit_rates = [s["server_prefix_cache_hit_rate"] for s in steps.values()]
    assert all(r is not None and r > 0 for r in hit_rates), hit_rates  # vLLM's own counters
    for step in steps.values():
        assert step["prompt_tokens_per_s"] > 0
        assert list(step["ttft_by_call_index"]) == ["1", "2", "3"]


def test_report_shows_agent_table_and_plots(report: Path, tmp_path: Path) -> None:
    markdown = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    table = markdown_table(markdown, f"## Sweep: {AGENT_TITLE}\n")
    assert len(table) == 5 and table == html_table(html, "sweep-agent")
    if CHROMIUM is None:
        figures = plot_figures(html)
    else:
        result = chromium(tmp_path, report / "report.html", "--dump-dom")
        assert console_messages(result.stderr) == []
        figures = plot_figures(result.stdout)
    assert list(figures) == ["throughput", "latency", "server", "agent_ttft", "agent_sessions"]
    for name in ("agent_ttft", "agent_sessions"):
        assert len(re.findall(r"<path\b", figures[name])) > 20, name
