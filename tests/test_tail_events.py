"""benchmarks.tail_events: the slowest 1 % of a run's requests, grouped into the stalls they
came from (the agreement benchmark reports it beside each p99 TTFT)."""

from __future__ import annotations

from benchmarks.tail_events import tail_events


def test_one_stall_is_one_event() -> None:
    ttfts = [100.0] * 500
    for i in range(300, 305):  # five requests waiting through the same stall
        ttfts[i] = 3000.0
    assert tail_events(ttfts, window=32) == 1


def test_slow_requests_far_apart_are_separate_events() -> None:
    ttfts = [100.0] * 500
    for i in (10, 120, 250, 380, 490):
        ttfts[i] = 3000.0
    assert tail_events(ttfts, window=32) == 5
    assert tail_events(ttfts, window=120) == 3  # 10 with 120, 250, 380 with 490


def test_the_tail_is_one_percent_rounded_up() -> None:
    ttfts = [float(i % 7) for i in range(150)]  # the 2 slowest: any two 6.0s
    assert tail_events(ttfts, window=1) in (1, 2)
    assert tail_events([5.0], window=1) == 1
    assert tail_events([], window=1) == 0
