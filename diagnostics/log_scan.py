"""Read a server log at grep speed, memory bounded, and keep only the lines that matter.

    scan_file(path, sink) / scan_stream(binary_file, source, sink) / scan_text(text, sink)
        -> LogScan; sink(line_number, line) gets each line that matters, in order

Only lines holding one of log_signatures.KEYWORDS (and the FOLLOW_LINES after them) are
decoded and matched: each keyword is found with bytes.find, which runs at memory speed, so a
healthy line costs nothing in Python. At most MAX_SCAN_BYTES are read: a bigger file is read
from its end (the newest start-up and death matter most), a stream (stdin, docker, journal)
is read up to that bound. Lines are cut at MAX_LINE_BYTES, so a 100 MB line or `/dev/zero`
cannot fill memory; a binary file is read no further than its first block. LogScan says
what was read and what was not.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from picoclaw_vllm.vllm_api.log_signatures import FOLLOW_LINES, KEYWORDS

MAX_SCAN_BYTES = 512 * 1024 * 1024
CHUNK_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024
BINARY_PROBE_BYTES = 64 * 1024
MIB = 1024 * 1024


@dataclass
class LogScan:
    """The lines of a log that hold a keyword, numbered, and what was read of it."""

    source: str
    line_count: int = 0
    bytes_read: int = 0
    total_bytes: int | None = None  # the file's size, when it has one
    skipped_head_bytes: int = 0  # a big file is read from its end
    stopped_early: bool = False  # a stream longer than MAX_SCAN_BYTES
    binary: bool = False
    long_lines: int = 0  # lines cut at MAX_LINE_BYTES

    @property
    def nothing_read(self) -> bool:
        return self.binary or self.line_count == 0

    def coverage(self) -> str | None:
        """Why not all of the log was read, or None."""
        if self.binary:
            return "it is not a text log (binary data): nothing was read"
        if self.line_count == 0:
            return "it is empty: nothing was read"
        if self.skipped_head_bytes:
            return (
                f"only its last {self.bytes_read / MIB:.0f} MiB of "
                f"{(self.total_bytes or 0) / MIB:.0f} MiB were read (line numbers count from there)"
            )
        if self.stopped_early:
            return f"reading stopped after {self.bytes_read / MIB:.0f} MiB"
        return None


LineSink = Callable[[int, str], None]


class _Scanner:
    def __init__(self, scan: LogScan, sink: LineSink) -> None:
        self.scan = scan
        self.sink = sink
        self.carry = b""
        self.dropping = False  # inside a line already cut at MAX_LINE_BYTES
        self.follow = 0  # lines still to keep after a keyword line of the previous block

    def feed(self, chunk: bytes, first: bool) -> bool:
        """Take the next chunk; False when the log is binary and reading should stop."""
        if first and chunk[:BINARY_PROBE_BYTES].count(b"\0") > BINARY_PROBE_BYTES // 100:
            self.scan.binary = True
            return False
        self.scan.bytes_read += len(chunk)
        data = self.carry + chunk if self.carry else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._long_tail(data)
            return True
        start = 0
        if self.dropping:  # the rest of a cut line (counted when it was cut)
            start = data.find(b"\n") + 1
            self.dropping = False
        self._block(data, start, cut + 1)
        self.carry = b""
        self._long_tail(data[cut + 1 :])
        return True

    def _long_tail(self, rest: bytes) -> None:
        if self.dropping:
            return
        if len(rest) <= MAX_LINE_BYTES:
            self.carry = rest
            return
        # a line longer than any log line: keep its head as the line, drop the rest
        self._block(rest[:MAX_LINE_BYTES] + b"\n", 0, MAX_LINE_BYTES + 1, count_line=False)
        self.scan.long_lines += 1
        self.carry = b""
        self.dropping = True

    def finish(self) -> None:
        if self.carry:
            self._block(self.carry + b"\n", 0, len(self.carry) + 1)
        self.carry = b""

    def _block(self, data: bytes, begin: int, end: int, count_line: bool = True) -> None:
        """Lines data[begin:end] (each ending in a newline): keep those with a keyword."""
        starts: set[int] = set()
        for keyword in KEYWORDS:
            pos = data.find(keyword, begin, end)
            while pos >= 0:
                line_start = data.rfind(b"\n", begin, pos) + 1 or begin
                starts.add(max(line_start, begin))
                nxt = data.find(b"\n", pos, end)
                pos = data.find(keyword, nxt + 1, end) if nxt >= 0 else -1
        base = self.scan.line_count
        at, number = begin, base
        pending = self.follow
        keep = sorted(starts)
        extra: list[int] = []
        # lines after a keyword line (a Hugging Face message under its error)
        for s in keep:
            pos = s
            for _ in range(FOLLOW_LINES):
                nxt = data.find(b"\n", pos, end)
                if nxt < 0 or nxt + 1 >= end:
                    break
                pos = nxt + 1
                extra.append(pos)
        pos = begin
        while pending and pos < end:
            extra.append(pos)
            pending -= 1
            pos = data.find(b"\n", pos, end) + 1 or end
        for s in sorted(starts.union(extra)):
            number += data.count(b"\n", at, s)
            at = s
            stop = data.find(b"\n", s, end)
            raw = data[s : min(stop, s + MAX_LINE_BYTES)]
            self.sink(number + 1, raw.decode("utf-8", "replace"))
        self.follow = self._follow_after(data, keep, end)
        if count_line:
            self.scan.line_count = base + data.count(b"\n", begin, end)
        else:
            self.scan.line_count = base + 1

    @staticmethod
    def _follow_after(data: bytes, keep: list[int], end: int) -> int:
        """How many lines of the next block follow this block's last keyword line."""
        if not keep:
            return 0
        return max(0, FOLLOW_LINES - data.count(b"\n", keep[-1], end) + 1)


def _chunks(f: BinaryIO, limit: int) -> Iterator[bytes]:
    left = limit
    while left > 0:
        chunk = f.read(min(CHUNK_BYTES, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def scan_stream(f: BinaryIO, source: str, sink: LineSink, limit: int = MAX_SCAN_BYTES) -> LogScan:
    """Read f up to limit bytes (stdin, a pipe, a device); sink gets each kept line."""
    scan = LogScan(source)
    scanner = _Scanner(scan, sink)
    for i, chunk in enumerate(_chunks(f, limit)):
        if not scanner.feed(chunk, first=i == 0):
            return scan
    if scan.bytes_read >= limit and f.read(1):
        scan.stopped_early = True
    scanner.finish()
    return scan


def scan_file(
    path: Path, sink: LineSink, source: str | None = None, limit: int = MAX_SCAN_BYTES
) -> LogScan:
    """Read a log file; of a regular file bigger than limit, its last limit bytes."""
    with path.open("rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return scan_stream(f, source or str(path), sink, limit)
        skip = max(0, info.st_size - limit)
        if skip:
            f.seek(skip - 1)
            f.readline()  # the line cut by the seek is not a line
            skip = f.tell()
        scan = scan_stream(f, source or str(path), sink, limit)
        scan.total_bytes = info.st_size
        scan.skipped_head_bytes = skip
        scan.stopped_early = False
        return scan


def scan_text(text: str, sink: LineSink, source: str = "log") -> LogScan:
    return scan_stream(io.BytesIO(text.encode("utf-8", "replace")), source, sink)
