"""The server log: each start of the server and how it ended, reduced to root causes.

The newest start is judged: a start-up that failed gives its first known failure; an
engine that died after it was ready gives `engine_dead` with the failure just before the
death, else "killed by a signal" and the kernel's OOM-killer line when one can be read; a
log that ends in a shutdown says so. Run-time events are counted. An earlier start's death
is reported too when the server was started again since.
"""

from __future__ import annotations

from dataclasses import replace

from diagnostics.checks.base import Check
from diagnostics.facts import Facts
from diagnostics.findings import Finding, Outcome, Severity
from diagnostics.log_explanations import EXPLAIN, RUNTIME_REMEDY
from diagnostics.remedies import (
    HOST_RAM_REMEDY,
    RESTART_REMEDY,
    SIGNAL_REMEDY,
)
from diagnostics.server_runs import ServerLog, Start
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.nvml import other_processes
from picoclaw_vllm.vllm_api.log_signatures import LogCause, LogEvent

PREEMPTIONS_WARN = 2


def quote(source: str, at: LogCause | LogEvent) -> str:
    return f"{source} line {at.line_number}: {at.line.strip()[:400]}"


def finding_for(cause: LogCause, source: str = "log", where: str = "") -> Finding:
    message, remedy = EXPLAIN[cause.finding_id](cause.detail)
    return Finding(
        cause.finding_id,
        Severity.FAIL,
        message,
        evidence=quote(source, cause) + (f" ({where})" if where else ""),
        remedy=remedy,
    )


def check_server_log(facts: Facts) -> Outcome:
    log = facts.server_log()
    if log is None:
        return Outcome.skip("no server log given (--log FILE, --docker NAME, --journal UNIT)")
    source = log.scan.source
    coverage = log.scan.coverage()
    if log.scan.nothing_read or log.newest is None:
        return Outcome.of(
            Finding(
                FindingId.LOG_UNREADABLE,
                Severity.WARN,
                f"the server log {source} was not read: {coverage}",
                evidence=f"{source}: {log.scan.bytes_read} bytes, {log.scan.line_count} lines",
                remedy="give the vLLM server's own log: --log FILE (what vLLM printed), "
                "--docker CONTAINER or --journal UNIT",
            )
        )
    newest = log.newest
    total = len(log.starts)
    notes = [_summary(log)] + [_story(s, total) for s in log.starts[-5:]]
    findings = _judge(facts, log, newest, total)
    findings += _counted(newest, total, source)
    earlier = _earlier_death(log, total) if newest.outcome in ("running", "starting") else None
    if earlier is not None:
        findings.append(earlier)
    if not findings:
        return Outcome.ok(*notes)
    return Outcome.of(*findings, notes=notes)


def _summary(log: ServerLog) -> str:
    scan = log.scan
    text = f"{scan.line_count} log lines ({scan.bytes_read / 1e6:.1f} MB)"
    text += f", {len(log.starts)} start(s)"
    coverage = scan.coverage()
    if coverage:
        text += f"; {coverage}"
    if scan.long_lines:
        text += f"; {scan.long_lines} line(s) over 64 KiB cut"
    return text


def _story(start: Start, total: int) -> str:
    parts = [start.where(total)]
    if start.ready is not None:
        parts.append(f"ready at line {start.ready.line_number}")
    if start.death is not None:
        parts.append(f"engine died at line {start.death.line_number}")
    if start.shutdown is not None:
        parts.append(f"shutdown at line {start.shutdown.line_number}")
    parts.append(start.outcome.replace("_", " "))
    return ", ".join(parts)


