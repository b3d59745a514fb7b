"""The search on the real CPU vLLM (the session server, no extra start) ends and names the
gate that binds. The gate is made to bind: a median E2EL of at most 1 ms, which no answer of
16 tokens meets; the test confirms from the measured step that it was missed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import TEST_API_KEY

from loadtests.option_table import sweep_defaults
from picoclaw_vllm import run_layout
from picoclaw_vllm.server.launcher import ServerHandle
from reports.gates import Gates
from reports.search_judge import step_judge
from sweeps.config import SweepConfig
from sweeps.engine import run_sweep

pytestmark = pytest.mark.vllm


def test_the_search_ends_and_names_its_binding_gate(
    vllm_server: ServerHandle, tmp_path: Path
) -> None:
    gates = Gates.from_values({"error_rate_pct": 1, "e2el_p50_ms": 1})
    config = SweepConfig(
        out=tmp_path / "run", launch="external", api_base=vllm_server.api_base,
        api_key=TEST_API_KEY, search=True, search_start=1, search_max=4, search_budget_s=60.0,
        min_requests=8, max_step_time_s=15.0, stop_timeout_s=10.0,
        load=sweep_defaults(warmup_s=1.0, prompt_tokens=40, output_tokens=16, prompt_pool=4),
    )  # fmt: skip
    run_dir = run_sweep(config, judge=step_judge(gates))
    found = json.loads((run_dir / run_layout.MANIFEST).read_text())["settings"]["external"][
        "search"
    ]
    assert found["passes_at"] is None and found["fails_at"] == 1
    assert found["binding"] == "e2el_p50_ms"
    assert found["levels"] == [{"level": 1, "outcome": "fail", "step_ids": ["external-c1"]}]
    with (run_dir / run_layout.RESULTS_CSV).open() as f:
        (row,) = csv.DictReader(f)
    assert row["status"] == "ok" and float(row["e2el_ms_p50"]) > 1  # the gate was missed
    assert int(row["completed"]) >= 8 and row["budget_met"] == "1"
