"""An open-loop sweep step with two Locust workers against the session server (no start)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import TEST_API_KEY

from loadtests.option_table import sweep_defaults
from loadtests.records import read_records
from picoclaw_vllm import run_layout
from picoclaw_vllm.server.launcher import ServerHandle
from sweeps.config import SweepConfig
from sweeps.engine import PROMPTS_FILE, run_sweep

pytestmark = pytest.mark.vllm


def test_rate_step_with_two_workers(vllm_server: ServerHandle, tmp_path: Path) -> None:
    config = SweepConfig(
        out=tmp_path / "run", launch="external", api_base=vllm_server.api_base,
        api_key=TEST_API_KEY, rates=(4.0,), concurrency=(4,), duration_s=4.0, workers=2,
        load=sweep_defaults(warmup_s=1.0, prompt_tokens=40, output_tokens=16, prompt_pool=4),
    )  # fmt: skip
    run_dir = run_sweep(config)
    row = pd.read_csv(run_dir / run_layout.RESULTS_CSV).iloc[0]
    assert (row["step_id"], row["load_mode"], row["request_rate"], row["concurrency"]) == (
        "external-r4-c4", "rate", 4.0, 4,
    )  # fmt: skip
    # margin: 4 s at 4 requests/s of 16 tokens; the CPU vLLM answers one in well under 1 s
    assert row["completed"] > 0 and row["failed"] == 0
    records = read_records(run_dir / run_layout.RECORDS_DIR / "external-r4-c4.jsonl")
    assert len({r.worker for r in records}) == 2
    assert {r.prompt_tokens for r in records} == {40} and {r.output_tokens for r in records} == {16}
    # one pool per worker, made once by the sweep
    assert len((run_dir / PROMPTS_FILE).read_text().splitlines()) == 8
    assert "--processes 2" in (run_dir / run_layout.MANIFEST).read_text()
