"""Incremental Server-Sent Events decoding: bytes in, completed `data` payloads out.

Only what OpenAI-style streams use: `data:` fields (several lines join with "\\n"), events
ended by a blank line, `\\n`, `\\r\\n` or `\\r` line ends; comments and other fields are
skipped. Work per call is a few byte operations: JSON is left to the caller.
"""

from __future__ import annotations

DONE = b"[DONE]"


class SSEDecoder:
    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] = []
        self._skip_lf = False  # the last chunk ended in \r: a leading \n ends no new line

    def feed(self, chunk: bytes) -> list[bytes]:
        """The payloads of the events this chunk completes (possibly none)."""
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = chunk.endswith(b"\r")
        buf = self._pending + chunk if self._pending else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._pending = lines.pop()
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
        return events

    @property
    def leftover(self) -> bytes:
        """Bytes of an event the stream never finished (empty after a clean end)."""
        parts = [*self._data, self._pending] if self._data else [self._pending]
        return b"\n".join(p for p in parts if p)
