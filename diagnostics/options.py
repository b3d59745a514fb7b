"""What to diagnose: plain values, from flags or from another command (the acceptance run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from diagnostics.server_runs import ServerLog
from picoclaw_vllm.nvml import GpuReader


@dataclass
class DiagnoseOptions:
    """Every field is optional; unset ones come from the PicoClaw config, then defaults.

    api_key precedence: api_key, then $VLLM_API_KEY, then the config.
    """

    api_base: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    deadline_s: float | None = None  # the whole diagnosis; None: deadline.default_budget
    started_at: float | None = None  # time.monotonic() the budget counts from (default: now)
    startup_s: float | None = None  # the process's start-up to the doctor's first line
    config_path: Path | None = None
    log_text: str | None = None
    log_source: str | None = None  # where log_text came from, for evidence
    server_log: ServerLog | None = None  # a log already read (the CLI reads --log FILE so)
    kernel_log_commands: tuple[tuple[str, ...], ...] | None = None  # default: journalctl, dmesg
    ttft_threshold_s: float = 2.0
    itl_threshold_s: float = 0.2
    probe_requests: int = 3
    probe_max_tokens: int = 16
    # A forced call of one tool: vLLM 0.32 needs about 60 tokens for the tiny model's junk call.
    forced_call_max_tokens: int = 256
    # The tool_choice "auto" probe: room for one call with a short path.
    auto_call_max_tokens: int = 256
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    model_path: Path | None = None
    check_hub: bool = True
    checks: tuple[str, ...] = ()  # run only these checks (and what they require)
    gpu_reader: GpuReader | None = None
    transport: httpx.BaseTransport | None = None
