"""A real small sweep (fixture `small_sweep_run`): every row written, vLLM's own figures, the
failed TP 3 settings labelled by the doctor, and no secret anywhere in the run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import psutil
import pytest
from conftest import TEST_API_KEY
from conftest_sweep import SmallSweep, small_sweep_config

from loadtests.records import read_records
from picoclaw_vllm import run_layout

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def results(small_sweep_run: Path) -> pd.DataFrame:
    return pd.read_parquet(small_sweep_run / run_layout.RESULTS_PARQUET).set_index("step_id")


def test_every_step_and_failed_setting_has_a_row(
    small_sweep_run: Path, results: pd.DataFrame
) -> None:
    config = small_sweep_config(small_sweep_run)
    expected = [
        sid if plan.tensor_parallel_size != 3 else plan.setting_id
        for plan in config.settings()
        for sid, _ in (plan.steps if plan.tensor_parallel_size != 3 else plan.steps[:1])
    ]
    assert sorted(results.index) == sorted(expected)
    csv_rows = pd.read_csv(small_sweep_run / run_layout.RESULTS_CSV)
    assert list(csv_rows["step_id"]) == list(results.index)
    assert set(run_layout.COLUMNS) <= {results.index.name, *results.columns}


def test_failed_tp3_settings_name_their_cause(results: pd.DataFrame) -> None:
    failed = results[results["status"] == "failed"]
    assert sorted(failed.index) == ["s2-tp3", "s8-tp3"]
    assert set(failed["failure_id"]) == {"tensor_parallel_invalid"}
    assert all("tensor parallel" in m.lower() for m in failed["failure_message"])
    assert failed["completed"].isna().all()


def test_ok_steps_match_their_raw_records(small_sweep_run: Path, results: pd.DataFrame) -> None:
    ok = results[results["status"] == "ok"]
    assert len(ok) == 8
    for step_id, row in ok.iterrows():
        records = read_records(small_sweep_run / run_layout.RECORDS_DIR / f"{step_id}.jsonl")
        measured = [r for r in records if not r.warmup]
        assert row["completed"] == sum(r.ok for r in measured) > 0, step_id
        assert row["failed"] == 0, step_id
        assert {r.output_tokens for r in records} == {32}, step_id
        assert {r.prompt_tokens for r in records} == {64}, step_id
        assert row["output_throughput"] == pytest.approx(
            32 * row["completed"] / row["duration_s"]
        ), step_id


def test_server_side_figures_show_queueing_above_max_num_seqs(results: pd.DataFrame) -> None:
    # Measures with a margin, not a created condition: a sweep step's load is what the step
    # is. The crowded (6 users, 2 slots) and roomy (6 users, 8 slots) facts must each show in
    # at least one of two TP settings, and means are bounded with 5 % slack (Little's law).
    # Gauges are sampled: on 2 cores a starved API server may answer no scrape while a step
    # runs, and the step's gauge columns are then empty (NaN), never a reading from outside
    # the step. Bounds hold for every reading there is (NaN compares False); "shows in at
    # least one" needs one reading.
    crowded_waiting, roomy_running = [], []
    for tp in (1, 2):
        crowded = results.loc[f"s2-tp{tp}-c6"]  # 6 users, room for 2
        roomy = results.loc[f"s8-tp{tp}-c6"]  # 6 users, room for 8
        assert not crowded["server_running_max"] > 2
        assert not roomy["server_waiting_max"] > 0
        crowded_waiting.append(crowded["server_waiting_max"])
        roomy_running.append(roomy["server_running_max"])
    # On 2 cores vLLM's API server shares a core with the engine core's busy loop, and in
    # some CI runs it handed a step's requests to the scheduler nearly one at a time: in one
    # a crowded step never showed anything waiting, in another a roomy 4-user step never
    # showed more than one running. What the settings allow must show in at least one of
    # the two tensor-parallel settings.
    assert pd.Series(crowded_waiting).max() > 0, crowded_waiting
    assert pd.Series(roomy_running).max() > 2, roomy_running
    ok = results[results["status"] == "ok"]
    assert (ok["server_generation_tokens"] > 0).all()
    # time-averaged (Little's law) running requests can't exceed the users or the slots;
    # these come from vLLM's histograms (counters), which no starved scrape can miss
    users_or_slots = ok[["concurrency", "max_num_seqs"]].min(axis=1)
    assert (ok["server_running_mean"] > 0).all()
    assert (ok["server_running_mean"] <= 1.05 * users_or_slots).all()
    assert (ok["server_queue_ms_mean"] >= 0).all()
    # KV use is a sampled gauge too: read somewhere in each tensor-parallel size
    tp_size = ok["tensor_parallel_size"]
    assert (ok.groupby(tp_size)["server_kv_cache_max"].max() > 0).all(), ok["server_kv_cache_max"]
    assert ok["gpu_memory_used_max_mib"].isna().all()  # no GPU on these machines


def test_manifest_has_commands_and_versions_but_no_secret(small_sweep_run: Path) -> None:
    manifest = json.loads((small_sweep_run / run_layout.MANIFEST).read_text())
    assert manifest["schema"] == run_layout.SCHEMA
    assert manifest["vllm_version"] == "0.32.0"
    commands = manifest["vllm_commands"]
    assert "--max-num-seqs 2" in commands["s2-tp1"]
    assert "--tensor-parallel-size 2" in commands["s8-tp2"]
    assert "--tensor-parallel-size 3" in commands["s2-tp3"]  # what was tried, too
    assert set(manifest["locust_commands"]) >= {"s2-tp1-c1", "s8-tp2-c6"}
    for path in small_sweep_run.rglob("*"):
        if path.is_file():
            assert TEST_API_KEY not in path.read_text(errors="replace"), path
    assert (small_sweep_run / run_layout.LOGS_DIR / "s2-tp3.log").exists()


def test_progress_was_reported(small_sweep: SmallSweep) -> None:
    if small_sweep.observer is None:
        pytest.skip("reused an existing run directory")
    updates = small_sweep.observer.updates
    running = [u for u in updates if u.phase == "running"]
    assert running and max(u.requests for u in running) > 0
    assert max(u.token_rate for u in running) > 0
    assert [u.setting_id for u in updates if u.phase == "server_failed"] == ["s2-tp3", "s8-tp3"]
    ready = [u for u in updates if u.phase == "server_ready"]
    assert len(ready) == 4 and all((u.api_base or "").endswith("/v1") for u in ready)
    assert len([u for u in updates if u.phase == "step_done"]) == 8
    assert small_sweep.observer.completed is not None and len(small_sweep.observer.completed) == 10


def _vllm_alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        text = f"{proc.name()} {' '.join(proc.cmdline())}".lower()
        return "vllm" in text and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_tensor_parallel_2_ran_a_worker_per_rank_and_left_nothing(small_sweep_run: Path) -> None:
    """A TP 2 start on the CPU: the API server, the engine core and one worker per rank, each
    its own process (vLLM's log names each line's process), none of them left after the sweep."""
    log = (small_sweep_run / run_layout.LOGS_DIR / "s8-tp2.log").read_text()
    pids = dict(re.findall(r"^\((APIServer|EngineCore|Worker_TP\d+) pid=(\d+)\)", log, re.M))
    assert set(pids) == {"APIServer", "EngineCore", "Worker_TP0", "Worker_TP1"}, pids
    assert len(set(pids.values())) == 4, pids
    assert [pid for pid in pids.values() if _vllm_alive(int(pid))] == []
