"""A server log as the starts of the server it records, each with how it ended.

    read_server_log(path | None, text | None, source) -> ServerLog   (see log_scan for bounds)

A start begins at vLLM's `non-default args:` line. It is *ready* at `Application startup
complete`; it *died* when, after that, the engine died (`engine core exited unexpectedly`,
`EngineDeadError`); it *failed to start* when the engine died or gave up before it was
ready; it *stopped* at an orderly shutdown. Each start keeps its first and last causes
(log_signatures.SIGNATURES and exception lines) and counts its run-time events (requests
aborted, preemptions, context-length rejections, OOM-killer lines), so memory stays bounded
however long the log.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from diagnostics.log_scan import LogScan, scan_file, scan_stream, scan_text
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.vllm_api.log_signatures import (
    LogCause,
    LogEvent,
    cause_of_line,
    exception_of_line,
    marker_of_line,
    merged_root,
)

KEPT = 20  # first and last causes kept per start
SAME_START_LINES = 50  # a second start marker this close belongs to the same start
COUNTED = ("requests_aborted", "preemption", "context_rejected", "oom_killer")
# a cause printed up to this many lines after the death line (another process's output
# interleaves) still explains it
CAUSE_AFTER_DEATH_LINES = 60


@dataclass
class Start:
    number: int
    line: int  # 0: the log begins after this start
    engine_pid: str | None = None
    ready: LogEvent | None = None
    death: LogEvent | None = None
    startup_failed: LogEvent | None = None
    shutdown: LogEvent | None = None
    first_causes: list[LogCause] = field(default_factory=list)
    last_causes: deque[LogCause] = field(default_factory=lambda: deque(maxlen=KEPT))
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, LogEvent] = field(default_factory=dict)
    last_line: int = 0

    def add_cause(self, cause: LogCause) -> None:
        if len(self.first_causes) < KEPT:
            self.first_causes.append(cause)
        else:
            self.last_causes.append(cause)

    def causes(self) -> list[LogCause]:
        return [*self.first_causes, *self.last_causes]

    @property
    def outcome(self) -> str:
        """running, starting, died, startup_failed or stopped."""
        if self.ready is not None and self.death is not None:
            return "died"
        if self.startup_failed is not None or (self.ready is None and self.death is not None):
            return "startup_failed"
        if self.shutdown is not None:
            return "stopped"
        if self.ready is None and self.known_causes():
            return "startup_failed"
        return "running" if self.ready is not None else "starting"

    def known_causes(self) -> list[LogCause]:
        return [c for c in self.causes() if c.finding_id != FindingId.LOG_ERROR]

    def startup_cause(self) -> LogCause | None:
        """The first known failure of the start-up, else its first exception."""
        limit = self.ready.line_number if self.ready else None
        causes = [c for c in self.causes() if limit is None or c.line_number < limit]
        known = [c for c in causes if c.finding_id != FindingId.LOG_ERROR]
        return merged_root(known) or (causes[0] if causes else None)

    def death_cause(self) -> LogCause | None:
        """The failure just before the run-time death (the last one), or None: a signal."""
        if self.death is None or self.ready is None:
            return None
        begin = self.ready.line_number
        end = self.death.line_number + CAUSE_AFTER_DEATH_LINES
        window = [c for c in self.causes() if begin < c.line_number <= end]
        before = [c for c in window if c.line_number <= self.death.line_number]
        known = [c for c in window if c.finding_id != FindingId.LOG_ERROR]
        if known:
            before_known = [c for c in known if c.line_number <= self.death.line_number]
            return before_known[-1] if before_known else known[0]
        return before[-1] if before else (window[0] if window else None)

    def where(self, total: int) -> str:
        at = f"at line {self.line}" if self.line else "begun before the part read"
        return f"start {self.number} of {total} {at}"


@dataclass
class ServerLog:
    scan: LogScan
    starts: list[Start]

    @property
    def newest(self) -> Start | None:
        return self.starts[-1] if self.starts else None

    def root_cause(self) -> LogCause | None:
        newest = self.newest
        return newest.startup_cause() if newest is not None else None


_DIGITS = re.compile(r"\d+")
_QUIET_CACHE_MAX = 10_000


class _Builder:
    def __init__(self) -> None:
        self.starts: list[Start] = []
        self.quiet: set[str] = set()  # shapes of lines that matched nothing

    def current(self, number: int) -> Start:
        if not self.starts:
            self.starts.append(Start(1, 0))
        start = self.starts[-1]
        start.last_line = number
        return start

    def line(self, number: int, raw: str) -> None:
        shape = _DIGITS.sub("0", raw[:300])
        if shape in self.quiet:
            return
        marker = marker_of_line(raw, number)
        if marker is not None:
            self.marker(marker, number)
            if marker.kind not in COUNTED:
                return
        cause = cause_of_line(raw, number) or exception_of_line(raw, number)
        if cause is not None:
            self.current(number).add_cause(cause)
        elif marker is None and len(self.quiet) < _QUIET_CACHE_MAX:
            self.quiet.add(shape)

    def marker(self, event: LogEvent, number: int) -> None:
        kind = event.kind
        if kind == "start":
            last = self.starts[-1] if self.starts else None
            if last is None or last.ready is not None or number - last.line > SAME_START_LINES:
                self.starts.append(Start(len(self.starts) + 1, number, last_line=number))
            return
        start = self.current(number)
        if kind == "engine_pid":
            start.engine_pid = event.detail.get("pid")
        elif kind in COUNTED:
            start.counts[kind] += 1
            start.examples.setdefault(kind, event)
            if kind == "oom_killer" and "pid" in event.detail:  # the "Killed process" line
                start.examples[kind] = event
        elif getattr(start, kind) is None:
            setattr(start, kind, event)


def read_server_log(
    path: Path | None = None,
    text: str | None = None,
    source: str = "log",
    stream: BinaryIO | None = None,
) -> ServerLog:
    builder = _Builder()
    if path is not None:
        scan = scan_file(path, builder.line, source)
    elif stream is not None:
        scan = scan_stream(stream, source, builder.line)
    else:
        scan = scan_text(text or "", builder.line, source)
    return ServerLog(scan, builder.starts)
