"""When requests start: closed loop (each user sends again at once) or open loop.

Open loop follows `vllm bench serve`: arrivals at `rate` requests/s with exponential gaps
(Poisson), or gamma gaps when `burstiness` != 1, shared by all users of a process; a user
that is free takes the next arrival and waits for it, so the number of users is the
concurrency cap and arrivals that find every user busy start late, as vLLM's do behind
`--max-concurrency`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Literal

LoadMode = Literal["concurrency", "rate"]
LOAD_MODES: tuple[LoadMode, ...] = ("concurrency", "rate")


class ArrivalSchedule:
    def __init__(
        self,
        rate: float,
        *,
        burstiness: float = 1.0,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("the request rate must be positive")
        if burstiness <= 0:
            raise ValueError("burstiness must be positive")
        self.rate = rate
        self.burstiness = burstiness
        self._rng = random.Random(seed)
        self._clock = clock
        self._next: float | None = None

    def gap(self) -> float:
        theta = 1.0 / (self.rate * self.burstiness)
        return self._rng.gammavariate(self.burstiness, theta)

    def next_arrival(self) -> float:
        """Claim the next arrival; the first comes one gap after the first claim."""
        if self._next is None:
            self._next = self._clock()
        self._next += self.gap()
        return self._next

    def wait_for_next(self) -> float:
        """Seconds a user waits before sending its next request (0 when late)."""
        return max(0.0, self.next_arrival() - self._clock())


class WarmupClock:
    """Tells whether a request started during the warm-up, counted from `start()`."""

    def __init__(self, warmup_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.warmup_s = warmup_s
        self._clock = clock
        self._start: float | None = None

    def start(self) -> None:
        self._start = self._clock()

    def in_warmup(self, at: float | None = None) -> bool:
        if self.warmup_s <= 0:
            return False
        if self._start is None:
            self.start()
        assert self._start is not None
        return ((self._clock() if at is None else at) - self._start) < self.warmup_s
