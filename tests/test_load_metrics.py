"""Step figures from raw records: percentiles, std, ITL pooling, TPOT, throughput, goodput."""

from __future__ import annotations

import numpy as np
import pytest

from loadtests.records import RequestRecord
from sweeps.step_figures import GoodputSlo, describe, percentile, pstdev, summarize


def rec(
    start: float,
    *,
    ttft: float = 100.0,
    e2el: float = 500.0,
    out: int = 5,
    itl: list[float] | None = None,
    ok: bool = True,
    warmup: bool = False,
    prompt: int = 10,
) -> RequestRecord:
    tpot = (e2el - ttft) / (out - 1) if ok and out > 1 else None
    return RequestRecord(
        step_id="s",
        request_id=f"r{start}",
        worker="w",
        start_unix=start,
        ok=ok,
        status_code=200 if ok else 500,
        error=None if ok else "HTTP 500: boom",
        prompt_tokens=prompt if ok else None,
        output_tokens=out if ok else None,
        ttft_ms=ttft if ok else None,
        e2el_ms=e2el if ok else None,
        tpot_ms=tpot,
        itl_ms=itl if itl is not None else ([100.0] * (out - 1) if ok else []),
        warmup=warmup,
        end_unix=start + e2el / 1000.0,
    )


class TestStatistics:
    @pytest.mark.parametrize("p", [0, 1, 25, 50, 90, 95, 99, 100])
    def test_percentile_interpolates_like_numpy(self, p: float) -> None:
        values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0]
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))

    def test_percentile_by_hand(self) -> None:
        # rank 0.9 * 3 = 2.7: 30 + 0.7 * (40 - 30)
        assert percentile([10.0, 20.0, 30.0, 40.0], 90) == pytest.approx(37.0)
        assert percentile([7.0], 99) == 7.0

    def test_population_std(self) -> None:
        assert pstdev([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == pytest.approx(2.0)

    def test_describe_empty_is_all_none(self) -> None:
        assert set(describe([]).values()) == {None}

    def test_percentile_of_nothing_raises(self) -> None:
        with pytest.raises(ValueError):
            percentile([], 50)


class TestSummarize:
    def test_throughput_over_first_dispatch_to_last_completion(self) -> None:
        records = [rec(100.0, e2el=500.0), rec(100.5, e2el=1500.0), rec(101.0, e2el=200.0)]
        row = summarize(records)
        assert row["duration_s"] == pytest.approx(2.0)  # 100.0 .. 102.0
        assert row["completed"] == 3 and row["failed"] == 0
        assert row["request_throughput"] == pytest.approx(1.5)
        assert row["output_throughput"] == pytest.approx(15 / 2.0)
        assert row["total_token_throughput"] == pytest.approx((15 + 30) / 2.0)

    def test_warmup_is_not_counted(self) -> None:
        records = [rec(99.0, ttft=9999.0, warmup=True), rec(100.0, ttft=50.0)]
        row = summarize(records)
        assert row["completed"] == 1
        assert row["ttft_ms_p99"] == pytest.approx(50.0)

    def test_failures_counted_but_not_in_latencies(self) -> None:
        row = summarize([rec(100.0, ttft=80.0), rec(100.1, ok=False)])
        assert (row["completed"], row["failed"]) == (1, 1)
        assert row["ttft_ms_mean"] == pytest.approx(80.0)

    def test_itl_is_pooled_over_gaps_tpot_weighs_requests_equally(self) -> None:
        long = rec(100.0, ttft=0.0, e2el=90.0, out=10, itl=[10.0] * 9)
        short = rec(100.0, ttft=0.0, e2el=100.0, out=2, itl=[100.0])
        row = summarize([long, short])
        # ITL: ten gaps, nine of 10 ms and one of 100 ms; TPOT: 10 ms and 100 ms
        assert row["itl_ms_mean"] == pytest.approx((9 * 10 + 100) / 10)
        assert row["itl_ms_p50"] == pytest.approx(10.0)
        assert row["tpot_ms_mean"] == pytest.approx(55.0)
        assert row["tpot_ms_p50"] == pytest.approx(55.0)

    def test_one_token_requests_have_no_tpot(self) -> None:
        row = summarize([rec(100.0, ttft=30.0, e2el=30.0, out=1, itl=[])])
        assert row["tpot_ms_mean"] is None and row["itl_ms_p50"] is None
        assert row["ttft_ms_mean"] == pytest.approx(30.0)

    def test_goodput_needs_every_slo(self) -> None:
        records = [
            rec(100.0, ttft=100.0, e2el=500.0),  # tpot 100
            rec(100.0, ttft=300.0, e2el=700.0),  # ttft too slow
            rec(100.0, ttft=100.0, e2el=900.0),  # tpot 200: too slow
            rec(100.0, ttft=50.0, e2el=50.0, out=1, itl=[]),  # one token: tpot counts as 0
            rec(100.0, ok=False),
        ]
        row = summarize(records, GoodputSlo(ttft_ms=200.0, tpot_ms=150.0))
        assert row["duration_s"] == pytest.approx(0.9)
        assert row["goodput"] == pytest.approx(2 / 0.9)

    def test_no_slo_no_goodput(self) -> None:
        assert summarize([rec(100.0)])["goodput"] is None

    def test_no_records(self) -> None:
        row = summarize([])
        assert row["completed"] == 0 and row["duration_s"] is None
        assert row["request_throughput"] is None and row["ttft_ms_p50"] is None


def test_doctor_and_sweep_read_kv_and_preemptions_alike() -> None:
    """Two engines at 0.6 and 0.5 are 0.6 (the fullest), never 1.1; an old release's
    `vllm:num_preemptions` counts for both readers."""
    from picoclaw_vllm.vllm_api.metrics import parse
    from sweeps.server_metrics import KV_USAGE, PREEMPTIONS, parse_prometheus

    text = (
        'vllm:kv_cache_usage_perc{engine="0"} 0.6\n'
        'vllm:kv_cache_usage_perc{engine="1"} 0.5\n'
        'vllm:num_preemptions{engine="0"} 3\n'
        'vllm:num_preemptions{engine="1"} 1\n'
    )
    doctor = parse(text)
    sweep = parse_prometheus(text)
    assert doctor.kv_usage == sweep[KV_USAGE[0]] == 0.6
    assert doctor.preemptions == sweep[PREEMPTIONS[0]] == 4
