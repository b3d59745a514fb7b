"""The on-disk layout of a sweep run, shared by the sweep (writer) and the reports (reader).

RUN_DIR/
  sweep.json            manifest: SCHEMA, tool/vLLM/Locust versions, platform, model, the
                        settings and load steps asked for, the exact vLLM and Locust commands
  results.csv           one row per step (columns below), appended as each step finishes
  results.parquet       the same rows, rewritten after each step
  records/STEP_ID.jsonl raw per-request records (one JSON object per request, with
                        loadtests.records.RECORD_FIELDS)
  logs/SETTING_ID.log   the vLLM server log of each setting (API keys redacted)
  doctor.json           the doctor's JSON (`picoclaw-vllm diagnose --json`), when run

A step is one (server setting, load level) pair. A setting that could not start is ONE row
with status "failed", failure_id set to the doctor's finding id and failure_message to the
root-cause log line; its load columns are empty.

Latency columns are in milliseconds and follow `vllm bench serve`'s definitions
(TTFT, ITL pooled per event gap, TPOT per request, E2EL); percentiles interpolate linearly.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

SCHEMA = "picoclaw-vllm/sweep/v1"

MANIFEST = "sweep.json"
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
RECORDS_DIR = "records"
LOGS_DIR = "logs"
DOCTOR_JSON = "doctor.json"

LATENCY_METRICS = ("ttft", "itl", "tpot", "e2el")
STATS = ("mean", "p50", "p90", "p95", "p99")

SETTING_COLUMNS = [
    "step_id",  # e.g. "s2-tp1-c8"
    "setting_id",  # e.g. "s2-tp1"
    "max_num_seqs",
    "tensor_parallel_size",
    "status",  # "ok" | "failed"
    "failure_id",  # doctor finding id when the setting failed to start
    "failure_message",
]
LOAD_COLUMNS = [
    "load_mode",  # "concurrency" (closed loop) | "rate" (open loop, Poisson)
    "concurrency",  # users, or the concurrency cap in rate mode
    "request_rate",  # requests/s asked for in rate mode
    "duration_s",  # measured window (warm-up excluded)
    "warmup_s",
    "prompt_tokens_asked",
    "output_tokens_asked",
    "completed",
    "failed",
    "request_throughput",  # completed / duration
    "output_throughput",  # output tokens / s
    "total_token_throughput",  # (prompt + output) tokens / s
    "goodput",  # requests/s meeting every SLO given to the sweep
]
LATENCY_COLUMNS = [f"{m}_ms_{s}" for m in LATENCY_METRICS for s in STATS]
SERVER_COLUMNS = [
    # max: the highest sampled gauge; mean: time-averaged, by Little's law from vLLM's
    # request time histograms (server_metrics)
    "server_running_max",
    "server_running_mean",
    "server_waiting_max",
    "server_waiting_mean",
    "server_queue_ms_mean",  # mean time a request waited in vLLM's queue
    "server_kv_cache_max",  # 0..1
    "server_preemptions",
    "server_prompt_tokens",
    "server_generation_tokens",
    "server_prefix_cache_hit_rate",
    "gpu_memory_used_max_mib",
    "gpu_utilization_mean",
]
AGENT_COLUMNS = [
    # the agent workload (PicoClaw sessions): empty for independent requests
    "workload",  # "chat" | "agent"
    "turns",  # user messages answered (a turn is all the LLM calls of one message)
    "turns_failed",  # a call of the turn failed
    "turns_timed_out",  # took longer than PicoClaw's request_timeout
    "turn_latency_ms_p50",
    "turn_latency_ms_p95",
    "turn_latency_ms_max",
    "tool_call_answers",
    "text_answers",
    # every answer scored as PicoClaw takes it (picoclaw.tool_answers), % of scored answers
    "scored_answers",
    "answers_tool_call_pct",
    "answers_text_pct",
    "answers_markup_in_content_pct",
    "answers_invalid_arguments_pct",
    "answers_cut_by_length_pct",
    "invalid_tool_calls_pct",  # markup left in content + arguments PicoClaw cannot run
    "prompt_tokens_mean",  # per call: the history grows, so this grows with turns
    "prompt_tokens_max",
]
COLUMNS = SETTING_COLUMNS + LOAD_COLUMNS + LATENCY_COLUMNS + SERVER_COLUMNS + AGENT_COLUMNS

ResultValue = str | int | float | None
# One results row: column (COLUMNS, and results.EXTRA_COLUMNS) -> value. A row the sweep has
# just measured holds numbers (None for an empty cell); one read back from results.csv holds
# every value as its text ("" for an empty cell).
ResultRow = dict[str, ResultValue]


class SettingPlanEntry(TypedDict):
    """sweep.json `settings[SETTING_ID]`: one server setting and its load steps."""

    max_num_seqs: int | None
    tensor_parallel_size: int | None
    steps: list[str]
    # --search: sweeps.search.SearchJson (passes_at, fails_at, unsettled_at, binding,
    # resolution, levels: [{level, outcome, step_ids}], budget_exhausted, detail); only
    # "levels" while the search runs. reports.ties.from_search reads it.
    search: NotRequired[dict[str, Any]]


class ServerEntry(TypedDict):
    """sweep.json `servers[SETTING_ID]`: a vLLM server the sweep started (so a leftover of a
    killed sweep can be named and stopped)."""

    pid: int
    pgid: int
    port: int
    command: str | None
    started_unix: float
    tool_pid: int
    stopped_unix: NotRequired[float]


class Manifest(TypedDict):
    """sweep.json as the sweep writes it (a reader of a run dir must still check it)."""

    schema: str
    created_unix: float
    tool_version: str
    locust_version: str
    vllm_version: str | None
    platform: dict[str, str]  # python, platform
    model: str | None
    config: dict[str, Any]  # SweepConfig.to_json()
    settings: dict[str, SettingPlanEntry]
    vllm_commands: dict[str, str | None]  # setting id -> command line
    locust_commands: dict[str, str]  # step id -> command line
    servers: NotRequired[dict[str, ServerEntry]]
    # --search: the settings whose search finished (each one's is in settings[id].search)
    search_done: NotRequired[list[str]]


# sweep.json as a reader finds it. reports.run_data checks only that it is a JSON object whose
# schema, when given, is SCHEMA: nothing else in it is checked, so it is not a Manifest and its
# values stay Any (the report reads each one defensively).
ManifestJson = dict[str, Any]
# doctor.json as a reader finds it. reports.run_data checks only that it is a JSON object whose
# "checks", when given, is a list; its values stay Any for the same reason.
DoctorJson = dict[str, Any]
