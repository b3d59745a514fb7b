"""The end-of-sweep verdicts: which step did best, overall and under each SLO given."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from picoclaw_vllm.run_layout import ResultRow
from sweeps.step_figures import GoodputSlo


def number(row: ResultRow, key: str) -> float | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


@dataclass(frozen=True)
class Best:
    label: str  # what it is best at, e.g. "p99 TTFT <= 500 ms"
    row: ResultRow | None  # None: no step met it


def _ok(rows: Sequence[ResultRow]) -> list[ResultRow]:
    return [r for r in rows if r.get("status") == "ok" and (number(r, "completed") or 0) > 0]


def _max_by(rows: Sequence[ResultRow], key: str) -> ResultRow | None:
    scored = [(v, r) for r in rows if (v := number(r, key)) is not None]
    return max(scored, key=lambda vr: vr[0])[1] if scored else None


def best_steps(rows: Sequence[ResultRow], slo: GoodputSlo) -> list[Best]:
    """Highest output throughput overall; per SLO, the highest whose p99 meets it; goodput."""
    ok = _ok(rows)
    found = [Best("highest output tok/s", _max_by(ok, "output_throughput"))]
    for metric, limit in (("ttft", slo.ttft_ms), ("tpot", slo.tpot_ms), ("e2el", slo.e2el_ms)):
        if limit is None:
            continue
        meeting = [r for r in ok if (v := number(r, f"{metric}_ms_p99")) is not None and v <= limit]
        found.append(
            Best(
                f"highest tok/s with p99 {metric.upper()} <= {limit:g} ms",
                _max_by(meeting, "output_throughput"),
            )
        )
    if slo.given:
        found.append(Best("highest goodput (all SLOs)", _max_by(ok, "goodput")))
    return found