def _judge(facts: Facts, log: ServerLog, start: Start, total: int) -> list[Finding]:
    source = log.scan.source
    where = start.where(total)
    outcome = start.outcome
    if outcome == "died":
        return _death(facts, source, start, where)
    if outcome == "startup_failed":
        cause = start.startup_cause()
        if cause is None:
            event = start.startup_failed or start.death
            assert event is not None
            return [
                Finding(
                    FindingId.ENGINE_DEAD,
                    Severity.FAIL,
                    f"the engine died during start-up with no error of its own ({where})",
                    evidence=quote(source, event),
                    remedy=SIGNAL_REMEDY,
                )
            ]
        finding = finding_for(cause, source, f"start-up of {where}")
        if cause.finding_id == FindingId.GPU_MEMORY_IN_USE:
            finding = _with_gpu_holders(facts, finding)
        return [finding]
    if outcome == "stopped" and start.shutdown is not None:
        return [
            Finding(
                FindingId.SERVER_STOPPED,
                Severity.WARN,
                f"the log ends with the server shutting down ({where}): it is not running",
                evidence=quote(source, start.shutdown),
                remedy="start vLLM again; if nobody stopped it on purpose, ask its supervisor "
                "(systemctl status UNIT, docker inspect CONTAINER) who did",
            )
        ]
    return []


def _death(facts: Facts, source: str, start: Start, where: str) -> list[Finding]:
    death, ready = start.death, start.ready
    assert death is not None and ready is not None
    ran = f"{where}, ready at line {ready.line_number}, died at line {death.line_number}"
    evidence = quote(source, death)
    cause = start.death_cause()
    findings = []
    if cause is not None and cause.finding_id == FindingId.LOG_ERROR:
        exception = cause.detail.get("exception", "an exception")
        message = f"the engine died at run time after a Python exception ({exception}) in the "
        message += f"engine / model runner ({ran})"
        remedy = RESTART_REMEDY
        evidence = f"cause: {quote(source, cause)}; death: {evidence}"
    elif cause is not None:
        message, remedy = EXPLAIN[cause.finding_id](cause.detail)
        remedy = RUNTIME_REMEDY.get(cause.finding_id, remedy)
        message = f"the engine died at run time after {message} [{cause.finding_id}] ({ran})"
        evidence = f"cause: {quote(source, cause)}; death: {evidence}"
    else:
        message = (
            f"the engine was killed by a signal, with no error of its own ({ran}); on a real "
            "host most often the kernel's OOM killer"
        )
        remedy = SIGNAL_REMEDY
        killed = _oom_killer_line(facts, start)
        if killed is not None:
            message = f"the kernel's OOM killer killed the engine ({ran}): host RAM ran out"
            remedy = HOST_RAM_REMEDY
            findings.append(
                Finding(FindingId.OOM_KILLED, Severity.FAIL,
                        "the kernel's OOM killer killed vLLM's engine: the host ran out of RAM",
                        evidence=killed, remedy=HOST_RAM_REMEDY)
            )  # fmt: skip
        else:
            evidence += f"; {_kernel_note(facts, start)}"
    findings.insert(0, Finding(FindingId.ENGINE_DEAD, Severity.FAIL, message, evidence, remedy))
    return findings


def _oom_killer_line(facts: Facts, start: Start) -> str | None:
    in_log = start.examples.get("oom_killer")
    if in_log is not None:
        return f"log line {in_log.line_number}: {in_log.line.strip()[:300]}"
    kernel = facts.maybe(facts.kernel_log)
    line = kernel.killed(start.engine_pid) if kernel else None
    return f"{kernel.source}: {line[:300]}" if kernel and line else None


def _kernel_note(facts: Facts, start: Start) -> str:
    kernel = facts.maybe(facts.kernel_log)
    if kernel is None:
        return "the kernel log was not read in time (see host_starved)"
    if kernel.source is None:
        return f"the kernel log could not be read ({'; '.join(kernel.errors)})"
    pid = f" for pid {start.engine_pid}" if start.engine_pid else ""
    return f"the kernel log ({kernel.source}) holds no OOM-killer line{pid}"


