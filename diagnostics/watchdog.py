"""The doctor's last word: a run that overruns its deadline plus WATCHDOG_GRACE_S ends with
one line and exit 1, whatever held it up (a starved host, a probe stuck in C code, a thread
that would hold the interpreter's exit).

`Watchdog.run(work)` forks as `diagnose` starts (before its probes are imported or a log is
read): the child does the work and leaves with os._exit as soon as its answer is flushed; this
process only waits for it. A sleeping, single-threaded waiter is woken by the kernel on time
even on a host whose cores are full: a timer thread inside the doctor was measured firing 9 s
late there, waiting for the interpreter lock, and a finished diagnosis once took 100 s more to
exit (tests/test_diagnose_engine_state.py). On time-out the waiter kills the child, writes the
line and exits 1. The budget counts from the process's start; the start-up the watchdog could
not watch (the interpreter, the CLI's parse) is named in its line.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

# Past the budget (which already keeps deadline.EXIT_RESERVE_S for writing the diagnosis):
# measured on the 2-core test host, an overloaded CPU vLLM sharing both cores, the doctor's
# runs ended at most 1.3 s past the budget (README, "A starved host").
WATCHDOG_GRACE_S = 3.0
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Watchdog:
    def __init__(self, start: float, budget_s: float, grace_s: float = WATCHDOG_GRACE_S) -> None:
        self.limit_s = budget_s + grace_s
        self.budget_s, self.grace_s = budget_s, grace_s
        self.start = start
        self.armed_after_s = time.monotonic() - start

    def run(self, work: Callable[[], int]) -> NoReturn:
        """work() in a child; this process exits with its code, or with 1 and the line."""
        sys.stdout.flush()
        sys.stderr.flush()
        done_r, done_w = os.pipe()
        # held until each side has its handlers: a Ctrl-C at the fork is neither lost nor twice
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        child = os.fork()
        if child == 0:
            os.close(done_r)
            os.setpgid(0, 0)  # a Ctrl-C reaches it once, through this process (_wait)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
            code = work()  # an exception goes on up, in the child, to the CLI's handlers
            sys.stdout.flush()
            sys.stderr.flush()
            # the code first: a starved kernel may take seconds to tear a threaded process down
            os.write(done_w, bytes([code & 0xFF]))
            os._exit(code)
        os.close(done_w)
        os._exit(self._wait(child, done_r))

    def line(self) -> str:
        return (
            f"picoclaw-vllm diagnose: no diagnosis within the {self.budget_s:g} s deadline + "
            f"{self.grace_s:g} s grace ({time.monotonic() - self.start:.1f} s since the process "
            f"started, {self.armed_after_s:.1f} s of it start-up): this host is too starved to "
            "judge the server (host_starved); run the doctor from another host, or give the "
            "engine its own cores (taskset, --cpus)"
        )

    def _wait(self, child: int, done: int) -> int:
        def forward(signum: int, _frame: FrameType | None) -> None:
            # the child's own handling (exit 130, one line) is the answer
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

        for signum in FORWARDED:
            signal.signal(signum, forward)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        code = self._code_by_the_limit(child, done)
        if code is None:
            os.write(2, (self.line() + "\n").encode())
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
            return 1
        return code

    def _code_by_the_limit(self, child: int, done: int) -> int | None:
        """The child's exit code once it has given it (or ended), or None when the limit came
        first. Only sleeps: in select on the child's pipe and on its pidfd (an end without a
        code: an exception the CLI answered, a crash); without pidfds, 50 ms polls."""
        end = self.start + self.limit_s
        try:
            pidfd: int | None = os.pidfd_open(child)
        except (AttributeError, OSError):  # not Linux >= 5.3
            pidfd = None
        pipe_open = True
        while (left := end - time.monotonic()) > 0:
            fds = ([done] if pipe_open else []) + ([] if pidfd is None else [pidfd])
            wait_s = left if pidfd is not None else min(left, 0.05)
            if done in select.select(fds, [], [], wait_s)[0]:
                given = os.read(done, 1)
                if given:
                    return given[0]
                pipe_open = False
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid == child:
                code = os.waitstatus_to_exitcode(status)
                return code if code >= 0 else 128 - code
        return None
