"""The doctor's last word: a run that overruns its deadline plus WATCHDOG_GRACE_S ends with
one line and exit 1, whatever held it up (a starved host, a probe stuck in C code).

A daemon timer thread, armed at the start of `diagnose`, counts on the same clock as the
budget (from the process's start). When it fires it writes its line and leaves with
os._exit(1): no exit handler, no thread join can hold the process any longer.
"""

from __future__ import annotations

import os
import sys
import threading
import time

# Past the budget (which already keeps deadline.EXIT_RESERVE_S for writing the diagnosis):
# measured on the 2-core test host, an overloaded CPU vLLM sharing both cores, the doctor's
# runs ended at most 1.3 s past the budget (README, "A starved host").
WATCHDOG_GRACE_S = 3.0


class Watchdog:
    def __init__(self, start: float, budget_s: float, grace_s: float = WATCHDOG_GRACE_S) -> None:
        self.limit_s = budget_s + grace_s
        self.budget_s, self.grace_s = budget_s, grace_s
        self.start = start
        delay = max(0.0, start + self.limit_s - time.monotonic())
        self._timer = threading.Timer(delay, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def line(self) -> str:
        return (
            f"picoclaw-vllm diagnose: no diagnosis within the {self.budget_s:g} s deadline + "
            f"{self.grace_s:g} s grace ({time.monotonic() - self.start:.1f} s since the process "
            "started): this host is too starved to judge the server (host_starved); run the "
            "doctor from another host, or give the engine its own cores (taskset, --cpus)"
        )

    def _fire(self) -> None:
        try:
            sys.stderr.write(self.line() + "\n")
            sys.stderr.flush()
        finally:
            os._exit(1)
