"""Reduce a vLLM server log to its root cause: the first known failure signature.

Public interface (used by the sweep to label a server setting that failed to start)::

    root_cause(log_text: str) -> LogCause | None
    all_causes(log_text: str) -> list[LogCause]     # every match, in log order

`LogCause(finding_id, line, line_number, detail)`: `finding_id` is a doctor finding id
(see diagnostics.catalog), `line` the matched log line with secrets redacted and the
`(EngineCore pid=N) ERROR ...` prefix kept, `detail` the numbers the line carries (e.g.
`estimated_max_model_len` for kv_cache_insufficient).

vLLM ends a failed start with `RuntimeError: Engine core initialization failed. See root
cause above.`; that line and other consequences are never taken as a cause. When no
signature matches, the first exception line becomes a `log_error` cause, so a failure is
never unlabelled. Wording drifts between vLLM releases: patterns match stable substrings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.redact import redact

LOG_ERROR = FindingId.LOG_ERROR


@dataclass(frozen=True)
class LogCause:
    finding_id: FindingId
    line: str
    line_number: int = 0
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogEvent:
    """A line recording what happened to the server (MARKERS): a start, a death, a count."""

    kind: str
    line: str
    line_number: int = 0
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Signature:
    finding_id: FindingId
    pattern: re.Pattern[str]
    extract: Callable[[re.Match[str]], dict[str, str]] | None = None

    def detail(self, match: re.Match[str]) -> dict[str, str]:
        if self.extract is not None:
            return self.extract(match)
        return {k: v for k, v in match.groupdict().items() if v is not None}


def _sig(finding_id: FindingId, pattern: str) -> Signature:
    return Signature(finding_id, re.compile(pattern, re.IGNORECASE))


_NUM = r"[\d.]+"

# Order matters only when two patterns match the same line: the more specific comes first.
SIGNATURES: tuple[Signature, ...] = (
    _sig(
        FindingId.GPU_MEMORY_IN_USE,
        rf"Free memory on device (?P<device>\S+) \((?P<free_gib>{_NUM})/(?P<total_gib>{_NUM}) GiB\)"
        rf" on startup is less than desired GPU memory utilization"
        rf" \((?P<utilization>{_NUM}), (?P<desired_gib>{_NUM}) GiB\)",
    ),
    _sig(
        FindingId.GPU_MEMORY_IN_USE,
        rf"Available memory on node (?P<device>\S+) \((?P<free_gib>{_NUM})/(?P<total_gib>{_NUM})"
        rf" GiB\) on startup is less than desired CPU memory utilization"
        rf" \((?P<utilization>{_NUM}), (?P<desired_gib>{_NUM}) GiB\)",
    ),
    _sig(
        FindingId.GPU_MEMORY_IN_USE,
        r"(?:Free|Available) memory on (?:device|node) .* less than desired (?:GPU|CPU) memory",
    ),
    _sig(
        FindingId.KV_CACHE_INSUFFICIENT,
        rf"max seq len \((?P<max_seq_len>\d+)\), \((?P<needed_gib>{_NUM}) GiB KV cache is needed,"
        rf".*available KV cache memory \((?P<available_gib>{_NUM}) GiB\)"
        r"(?:.*estimated maximum model length is (?P<estimated_max_model_len>\d+))?",
    ),
    _sig(
        FindingId.KV_CACHE_INSUFFICIENT,
        r"max seq len \((?P<max_seq_len>\d+)\) is larger than the maximum number of tokens that"
        r" can be stored in KV cache \((?P<kv_cache_tokens>\d+)\)",
    ),
    _sig(FindingId.KV_CACHE_INSUFFICIENT, r"No available memory for the cache blocks"),
    _sig(
        FindingId.CUDA_OOM,
        rf"CUDA out of memory\.?(?: Tried to allocate (?P<tried_to_allocate>{_NUM} [KMGT]i?B))?"
        rf"(?:.*total capacity of (?P<total_capacity>{_NUM} [KMGT]i?B))?"
        rf"(?:.*of which (?P<free>{_NUM} [KMGT]i?B) is free)?",
    ),
    _sig(FindingId.CUDA_OOM, r"\bOutOfMemoryError\b"),
    _sig(
        FindingId.TENSOR_PARALLEL_INVALID,
        r"Total number of attention heads \((?P<heads>\d+)\) must be divisible by tensor"
        r" parallel size \((?P<tensor_parallel_size>\d+)\)",
    ),
    _sig(
        FindingId.TENSOR_PARALLEL_INVALID,
        r"World size \((?P<world_size>\d+)\) is larger than the number of available GPUs"
        r" \((?P<gpus>\d+)\)",
    ),
    _sig(
        FindingId.TENSOR_PARALLEL_INVALID,
        r"Not enough allowed NUMA nodes to bind threads of (?P<workers>\d+) local CPUWorkers",
    ),
    _sig(FindingId.SHM_TOO_SMALL, r"NCCL WARN Error while creating shared memory segment"),
    _sig(FindingId.SHM_TOO_SMALL, r"\bBus error\b"),
    _sig(FindingId.SHM_TOO_SMALL, r"ncclSystemError|NCCL error.*unhandled system error"),
    _sig(
        FindingId.HF_GATED,
        r"Cannot access gated repo for url \S*?://[^/\s]+/(?P<repo>[^/\s]+/[^/\s]+)",
    ),
    _sig(FindingId.HF_GATED, r"Access to model (?P<repo>\S+?) is restricted"),
    _sig(FindingId.HF_GATED, r"\bGatedRepoError\b"),
    _sig(
        FindingId.HF_REPO_NOT_FOUND,
        r"Invalid repository ID or local directory specified: '(?P<repo>[^']+)'",
    ),
    _sig(FindingId.HF_REPO_NOT_FOUND, r"RepositoryNotFoundError|Repository Not Found for url"),
    _sig(FindingId.HF_REPO_NOT_FOUND, r"Invalid username or password"),
    _sig(FindingId.NO_KERNEL_IMAGE, r"no kernel image is available for execution on the device"),
    _sig(
        FindingId.PORT_IN_USE,
        r"bind on address \('?[^,]*'?, (?P<port>\d+)\).*address already in use",
    ),
    _sig(FindingId.PORT_IN_USE, r"Address already in use"),
    _sig(
        FindingId.TOOL_PARSER_INVALID,
        r"--tool-call-parser (?P<parser>\S+) cannot be used with the tokenizer of"
        r" '(?P<model>[^']+)'"
        r"(?:: \w+ could not locate the (?:bot )?token '(?P<token>[^']+)')?",
    ),
    _sig(
        FindingId.TOOL_PARSER_INVALID,
        r"ToolParser could not locate the (?:bot )?token '(?P<token>[^']+)",
    ),
    _sig(FindingId.TOOL_PARSER_INVALID, r"invalid tool call parser: (?P<parser>[^\s(]+)"),
    _sig(FindingId.TOOL_PARSER_INVALID, r"--enable-auto-tool-choice requires --tool-call-parser"),
    _sig(FindingId.ILLEGAL_MEMORY_ACCESS, r"an illegal memory access was encountered"),
    _sig(
        FindingId.NCCL_ERROR,
        r"Watchdog caught collective operation timeout|NCCL (?:error|timeout)"
        r"|ProcessGroupNCCL.*time(?:d )?out|nccl\w*Error",
    ),
)

# What happens to a server over its life (not causes): one entry per kind, matched in order.
# start: a new start of the server; engine_pid: the engine core's pid; ready: it serves;
# death: the engine died (a run-time death when the start was ready); startup_failed: the
# start-up gave up; shutdown: an orderly stop; the rest are counted per start.
MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("start", re.compile(r"non-default args:|vLLM API server version")),
    ("engine_pid", re.compile(r"\(EngineCore\w* pid=(?P<pid>\d+)\).*Initializing a V\d LLM eng")),
    ("ready", re.compile(r"Application startup complete")),
    ("startup_failed", re.compile(r"Engine core initialization failed")),
    (
        "death",
        re.compile(
            r"engine core exited unexpectedly|EngineDeadError|AsyncLLM output_handler failed"
        ),
    ),
    ("shutdown", re.compile(r"Shutting down|Application shutdown complete|Finished server proc")),
    (
        "requests_aborted",
        re.compile(
            r"Error in (?:chat )?completion stream generator|EngineGenerateError"
            r"|Exception in ASGI application|Aborted request \S+ because the engine"
        ),
    ),
    ("preemption", re.compile(r"is preempted by|preempted.*not enough KV cache space", re.I)),
    (
        "context_rejected",
        re.compile(r"maximum context length is (?P<max_model_len>\d+) tokens"),
    ),
    (
        "oom_killer",
        re.compile(
            r"Out of memory: Killed process (?P<pid>\d+) \((?P<name>[^)]*)\)"
            r"|oom-kill:.*task=(?P<task>[^,]*),pid=(?P<task_pid>\d+)"
        ),
    ),
)

# Every cause and marker above holds one of these words, or follows within FOLLOW_LINES a line
# that does (a Hugging Face error's message lines): only such lines are looked at closely.
KEYWORDS: tuple[bytes, ...] = (
    b"ERROR", b"Error", b"error", b"WARNING", b"CRITICAL", b"NCCL", b"Traceback",
    b"of memory", b"Killed process", b"oom-kill", b"startup complete", b"non-default args",
    b"server version", b"Initializing a V", b"Shutting down", b"shutdown complete",
    b"Finished server", b"maximum context length", b"preempted", b"Exception:",
    b"tool-call-parser", b"ToolParser", b"tool call parser",
)  # fmt: skip
FOLLOW_LINES = 3

# A traceback's last line: `module.SomeError: message`, possibly behind a vLLM log prefix.
_EXCEPTION_LINE = re.compile(
    r"^(?:.*?\bERROR\b.*?\]\s*|\(\w+ pid=\d+\)\s*)?"
    r"(?P<type>(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit)):\s*(?P<message>.*)$"
)
_CONSEQUENCES = re.compile(
    r"Engine core initialization failed|EngineCore encountered an issue|EngineDeadError"
    r"|Failed core proc|APIServer process terminated",
    re.IGNORECASE,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _clean(line: str) -> str:
    return redact(_ANSI.sub("", line).rstrip())


def all_causes(log_text: str) -> list[LogCause]:
    """Every line that matches a known signature, in log order."""
    causes = (cause_of_line(raw, n) for n, raw in enumerate(log_text.splitlines(), start=1))
    return [c for c in causes if c is not None]


def cause_of_line(raw: str, number: int) -> LogCause | None:
    """The known signature the line matches, if any."""
    line = _ANSI.sub("", raw)
    for signature in SIGNATURES:
        match = signature.pattern.search(line)
        if match:
            return LogCause(signature.finding_id, _clean(raw), number, signature.detail(match))
    return None


def exception_of_line(raw: str, number: int) -> LogCause | None:
    """A `log_error` cause when the line ends a traceback and is no mere consequence."""
    line = _ANSI.sub("", raw).strip()
    match = _EXCEPTION_LINE.match(line)
    if match and not _CONSEQUENCES.search(line):
        return LogCause(LOG_ERROR, _clean(raw), number, {"exception": match.group("type")})
    return None


def marker_of_line(raw: str, number: int) -> LogEvent | None:
    """The life event the line records (MARKERS)."""
    line = _ANSI.sub("", raw)
    for kind, pattern in MARKERS:
        match = pattern.search(line)
        if match:
            detail = {k: v for k, v in match.groupdict().items() if v is not None}
            return LogEvent(kind, _clean(raw), number, detail)
    return None


def first_exception(log_text: str) -> LogCause | None:
    """The first exception line that is not merely a consequence of an earlier failure."""
    for number, raw in enumerate(log_text.splitlines(), start=1):
        cause = exception_of_line(raw, number)
        if cause is not None:
            return cause
    return None


MERGE_WITHIN_LINES = 10


def root_cause(log_text: str) -> LogCause | None:
    """The first known failure in the log; else its first exception; else None.

    Details missing on the first line (e.g. the repo of a GatedRepoError) are taken from
    matches of the same cause in the lines just after it.
    """
    return merged_root(all_causes(log_text)) or first_exception(log_text)


def merged_root(causes: list[LogCause]) -> LogCause | None:
    """The first cause, with details its neighbours of the same id add."""
    if not causes:
        return None
    first = causes[0]
    detail = dict(first.detail)
    for later in causes[1:]:
        if later.finding_id != first.finding_id:
            continue
        if later.line_number - first.line_number > MERGE_WITHIN_LINES:
            break
        for key, value in later.detail.items():
            detail.setdefault(key, value)
    return LogCause(first.finding_id, first.line, first.line_number, detail)
