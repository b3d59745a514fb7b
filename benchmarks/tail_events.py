"""How many separate events a run's TTFT tail comes from.

A stall of the server (or of its host) delays every request waiting at that moment, so the
slowest 1 % of a run's requests are rarely independent samples: measured at 32 users on the
CPU vLLM, they were 5 consecutive requests of one stall in every run, for both clients. A p99
that rests on one event is one observation, whatever the request count.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence


def tail_events(ttfts_in_start_order: Sequence[float], window: int, q: float = 0.99) -> int:
    """The slowest ceil((1 - q) * n) requests, grouped: two of them that started within
    `window` places of each other (the requests in flight together) are one event."""
    n = len(ttfts_in_start_order)
    if n == 0:
        return 0
    k = max(1, math.ceil(round((1 - q) * n, 9)))  # 1 % of 500 is 5, not 6
    slowest = sorted(sorted(range(n), key=lambda i: -ttfts_in_start_order[i])[:k])
    return 1 + sum(1 for a, b in itertools.pairwise(slowest) if b - a > window)
