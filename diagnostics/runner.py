"""Run a diagnosis: warm the probes concurrently, run the checks in order, collect results.

Public API (used by `picoclaw-vllm diagnose` and by the acceptance command)::

    from diagnostics.options import DiagnoseOptions
    from diagnostics.runner import diagnose, Diagnosis

    diagnosis = diagnose(DiagnoseOptions(api_base="http://127.0.0.1:8000/v1",
                                         model="vllm/tiny-llama", api_key=None,
                                         timeout_s=10.0, log_text=None, config_path=None))
    diagnosis.findings            # list[Finding]: id, severity, message, evidence, remedy
    diagnosis.results             # list[CheckResult], in declared order
    diagnosis.to_json_dict()      # {"schema": "picoclaw-vllm/diagnosis/v1", ...}; never the key
    diagnosis.exit_code(strict=False)  # 0 clean, 1 failure (or warning when strict), 2 config

`diagnose` raises picoclaw_vllm.errors.UsageError only for a --config path that does not
exist; everything else, including a crashing check, ends up in the Diagnosis.
"""

from __future__ import annotations

import contextlib
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from diagnostics.checks import (
    config_checks,
    gpu,
    host,
    hub_checks,
    performance,
    picoclaw_request,
    prefix_cache,
    server,
    tool_calling,
)
from diagnostics.checks import server_log as server_log_checks
from diagnostics.checks.base import Check
from diagnostics.deadline import DeadlineExceeded, NotJudged
from diagnostics.facts import Facts, Target
from diagnostics.findings import Finding, Outcome, Severity, Status
from diagnostics.options import DiagnoseOptions
from picoclaw_vllm import __version__
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.picoclaw.config import ConfigProblem
from picoclaw_vllm.redact import redact

SCHEMA = "picoclaw-vllm/diagnosis/v1"

CHECKS: tuple[Check, ...] = (
    *config_checks.CHECKS,
    *server.CHECKS,
    *picoclaw_request.MODEL_AND_CONTEXT,
    tool_calling.CHECKS[0],
    *picoclaw_request.COMPLETION,
    *tool_calling.CHECKS[1:],
    *performance.CHECKS,
    *prefix_cache.CHECKS,
    *host.CHECKS,
    *server_log_checks.CHECKS,
    *gpu.CHECKS,
    *hub_checks.CHECKS,
)
CHECKS_BY_NAME = {c.name: c for c in CHECKS}
GRACE_S = 0.5  # how long past the deadline a check may take to write down what it saw
SERVER_CHECKS = {
    *("connection", "api_base", "health", "auth", "model", "context"),
    *("tools", "completion", "tool_call", "tool_call_auto", "tool_result", "prefix_cache"),
}


@dataclass
class CheckResult:
    check: Check
    outcome: Outcome
    duration_s: float = 0.0

    @property
    def status(self) -> Status:
        return self.outcome.status

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.check.name,
            "title": self.check.title,
            "group": self.check.group,
            "status": str(self.status),
            "skip_reason": self.outcome.skipped,
            "duration_s": round(self.duration_s, 3),
            "finding_ids": [str(f.id) for f in self.outcome.findings],
            "notes": [redact(n) for n in self.outcome.notes],
        }


@dataclass
class Diagnosis:
    target: Target | None
    results: list[CheckResult]
    vllm_version: str | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.outcome.findings]

    def finding_ids(self) -> list[FindingId]:
        return [f.id for f in self.findings]

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def status(self) -> Status:
        for status in (Status.FAIL, Status.WARN):
            if self.count(status):
                return status
        return Status.PASS

    def unjudged(self) -> list[str]:
        """Checks that got no answer in time: a diagnosis with any never exits 0. A check
        that got its answer and could not tell from it (the model chose not to call a tool)
        is skipped too, but the server did answer."""
        return [r.check.name for r in self.results if r.outcome.unanswered]

    def exit_code(self, strict: bool = False) -> int:
        if FindingId.CONFIG_INVALID in self.finding_ids():
            return 2
        if self.status == Status.FAIL or (strict and self.status == Status.WARN):
            return 1
        return 1 if self.unjudged() else 0

    def to_json_dict(self) -> dict[str, Any]:
        t = self.target
        target: dict[str, Any] = {}
        if t is not None:
            target = {
                "api_base": t.api_base,
                "model": t.model,
                "model_configured": t.model_configured,
                "api_key_set": bool(t.api_key),
                "api_key_source": t.key_source,
                "config_path": t.config.path,
                "config_format": t.config.format,
                "max_tokens": t.max_tokens,
            }
        return {
            "schema": SCHEMA,
            "tool": {"name": "picoclaw-vllm", "version": __version__},
            "vllm": {"version": self.vllm_version},
            "platform": {"python": platform.python_version(), "system": platform.platform()},
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "duration_s": round(self.duration_s, 3),
            "status": str(self.status),
            "target": target,
            "summary": {str(s): self.count(s) for s in Status},
            "not_judged": self.unjudged(),
            "checks": [r.to_dict() for r in self.results],
            "findings": [{k: redact(v) for k, v in f.to_dict().items()} for f in self.findings],
        }


