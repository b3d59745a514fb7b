"""How late the kernel wakes a sleeping process on this host: the yardstick for the doctor's
watchdog (diagnostics/watchdog.py), which is such a process.

On these 2-core machines with a CPU vLLM overloaded on both cores, the whole host slows:
a bare `python -c "import httpx"` took up to 21 s (tests/engine_cpu.py) and the watchdog's
waiter once woke 4.2 s after its limit. No code in the doctor can be on time when the kernel
does not run it, so a test bounds the watchdog by the limit plus the lateness this meter,
a single-threaded process sleeping 50 ms at a time beside it, saw over the same seconds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

TICK_S = 0.05
# Prints "when late" (CLOCK_MONOTONIC, shared by every process on the host) for each wake
# later than 0.1 s; flushes each line, so a kill loses nothing written.
_METER = f"""
import select, sys, time
print("0 0", flush=True)  # ready: a record no window overlaps
while True:
    t = time.monotonic()
    select.select([], [], [], {TICK_S})
    late = time.monotonic() - t - {TICK_S}
    if late > 0.1:
        print(f"{{t + {TICK_S}:.3f}} {{late:.3f}}", flush=True)
"""


class WakeMeter:
    def __init__(self, out: Path) -> None:
        self.out = out
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> WakeMeter:
        with self.out.open("wb") as f:
            self._proc = subprocess.Popen([sys.executable, "-c", _METER], stdout=f)
        ready_by = time.monotonic() + 60
        while not self.out.read_bytes():  # measuring from its first line on, not hoped for
            if self._proc.poll() is not None or time.monotonic() > ready_by:
                raise RuntimeError("the wake meter did not start")
            time.sleep(0.05)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=60)

    def worst_late_s(self, start: float, end: float) -> float:
        """The latest of the meter's wakes that overlapped start..end (monotonic)."""
        worst = 0.0
        for line in self.out.read_text().splitlines():
            due, late = (float(x) for x in line.split())
            if due <= end and due + late >= start:
                worst = max(worst, late)
        return worst
