"""The session server's engine kept off one CPU core, so the test's own process has it.

On a GPU host the engine computes on the GPU and leaves the client's CPU alone. On the CPU
vLLM it does not: measured on these 2-core machines with the queue full (8 clients,
--max-num-seqs 2), a bare `python -c "import httpx, pandas"` took 1.4-21 s (0.5 s idle) and
the doctor's in-process config check 12 s, while the engine's processes ran on both cores
(vLLM binds its worker's threads to core 0). With every thread of the engine core and its
workers bound to the last core, the same start-up took 1.0-1.7 s in 8 of 8 tries and
/metrics answered in under 0.1 s. Niceness did not do this: Linux sets it per thread (a
renice of the processes reaches none of the worker's 47 threads), and with every thread of
the engine at nice 15 the same start-up still took 1.7-94 s.
"""

from __future__ import annotations

import contextlib
import os

import psutil


def pin_engine(server_pid: int | None) -> set[int]:
    """Bind every thread of the server's engine processes (the API server's children) to the
    last CPU core; the API server itself, which answers the doctor, stays free. Returns the
    core left to the tests (empty when there is only one core, and nothing is pinned)."""
    cores = sorted(os.sched_getaffinity(0))
    if server_pid is None or len(cores) < 2:
        return set()
    engine_core = {cores[-1]}
    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process(server_pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                for thread in proc.threads():
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(thread.id, engine_core)
    return set(cores[:-1])
