"""The report document's TypedDicts (reports/document_types.py) say what reports.document writes:
the same keys in the same order at every level, on the SYNTHETIC chat and agent run dirs; a step
entry's declared columns are results columns."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from report_synthetic_agent_run import write_synthetic_agent_run
from report_synthetic_run import write_synthetic_run

from picoclaw_vllm import run_layout
from reports import document_types as types
from reports.document import build_document
from reports.gates import Gates
from reports.run_data import load_run

GATES = Gates.from_values({"ttft_p95_ms": 200, "error_rate_pct": 1})


def keys(typed: type) -> list[str]:
    return list(typed.__annotations__)


def assert_shape(value: Mapping[str, object], typed: type) -> None:
    assert list(value) == keys(typed), typed.__name__


def test_chat_document_has_the_declared_shape(tmp_path: Path) -> None:
    doc = build_document(load_run(write_synthetic_run(tmp_path / "run")), GATES)
    assert_shape(doc, types.ReportDocument)
    for part, typed in (
        ("tool", types.ToolInfo),
        ("platform", types.PlatformInfo),
        ("run", types.RunInfo),
        ("fingerprint", types.Fingerprint),
        ("verdict", types.Verdict),
        ("gates", types.GatesSection),
        ("recommendation", types.RecommendationEntry),
        ("doctor", types.DoctorPresent),
    ):
        assert_shape(doc[part], typed)
    for setting in doc["fingerprint"]["settings"]:
        assert_shape(setting, types.SettingEntry)
    for result in doc["gates"]["results"]:
        assert_shape(result, types.GateResultEntry)
    for check in doc["doctor"]["checks"]:
        assert_shape(check, types.DoctorCheck)
    for finding in doc["doctor"]["findings"]:
        assert_shape(finding, types.DoctorFinding)
    assert doc["doctor"]["present"] and doc["doctor"]["target"] is not None
    assert_shape(doc["doctor"]["target"], types.DoctorTarget)
    assert doc["failed_settings"]
    for failed in doc["failed_settings"]:
        assert_shape(failed, types.FailedSetting)
    next_step = doc["recommendation"]["next_step"]
    assert next_step is not None
    assert_shape(next_step, types.NextStep)


def test_step_entries_hold_every_column_and_the_declared_keys(tmp_path: Path) -> None:
    doc = build_document(load_run(write_synthetic_run(tmp_path / "run")), GATES)
    declared = set(types.StepEntry.__required_keys__)
    derived = [k for k in keys(types.StepJson) if k not in run_layout.COLUMNS]
    for step in doc["steps"]:
        assert declared <= set(step)
        assert list(step)[: len(run_layout.COLUMNS)] == run_layout.COLUMNS
        assert list(step)[len(run_layout.COLUMNS) :] == [
            *derived,
            "gates_missed",
            "gates_inconclusive",
        ]


def test_agent_document_and_absent_doctor_have_the_declared_shape(tmp_path: Path) -> None:
    agent_gates = Gates.from_values({"ttft_p95_ms": 2000, "turns_timed_out": 0})
    doc = build_document(load_run(write_synthetic_agent_run(tmp_path / "run")), agent_gates)
    assert_shape(doc["doctor"], types.DoctorAbsent)
    capacity = doc["recommendation"]["capacity"]
    assert capacity and any(c["runs_out_first"] for c in capacity)
    for entry in capacity:
        assert_shape(entry, types.CapacityEntry)
        for shortage in entry["runs_out_first"]:
            assert_shape(shortage, types.ShortageEntry)
    positions = [p for s in doc["steps"] for p in s["ttft_by_call_index"].values()]
    assert positions
    for position in positions:
        assert_shape(position, types.PositionTtft)
