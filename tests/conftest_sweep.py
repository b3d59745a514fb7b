"""A real small sweep, run once per session, for every test that reads a sweep run directory.

`small_sweep_run` is the run directory (layout: picoclaw_vllm.run_layout) of SMALL_SWEEP: the
embedded CPU vLLM at --max-num-seqs 2 and 8 x --tensor-parallel-size 1, 2 and 3 (TP 3 cannot
divide the tiny model's 4 heads, so both TP 3 settings are failed rows), closed-loop
concurrency 1 and 6, 6 s steps after a 1 s warm-up, 64-token prompts, 32 output tokens,
SLOs TTFT 2 s and TPOT 200 ms. It takes several minutes (four server starts).
Set PICOCLAW_VLLM_TEST_SWEEP_RUN to an existing run directory to reuse it while iterating.

`small_agent_sweep_run` is the same with the agent workload (SMALL_AGENT_SWEEP): PicoClaw
sessions at --max-num-seqs 2 and 8 x TP 1, 1 and 4 sessions, 3 calls a turn, 1 s think time,
10 s steps after a 2 s warm-up (two server starts). PICOCLAW_VLLM_TEST_AGENT_SWEEP_RUN reuses
an existing one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FAST_START_ARGS, TEST_API_KEY

from loadtests.option_table import sweep_defaults
from sweeps.config import SweepConfig
from sweeps.engine import run_sweep
from sweeps.observer import RecordingObserver
from sweeps.step_figures import GoodputSlo


def small_sweep_config(out: Path) -> SweepConfig:
    return SweepConfig(
        out=out,
        api_key=TEST_API_KEY,
        max_num_seqs=(2, 8),
        tensor_parallel_sizes=(1, 2, 3),
        concurrency=(1, 6),
        duration_s=6.0,
        load=sweep_defaults(warmup_s=1.0, prompt_tokens=64, output_tokens=32, prompt_pool=8),
        slo=GoodputSlo(ttft_ms=2000.0, tpot_ms=200.0),
        ready_timeout_s=300.0,
        metrics_interval_s=0.25,
        extra_vllm_args=FAST_START_ARGS,
    )


def small_agent_sweep_config(out: Path) -> SweepConfig:
    return SweepConfig(
        out=out,
        api_key=TEST_API_KEY,
        max_num_seqs=(2, 8),
        tensor_parallel_sizes=(1,),
        concurrency=(1, 4),
        duration_s=10.0,
        slo=GoodputSlo(ttft_ms=2000.0),
        ready_timeout_s=300.0,
        metrics_interval_s=0.25,
        extra_vllm_args=FAST_START_ARGS,
        load=sweep_defaults(
            warmup_s=2.0, output_tokens=32, workload="agent", calls_per_turn=3, think_time_s=1.0
        ),
    )


@dataclass
class SmallSweep:
    run_dir: Path
    observer: RecordingObserver | None  # None when an existing run was reused
    wall_s: float


@pytest.fixture(scope="session")
def small_sweep(cpu_env: None, tmp_path_factory: pytest.TempPathFactory) -> SmallSweep:
    reuse = os.environ.get("PICOCLAW_VLLM_TEST_SWEEP_RUN")
    if reuse:
        return SmallSweep(Path(reuse), None, 0.0)
    out = tmp_path_factory.mktemp("sweep") / "small"
    observer = RecordingObserver()
    started = time.monotonic()
    run_sweep(small_sweep_config(out), observer)
    return SmallSweep(out, observer, time.monotonic() - started)


@pytest.fixture(scope="session")
def small_sweep_run(small_sweep: SmallSweep) -> Path:
    """The run directory of a real small sweep (see the module docstring)."""
    return small_sweep.run_dir


@pytest.fixture(scope="session")
def small_agent_sweep_run(cpu_env: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory of a real small agent-workload sweep (see the module docstring)."""
    reuse = os.environ.get("PICOCLAW_VLLM_TEST_AGENT_SWEEP_RUN")
    if reuse:
        return Path(reuse)
    out = tmp_path_factory.mktemp("agent-sweep") / "small"
    run_sweep(small_agent_sweep_config(out), RecordingObserver())
    return out