def selected(names: tuple[str, ...]) -> list[Check]:
    """The named checks and everything they require, in declared order."""
    if not names:
        return list(CHECKS)
    wanted: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(CHECKS_BY_NAME[name].requires)
    return [c for c in CHECKS if c.name in wanted]


def _warm(facts: Facts, checks: list[Check]) -> None:
    """Start the independent probes at once; each check later reads them for free."""
    names = {c.name for c in checks}
    probes: list[Callable[[], object]] = [facts.processes, facts.gpus]
    if "host" in names:
        probes.append(facts.host_load)
    config_ok = not isinstance(facts.config(), ConfigProblem)
    if config_ok and names & SERVER_CHECKS:
        probes += [facts.health, facts.version, facts.models, facts.models_v1]
        probes += [facts.metrics_before, facts.prompt_size]
        probes.append(lambda: _picoclaw_requests(facts, names))
    if config_ok and "hub" in names and facts.options.check_hub:
        probes.append(facts.hub)
    threads = [_daemon(p) for p in probes]
    for t in threads:
        t.join(timeout=_wait_s(facts))


def _wait_s(facts: Facts) -> float:
    """How long to wait for a probe or a check: to the deadline and its grace, and a moment
    (that a check of nothing but local facts needs) once those have passed."""
    return max(0.05, facts.deadline.remaining() + GRACE_S)


def _daemon(work: Callable[[], object]) -> threading.Thread:
    """A thread the interpreter does not wait for at exit; what it raises is dropped (a probe
    that raised here is run again, and judged, inside its check)."""

    def run() -> None:
        with contextlib.suppress(Exception):
            work()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _picoclaw_requests(facts: Facts, names: set[str]) -> None:
    """One full-size prefill first; the requests after it reuse its prefix (system prompt and
    tools) from vLLM's prefix cache instead of computing it again, concurrently. The same
    request once more, and /metrics after it, tell whether they did (prefix_cache)."""
    facts.chat()
    facts.chat_stream()
    if "prefix_cache" in names:
        facts.chat_again()
        facts.metrics_prefix()
    if "tool_call" in names:
        facts.tool_call()
    if "tool_call_auto" in names:
        facts.auto_call()
    if "tool_result" in names:
        facts.tool_result_turn()


def _run_one(check: Check, facts: Facts, done: dict[str, CheckResult]) -> CheckResult:
    for required in check.requires:
        prior = done.get(required)
        if prior is not None and (prior.status in (Status.FAIL, Status.SKIP) or prior.outcome.halt):
            return CheckResult(check, Outcome.skip(f"needs '{prior.check.title}' to pass"))
    start = time.monotonic()
    result: list[CheckResult] = []
    thread = threading.Thread(
        target=lambda: result.append(_judge(check, facts, start)), daemon=True
    )
    thread.start()
    thread.join(timeout=_wait_s(facts))
    if result:
        return result[0]
    return CheckResult(check, _out_of_time(facts), time.monotonic() - start)


def _out_of_time(facts: Facts) -> Outcome:
    return Outcome.unanswered_skip(
        f"not finished within the diagnosis's {facts.deadline.budget_s:g} s deadline (--deadline)"
    )


def _judge(check: Check, facts: Facts, start: float) -> CheckResult:
    try:
        outcome = check.run(facts)
    except DeadlineExceeded:
        outcome = _out_of_time(facts)
    except NotJudged as e:
        outcome = Outcome.unanswered_skip(str(e))
    except Exception as e:  # a crashing check is a result, never a traceback
        outcome = Outcome.of(
            Finding(
                FindingId.CHECK_CRASHED,
                Severity.FAIL,
                f"check '{check.name}' crashed: {type(e).__name__}: {redact(str(e))[:200]}",
                evidence=f"{type(e).__name__} in {check.run.__module__}.{check.run.__name__}",
                remedy="report it with the output of: picoclaw-vllm diagnose -v --json",
            )
        )
    return CheckResult(check, outcome, time.monotonic() - start)


def _version(facts: Facts) -> object:
    try:
        return facts.version().json()
    except DeadlineExceeded:
        return None


def diagnose(options: DiagnoseOptions) -> Diagnosis:
    """Within options.deadline_s (default 3 x timeout_s) plus about a second, whatever the
    server does; every thread it leaves behind is a daemon, cut off at the deadline."""
    start = time.monotonic()
    facts = Facts(options)
    checks = selected(options.checks)
    version = None
    try:
        facts.config()
        target = facts.target()
        _warm(facts, checks)
        done: dict[str, CheckResult] = {}
        for check in checks:
            done[check.name] = _run_one(check, facts, done)
        if "connection" in done and done["connection"].status != Status.SKIP:
            version = _version(facts)
    finally:
        facts.close()
    return Diagnosis(
        target=target,
        results=list(done.values()),
        vllm_version=_version_text(version),
        duration_s=time.monotonic() - start,
    )


def _version_text(answer: object) -> str | None:
    """vLLM's version from GET /version, when the answer has one (a string, short)."""
    value = answer.get("version") if isinstance(answer, dict) else None
    return value[:40] if isinstance(value, str) and value.strip() else None
