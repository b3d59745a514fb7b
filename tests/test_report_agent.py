"""The capacity answer and the agent gates, on a SYNTHETIC agent-workload run dir
(tests/report_synthetic_agent_run.py; no vLLM): how many PicoClaw sessions each setting serves,
which serves the most, what runs out first, the turn-latency and timed-out-turn gates, the agent
table in every format, the agent plots; and chat-workload runs unchanged."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from report_checks import html_table, markdown_table
from report_synthetic_agent_run import (
    EXPECTED_RUNS_OUT,
    EXPECTED_SESSIONS,
    write_synthetic_agent_run,
)
from report_synthetic_run import write_synthetic_run

from picoclaw_vllm.acceptance_command import (
    DEFAULT_AGENT_GATES,
    DEFAULT_GATES,
    EMBEDDED_AGENT_GATES,
    _fill_defaults,
)
from picoclaw_vllm.cli import build_parser
from picoclaw_vllm.errors import ConfigError
from reports.build import ReportResult, build_report
from reports.capacity import capacities, runs_out_first
from reports.formatting import AGENT_TITLE
from reports.gates import Gates, parse_slo_argument
from reports.plots import make_plots
from reports.steps import Step

XSD = Path(__file__).resolve().parent.parent / "reports" / "schemas" / "junit.xsd"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_synthetic_agent_run(tmp_path / "run")


def build(run_dir: Path, slo: str, **extra: Any) -> ReportResult:
    values: dict[str, Any] = {**parse_slo_argument(slo), **extra}
    return build_report(run_dir, Gates.from_values(values), out_dir=run_dir / "out")


def test_capacity_answer_per_setting_and_the_best(run_dir: Path) -> None:
    rec = build(run_dir, DEFAULT_AGENT_GATES).document["recommendation"]
    assert rec["found"] and rec["workload"] == "agent"
    capacity = {c["setting_id"]: c for c in rec["capacity"]}
    assert {sid: c["sessions"] for sid, c in capacity.items()} == EXPECTED_SESSIONS
    assert {
        sid: [r["resource"] for r in c["runs_out_first"]] for sid, c in capacity.items()
    } == EXPECTED_RUNS_OUT
    assert capacity["s4-tp1"]["first_failing_load"] == 8
    assert capacity["s4-tp1"]["runs_out_first"][0]["load"] == 8
    assert (
        "4 waiting beyond --max-num-seqs 4" in capacity["s4-tp1"]["runs_out_first"][0]["evidence"]
    )
    assert set(capacity["s4-tp1"]["broken_gates"]) == {
        "ttft_p95_ms",
        "turn_latency_p95_ms",
        "turns_timed_out",
    }
    assert rec["setting_id"] == "s16-tp1" and rec["sessions"] == 8 and rec["load"] == 8
    assert rec["summary"].startswith("Use max-num-seqs 16 · TP 1: it serves 8 PicoClaw sessions")
    assert "the most of the settings measured" in rec["summary"]
    assert "KV cache 97 % full, 12 preemptions" in rec["details"][0]
    assert "hit rate 86 % at 4 PicoClaw sessions, 40 % at 16" in rec["details"][0]


def test_agent_default_gates_judge_turns(run_dir: Path) -> None:
    result = build(run_dir, DEFAULT_AGENT_GATES, target_concurrency=8)
    gates = {g["gate_id"]: g for g in result.document["gates"]["results"]}
    assert set(gates) == {
        "ttft_p95_ms",
        "turn_latency_p95_ms",
        "error_rate_pct",
        "turns_timed_out",
        "doctor",
    }
    assert result.passed  # s16-tp1 serves 8 sessions
    assert gates["turn_latency_p95_ms"]["measured"] == 20000.0
    assert gates["turn_latency_p95_ms"]["rests_on"] == 100  # turns, not calls
    assert "whole agent turn" in gates["turn_latency_p95_ms"]["explanation"]
    assert "8 PicoClaw sessions" in gates["turns_timed_out"]["explanation"]


def test_timed_out_turns_fail_with_exit_1_and_junit(run_dir: Path) -> None:
    result = build(run_dir, DEFAULT_AGENT_GATES, target_concurrency=16)
    assert result.exit_code == 1
    failed = result.document["verdict"]["failed_gates"]
    assert {"turn_latency_p95_ms", "turns_timed_out", "ttft_p95_ms"} <= set(failed)
    xmlschema.XMLSchema(XSD).validate(result.paths["junit"])
    root = ET.parse(result.paths["junit"]).getroot()
    cases = {c.attrib["name"]: c for c in root.iter("testcase")}
    failure = cases["turns over PicoClaw's request_timeout ≤ 0"].find("failure")
    assert failure is not None and "3 of 100 agent turns" in (failure.text or "")
    properties = {p.attrib["name"]: p.attrib["value"] for p in root.iter("property")}
    assert properties["picoclaw_sessions_served"] == "8.0"


def test_turn_gate_keys() -> None:
    gates = Gates.from_values({"turn_latency_max_ms": 90000, "turns_timed_out": 0})
    assert [limit.column for limit in gates.latency] == ["turn_latency_ms_max"]
    assert gates.max_turns_timed_out == 0
    with pytest.raises(ConfigError, match="unknown gate"):
        Gates.from_values({"turn_latency_p99_ms": 1})  # the sweep records no turn p99
    with pytest.raises(ConfigError, match=">= 0"):
        Gates.from_values({"turns_timed_out": -1})


def test_nothing_served_names_the_first_gate(run_dir: Path) -> None:
    rec = build(run_dir, "ttft_p95_ms=100").document["recommendation"]
    assert not rec["found"] and rec["sessions"] == 0
    assert rec["first_failing_gates"] == ["ttft_p95_ms"]
    assert all(c["sessions"] == 0 and c["step_id"] is None for c in rec["capacity"])
    assert all("serves none of the measured levels" in d for d in rec["details"])


def test_limit_not_measured_is_not_claimed(run_dir: Path) -> None:
    rec = build(run_dir, "error_rate_pct=1").document["recommendation"]
    assert rec["sessions"] == 16 and rec["next_step"] is None
    assert (
        "passes at every level tried, up to 16 PicoClaw sessions; the limit was not reached"
        in (rec["summary"])
    )
    assert all(not c["limit_measured"] for c in rec["capacity"])


def _step(load: int, prompt_tps: float, **values: Any) -> Step:
    return Step(
        {
            "step_id": f"s8-tp1-c{load}",
            "setting_id": "s8-tp1",
            "max_num_seqs": 8,
            "tensor_parallel_size": 1,
            "status": "ok",
            "load_mode": "concurrency",
            "concurrency": load,
            "duration_s": 10.0,
            "workload": "agent",
            "server_waiting_max": 0,
            "server_kv_cache_max": 0.2,
            "server_prefix_cache_hit_rate": 0.8,
            "server_prompt_tokens": prompt_tps * 10,
            **values,
        }
    )


def test_prefill_runs_out_when_prompt_tokens_stop_growing() -> None:
    series = [_step(1, 1000.0), _step(2, 1900.0), _step(4, 2300.0)]
    (shortage,) = runs_out_first(series)
    assert shortage.resource == "prefill" and shortage.load == 4
    assert "1900 at 2 PicoClaw sessions, 2300 at 4" in shortage.evidence
    # a queue explains the plateau instead: then the queue is named, not prefill
    queued = [*series[:2], _step(4, 2300.0, server_waiting_max=3, max_num_seqs=2)]
    assert [s.resource for s in runs_out_first(queued)] == ["queue"]
    # a request seen waiting for a moment with room to spare is no queue
    blip = [_step(1, 1000.0, server_waiting_max=1, server_queue_ms_mean=1.0)]
    assert runs_out_first(blip) == []
    # a waiting gauge no scrape sampled (None): vLLM's queue-time histogram still says it
    unsampled = {"server_waiting_max": None, "max_num_seqs": 2}
    waited = _step(4, 2300.0, server_queue_ms_mean=900.0, **unsampled)
    (queue,) = runs_out_first([*series[:2], waited])
    assert queue.resource == "queue" and "requests waited beyond" in queue.evidence
    # neither the gauge nor the histogram: no queue is claimed (the plateau is prefill's)
    unknown = runs_out_first([*series[:2], _step(4, 2300.0, **unsampled)])
    assert [s.resource for s in unknown] == ["prefill"]
    growing = [_step(1, 1000.0), _step(2, 1900.0), _step(4, 3900.0)]
    assert runs_out_first(growing) == []
    (cap,) = capacities(growing, Gates())
    assert "Nothing ran out in the measured steps" in cap.sentence()


def test_agent_table_in_markdown_html_and_json(run_dir: Path) -> None:
    result = build(run_dir, DEFAULT_AGENT_GATES)
    markdown = result.paths["md"].read_text()
    html = result.paths["html"].read_text()
    table = markdown_table(markdown, f"## Sweep: {AGENT_TITLE}\n")
    assert table == html_table(html, "sweep-agent")
    assert table[0][:5] == ["setting", "max-num-seqs", "TP", "sessions", "turns"]
    by_step = {row[0] + "/" + row[3]: row for row in table[1:]}
    row = by_step["s16-tp1/16 PicoClaw sessions"]
    headers = table[0]
    assert row[headers.index("timed out")] == "3"
    assert row[headers.index("prefix-cache hit %")] == "40.0"
    assert row[headers.index("prompt tok/s")] == "8,500.0"
    assert row[headers.index("tool-call answers")] == "300"
    assert "serves 8 PicoClaw sessions" in markdown
    document = json.loads(result.paths["json"].read_text())
    step = next(s for s in document["steps"] if s["step_id"] == "s16-tp1-c16")
    assert step["prompt_tokens_per_s"] == pytest.approx(8500.0)
    medians = [v["ttft_ms_p50"] for v in step["ttft_by_call_index"].values()]
    assert list(step["ttft_by_call_index"]) == ["1", "2", "3", "4"]
    assert medians == sorted(medians) and medians[0] < medians[-1]
    assert list(step["ttft_by_turn_index"]) == ["1", "2", "3", "4", "5"]


def test_agent_plots_are_drawn(run_dir: Path) -> None:
    document = build(run_dir, DEFAULT_AGENT_GATES).document
    plots = {p.plot_id: p for p in make_plots(document)}
    assert list(plots) == ["throughput", "latency", "server", "agent_ttft", "agent_sessions"]
    assert "call index within a turn" in plots["agent_ttft"].svg
    assert "turn index within a session" in plots["agent_ttft"].svg
    assert "prefix-cache hit rate (%)" in plots["agent_sessions"].svg
    assert "gate: turn p95 ≤ 120 s" in plots["agent_sessions"].svg


def test_chat_runs_keep_their_report(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run")
    result = build(run_dir, DEFAULT_GATES)
    rec = result.document["recommendation"]
    assert rec["workload"] == "chat" and rec["capacity"] == [] and rec["sessions"] is None
    assert [p.plot_id for p in make_plots(result.document)] == ["throughput", "latency", "server"]
    assert AGENT_TITLE not in result.paths["md"].read_text()
    assert "picoclaw_sessions_served" not in result.paths["junit"].read_text()


def test_acceptance_gates_follow_the_workload() -> None:
    model = ["--model", "meta-llama/Llama-3.2-3B-Instruct"]
    args = build_parser("acceptance").parse_args(["acceptance", *model])
    _fill_defaults(args)
    assert args.workload == "agent" and args.slo == [DEFAULT_AGENT_GATES]
    assert "turn_latency_p95_ms=120000" in DEFAULT_AGENT_GATES
    assert "turns_timed_out=0" in DEFAULT_AGENT_GATES
    chat = build_parser("acceptance").parse_args(["acceptance", *model, "--workload", "chat"])
    _fill_defaults(chat)
    assert chat.slo == [DEFAULT_GATES]
    embedded = build_parser("acceptance").parse_args(["acceptance"])
    _fill_defaults(embedded)
    assert embedded.slo == [EMBEDDED_AGENT_GATES] and "turns_timed_out=0" in EMBEDDED_AGENT_GATES


def test_an_unsettled_gate_is_never_called_missed() -> None:
    from picoclaw_vllm.intervals import Outcome
    from reports.capacity import unmet_text
    from reports.gates import StepCheck

    def check(gate: str, outcome: Outcome) -> StepCheck:
        return StepCheck(gate, gate, 1.0, 2.0, "ms", outcome == Outcome.PASS, outcome=outcome)

    unsure = check("ttft_p95_ms", Outcome.INCONCLUSIVE)
    failed = check("error_rate_pct", Outcome.FAIL)
    assert unmet_text([unsure]).startswith("cannot yet be told to meet ttft_p95_ms")
    assert "misses" not in unmet_text([unsure])
    both = unmet_text([failed, unsure])
    assert both.startswith("misses error_rate_pct") and "cannot yet be told to meet ttft" in both
