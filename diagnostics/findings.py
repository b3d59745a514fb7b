"""What a check returns: findings (what is wrong, the evidence, the fix) and its status."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from picoclaw_vllm.finding_ids import FindingId


class Severity(StrEnum):
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Finding:
    id: FindingId
    severity: Severity
    message: str
    evidence: str = ""
    remedy: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "id": str(self.id),
            "severity": str(self.severity),
            "message": self.message,
            "evidence": self.evidence,
            "remedy": self.remedy,
        }


@dataclass
class Outcome:
    """A check's verdict: findings, notes shown with -v, or why it did not run."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    halt: bool = False  # dependents skip even though this is only a warning
    unanswered: bool = False  # skipped because an answer or a measurement did not come in time

    @classmethod
    def skip(cls, reason: str) -> Outcome:
        return cls(skipped=reason)

    @classmethod
    def unanswered_skip(cls, reason: str) -> Outcome:
        """Not judged for want of time: a diagnosis with any never exits 0."""
        return cls(skipped=reason, unanswered=True)

    @classmethod
    def ok(cls, *notes: str) -> Outcome:
        return cls(notes=list(notes))

    @classmethod
    def of(cls, *findings: Finding, notes: list[str] | None = None) -> Outcome:
        return cls(findings=list(findings), notes=notes or [])

    @property
    def status(self) -> Status:
        if self.skipped is not None:
            return Status.SKIP
        severities = {f.severity for f in self.findings}
        if Severity.FAIL in severities:
            return Status.FAIL
        if Severity.WARN in severities:
            return Status.WARN
        return Status.PASS
