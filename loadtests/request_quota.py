"""`--num-prompts N`: the whole run sends N requests, then drains and ends, as `vllm bench
serve --num-prompts` does (its last requests run with fewer than the users in flight).

Each process holds its share of N (with Locust workers: N split by worker index), hands one
ticket per request, and says when the last ticket's request has finished, so the runner can
quit with every record written.
"""

from __future__ import annotations

from dataclasses import dataclass


def share(total: int, workers: int, index: int) -> int:
    """This worker's part of `total` requests: equal parts, the first ones one more."""
    workers = max(1, workers)
    index = min(max(0, index), workers - 1)
    return total // workers + (1 if index < total % workers else 0)


@dataclass
class RequestQuota:
    left: int | None = None  # None: no limit (the run lasts Locust's -t)
    in_flight: int = 0
    done: bool = False

    def take(self) -> bool:
        """One request may start (and is counted as in flight)."""
        if self.left is not None:
            if self.left <= 0:
                return False
            self.left -= 1
        self.in_flight += 1
        return True

    def release(self) -> bool:
        """One request finished. True once: when the quota is used up and nothing is in flight."""
        self.in_flight -= 1
        if self.left == 0 and self.in_flight == 0 and not self.done:
            self.done = True
            return True
        return False
