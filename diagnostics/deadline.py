"""One time budget for a whole diagnosis, shared by every probe.

Probing ends EXIT_RESERVE_S before the budget, for writing the diagnosis and exiting.

Requests that may wait in vLLM's queue (chat completions) stop `reserve_s` before the end, so
that /metrics can still be read once more for the evidence; everything stops at the end.
At the cutoff, in-flight streams have their sockets shut down: vLLM sees the client leave
and aborts the request, and no thread is left reading a stream that never ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import psutil

# no request is sent with less than this left: it could not answer anyway
MIN_REQUEST_S = 0.05
TIMEOUT_FACTOR = 3  # the default budget: 3 x --timeout
EXIT_RESERVE_S = 1.0


def default_budget(timeout_s: float) -> float:
    return TIMEOUT_FACTOR * timeout_s


def process_age() -> float:
    """Seconds since this process started (its start-up so far, when called early)."""
    try:
        return max(0.0, time.time() - psutil.Process().create_time())
    except psutil.Error:
        return 0.0


def process_start() -> float:
    """When this process started, on the time.monotonic() clock: the CLI's budget counts
    from there, its own start-up included. A start-up that ate the budget (53 s was measured
    on two cores under a full CPU engine) ends in the watchdog's one line, never in probes
    with no time that would call a live server unreachable."""
    return time.monotonic() - process_age()


class DeadlineExceeded(Exception):
    """A probe or check could not finish within the diagnosis's budget."""


class NotJudged(Exception):
    """A check needs an answer that did not come in time: the runner reports it as skipped
    with this reason ("not judged: ..."), never as a failure of something else."""


class Deadline:
    def __init__(
        self, budget_s: float, reserve_s: float | None = None, start: float | None = None
    ) -> None:
        self.budget_s = budget_s
        self.start = time.monotonic() if start is None else start
        # probing ends a moment early: writing the diagnosis and exiting fit in the budget
        self.end = self.start + budget_s - min(EXIT_RESERVE_S, 0.1 * budget_s)
        reserve = min(2.0, 0.15 * budget_s) if reserve_s is None else reserve_s
        self.requests_end = self.end - reserve
        self._lock = threading.Lock()
        self._open: dict[int, Callable[[], None]] = {}
        self._ids = 0
        self._timer = threading.Timer(max(0.0, self.requests_end - self.start), self.abort_all)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self, *, queued: bool = False) -> float:
        """Seconds left, for a request that may wait in vLLM's queue when queued."""
        return (self.requests_end if queued else self.end) - time.monotonic()

    def bound(self, timeout_s: float, *, queued: bool = False) -> float | None:
        """The timeout for one request: its own, cut to what is left; None when none is."""
        left = self.remaining(queued=queued)
        return min(timeout_s, left) if left >= MIN_REQUEST_S else None

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def track(self, sock: socket.socket | None) -> int | None:
        """Shut `sock` down at the requests' cutoff (or now, when that has passed)."""
        if sock is None:
            return None

        def shut() -> None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        with self._lock:
            self._ids += 1
            key = self._ids
            self._open[key] = shut
        if time.monotonic() >= self.requests_end:
            shut()
        return key

    def untrack(self, key: int | None) -> None:
        if key is not None:
            with self._lock:
                self._open.pop(key, None)

    def abort_all(self) -> None:
        """Shut every tracked stream down (at the cutoff, on an interrupt, at the end)."""
        with self._lock:
            pending = list(self._open.values())
            self._open.clear()
        for shut in pending:
            shut()

    def cancel(self) -> None:
        self._timer.cancel()
        self.abort_all()
