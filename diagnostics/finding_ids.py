"""The kinds of finding the doctor reports: a typo in an id fails the type check.

Values are the stable ids of the JSON report and `diagnose --list`; they never change meaning.
"""

from __future__ import annotations

from enum import StrEnum


class FindingId(StrEnum):
    CONFIG_INVALID = "config_invalid"
    CONFIG_IGNORED = "config_ignored"
    CONNECTION_REFUSED = "connection_refused"
    UNEXPECTED_ANSWER = "unexpected_answer"
    API_BASE_PATH = "api_base_path"
    AUTH_FAILED = "auth_failed"
    MODEL_NOT_FOUND = "model_not_found"
    CONTEXT_OVERFLOW = "context_overflow"
    CONTEXT_HEADROOM = "context_headroom"
    TOOL_CHOICE_REJECTED = "tool_choice_rejected"
    TOOL_CALL_UNPARSED = "tool_call_unparsed"
    TOOL_PARSER_INVALID = "tool_parser_invalid"
    ENGINE_DEAD = "engine_dead"
    LEFTOVER_SERVER = "leftover_server"
    OOM_KILLED = "oom_killed"
    REQUESTS_ABORTED = "requests_aborted"
    PREEMPTIONS = "preemptions"
    CONTEXT_REJECTED = "context_rejected"
    SERVER_STOPPED = "server_stopped"
    LOG_UNREADABLE = "log_unreadable"
    ILLEGAL_MEMORY_ACCESS = "illegal_memory_access"
    NCCL_ERROR = "nccl_error"
    COMPLETION_FAILED = "completion_failed"
    CHAT_TEMPLATE_MISSING = "chat_template_missing"
    SLOW_RESPONSES = "slow_responses"
    CUDA_OOM = "cuda_oom"
    GPU_MEMORY_IN_USE = "gpu_memory_in_use"
    KV_CACHE_INSUFFICIENT = "kv_cache_insufficient"
    HF_GATED = "hf_gated"
    HF_REPO_NOT_FOUND = "hf_repo_not_found"
    HF_TOKEN_REJECTED = "hf_token_rejected"
    HF_HUB_UNREACHABLE = "hf_hub_unreachable"
    TENSOR_PARALLEL_INVALID = "tensor_parallel_invalid"
    SHM_TOO_SMALL = "shm_too_small"
    PORT_IN_USE = "port_in_use"
    NO_KERNEL_IMAGE = "no_kernel_image"
    FALLBACK_MISSING = "fallback_missing"
    LOG_ERROR = "log_error"
    CHECK_CRASHED = "check_crashed"
    TOOL_RESULT_REJECTED = "tool_result_rejected"
    CONTROL_TOKENS_LEAKED = "control_tokens_leaked"