def _counted(start: Start, total: int, source: str) -> list[Finding]:
    where = start.where(total)
    found = []
    n = start.counts
    if n["requests_aborted"]:
        ex = start.examples["requests_aborted"]
        why = "because the engine died" if start.death else "with an engine error"
        found.append(
            Finding(FindingId.REQUESTS_ABORTED, Severity.WARN,
                    f"{n['requests_aborted']} request(s) failed {why} ({where})",
                    evidence=f"first: {quote(source, ex)}",
                    remedy="their clients got errors (500 or a broken stream): retry them once "
                    "the server is healthy; the cause is the engine's failure")
        )  # fmt: skip
    if n["preemption"] >= PREEMPTIONS_WARN:
        ex = start.examples["preemption"]
        found.append(
            Finding(FindingId.PREEMPTIONS, Severity.WARN,
                    f"{n['preemption']} preemption warnings: the KV cache ran full and requests "
                    f"were evicted and recomputed ({where})",
                    evidence=f"first: {quote(source, ex)}",
                    remedy="raise --gpu-memory-utilization, lower --max-num-seqs or "
                    "--max-model-len, or add GPUs (--tensor-parallel-size)")
        )  # fmt: skip
    if n["context_rejected"]:
        ex = start.examples["context_rejected"]
        limit = ex.detail.get("max_model_len", "its max_model_len")
        found.append(
            Finding(FindingId.CONTEXT_REJECTED, Severity.WARN,
                    f"{n['context_rejected']} request(s) rejected as longer than the model's "
                    f"context ({limit} tokens) ({where})",
                    evidence=f"first: {quote(source, ex)}",
                    remedy=f"raise --max-model-len above {limit} if memory allows, or make the "
                    "client send less: PicoClaw's max_tokens, a shorter history or fewer tools")
        )  # fmt: skip
    return found


def _earlier_death(log: ServerLog, total: int) -> Finding | None:
    """The newest earlier start that died or failed, when the server was started again."""
    for start in reversed(log.starts[:-1]):
        if start.outcome not in ("died", "startup_failed"):
            continue
        cause = start.death_cause() if start.outcome == "died" else start.startup_cause()
        event = cause or start.death or start.startup_failed
        if event is None:
            continue
        what = "died at run time" if start.outcome == "died" else "failed to start"
        named = f" after {cause.finding_id}" if cause else " (killed by a signal)"
        return Finding(
            FindingId.ENGINE_DEAD,
            Severity.WARN,
            f"an earlier start {what}{named}: {start.where(total)}; the newest start "
            f"(line {log.starts[-1].line}) runs",
            evidence=quote(log.scan.source, event),
            remedy="if it dies again, read the lines before its death: "
            + (RUNTIME_REMEDY.get(cause.finding_id, SIGNAL_REMEDY) if cause else SIGNAL_REMEDY),
        )
    return None


def _with_gpu_holders(facts: Facts, finding: Finding) -> Finding:
    """Name the processes NVML sees holding GPU memory, when it sees any."""
    holders = [
        f"GPU {gpu.index}: pid {p.pid} {p.name} ({p.used_mib / 1024:.1f} GiB)"
        for gpu in getattr(facts.maybe(facts.gpus), "gpus", [])
        for p in other_processes(gpu)
    ]
    if not holders:
        return finding
    return replace(
        finding,
        evidence=f"{finding.evidence}; NVML: held by {', '.join(holders)}",
        remedy=f"stop {holders[0].split(': ', 1)[1]}, or: {finding.remedy}",
    )


FINDING_IDS = (
    *EXPLAIN, FindingId.ENGINE_DEAD, FindingId.OOM_KILLED, FindingId.REQUESTS_ABORTED,
    FindingId.PREEMPTIONS, FindingId.CONTEXT_REJECTED, FindingId.SERVER_STOPPED,
    FindingId.LOG_UNREADABLE,
)  # fmt: skip
CHECKS = (Check("server_log", "Server log", "Server log", check_server_log, (), FINDING_IDS),)
