"""How the ceiling benchmark folds its repeated accuracy runs into one row."""

from __future__ import annotations

import pytest

from benchmarks.ceiling import combine_repeats


def test_means_sums_and_ranges() -> None:
    runs = [
        {"requests": 10, "itl_samples": 630, "itl_p99_error_ms": 0.4, "ttft_mean_error_ms": 1.0,
         "itl_mean_error_ms": 0.01, "itl_p50_error_ms": 0.0},
        {"requests": 12, "itl_samples": 756, "itl_p99_error_ms": 1.2, "ttft_mean_error_ms": 2.0,
         "itl_mean_error_ms": 0.03, "itl_p50_error_ms": 0.02},
    ]  # fmt: skip
    out = combine_repeats(runs)
    assert out["repeats"] == 2 and out["failed_repeats"] == 0
    assert out["requests"] == 22 and out["itl_samples"] == 1386
    assert out["itl_p99_error_ms"] == pytest.approx(0.8)
    assert out["itl_p99_error_ms_range"] == [0.4, 1.2]
    assert out["itl_p50_error_ms"] == pytest.approx(0.01)
    assert "itl_p50_error_ms_range" not in out


def test_failed_repeats_are_counted_not_averaged() -> None:
    out = combine_repeats([{"error": "no samples"}, {"requests": 3, "itl_p99_error_ms": 0.5}])
    assert out["repeats"] == 1 and out["failed_repeats"] == 1
    assert out["itl_p99_error_ms"] == 0.5
    assert combine_repeats([{"error": "boom"}]) == {"error": "boom"}
