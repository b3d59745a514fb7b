"""The sweep's rows as typed steps, with what the report derives from them (load, error rate,
and how many requests each number rests on)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from picoclaw_vllm import run_layout
from picoclaw_vllm.intervals import cv
from reports.document_types import PositionTtft, StepJson
from reports.formatting import load_text
from reports.run_data import StepSamples


@dataclass(frozen=True)
class Step:
    values: dict[str, Any]  # every run_layout column, NaN as None
    samples: StepSamples | None = None
    warnings: list[str] = field(default_factory=list)
    repeats: tuple[Step, ...] = ()  # a repeated step: every repeat (itself first); else ()

    def get(self, column: str) -> Any:
        return self.values.get(column)

    def number(self, column: str) -> float | None:
        value = self.values.get(column)
        return float(value) if isinstance(value, int | float) else None

    @property
    def step_id(self) -> str:
        return str(self.values["step_id"])

    @property
    def setting_id(self) -> str:
        return str(self.values["setting_id"])

    @property
    def ok(self) -> bool:
        return self.values.get("status") == "ok"

    @property
    def load_mode(self) -> str:
        return str(self.values.get("load_mode") or "concurrency")

    @property
    def load(self) -> float | None:
        column = "request_rate" if self.load_mode == "rate" else "concurrency"
        return self.number(column)

    @property
    def load_label(self) -> str:
        load = self.load
        if load is None:
            return "-"
        return load_text(load, self.load_mode, self.values.get("workload"))

    @property
    def setting_label(self) -> str:
        return setting_label(
            self.values.get("max_num_seqs"), self.values.get("tensor_parallel_size")
        )

    @property
    def completed(self) -> int:
        return int(self.number("completed") or 0)

    @property
    def failed(self) -> int:
        return int(self.number("failed") or 0)

    @property
    def error_rate_pct(self) -> float | None:
        total = self.completed + self.failed
        return 100.0 * self.failed / total if total else None

    @property
    def is_agent(self) -> bool:
        return self.values.get("workload") == "agent"

    @property
    def prompt_tokens_per_s(self) -> float | None:
        """Prefill load: prompt tokens vLLM counted in the step, per measured second."""
        tokens, duration = self.number("server_prompt_tokens"), self.number("duration_s")
        return tokens / duration if tokens is not None and duration else None

    def rests_on(self, metric: str) -> int:
        """How many requests (turns, for turn latency) a latency metric is computed from."""
        if metric == "turn_latency":
            return int(self.number("turns") or 0)
        if metric == "tpot" and self.samples is not None:
            return self.samples.tpot_requests
        return self.completed

    def as_json(self) -> StepJson:
        data = dict(self.values)
        data.update(
            load=self.load,
            error_rate_pct=self.error_rate_pct,
            requests_measured=self.completed + self.failed,
            itl_gaps=self.samples.itl_gaps if self.samples else None,
            tpot_requests=self.samples.tpot_requests if self.samples else None,
            error_reasons=dict(self.samples.errors) if self.samples else {},
            prompt_tokens_per_s=self.prompt_tokens_per_s,
            ttft_by_call_index=_positions(self.samples.ttft_by_call) if self.samples else {},
            ttft_by_turn_index=_positions(self.samples.ttft_by_turn) if self.samples else {},
            warnings=list(self.warnings),
            repeats={
                "runs": len(self.repeats),
                "step_ids": [r.step_id for r in self.repeats],
                "requests": sum(r.completed + r.failed for r in self.repeats),
                "cv": repeat_cvs(self.repeats),
            }
            if self.repeats
            else None,
        )
        # every run_layout column is in values (steps_from_results) and the rest is set here
        return cast(StepJson, data)


def _positions(ttfts: dict[int, list[float]]) -> dict[str, PositionTtft]:
    """TTFT per call index (or turn index): median, p95 and how many calls, as JSON keys."""
    out: dict[str, PositionTtft] = {}
    for index in sorted(ttfts):
        values = ttfts[index]
        if values:
            out[str(index)] = {
                "ttft_ms_p50": float(np.percentile(values, 50)),
                "ttft_ms_p95": float(np.percentile(values, 95)),
                "calls": float(len(values)),
            }
    return out


def setting_label(max_num_seqs: Any, tp: Any) -> str:
    seqs = _as_int_text(max_num_seqs, "default")
    return f"max-num-seqs {seqs} · TP {_as_int_text(tp, '?')}"


def steps_from_results(results: pd.DataFrame, samples: dict[str, StepSamples]) -> list[Step]:
    steps = []
    for row in results.to_dict(orient="records"):
        columns = [
            *run_layout.COLUMNS,
            *(c for c in results.columns if c not in run_layout.COLUMNS),
        ]
        values = {str(column): _clean(row.get(column)) for column in columns}
        # how many samples a figure rests on is its interval's business (reports.estimates)
        steps.append(Step(values, samples.get(str(values["step_id"]))))
    steps = with_repeats(steps)
    return sorted(steps, key=_order)


CV_FLAG = 0.10  # a figure that varies more than this across repeats is flagged
REPEATED_FIGURES = {
    "output_throughput": "output tok/s",
    "request_throughput": "requests/s",
    "ttft_ms_p95": "TTFT p95",
    "itl_ms_p95": "ITL p95",
    "e2el_ms_p95": "E2EL p95",
    "turn_latency_ms_p95": "turn latency p95",
}


def with_repeats(steps: list[Step]) -> list[Step]:
    """Rows of one setting and load with different `repeat` are repeats of one step: each gets
    them all (`Step.repeats`), and a warning per figure whose CV across them exceeds 10 %."""
    groups: dict[tuple[str, str, float | None], list[Step]] = {}
    for step in steps:
        if step.ok:
            groups.setdefault((step.setting_id, step.load_mode, step.load), []).append(step)
    out = []
    for step in steps:
        group = groups.get((step.setting_id, step.load_mode, step.load), [])
        if len(group) < 2:
            out.append(step)
            continue
        out.append(Step(step.values, step.samples, [*step.warnings, *_spread(group)], tuple(group)))
    return out


def repeat_cvs(group: Sequence[Step]) -> dict[str, float]:
    out = {}
    for column in REPEATED_FIGURES:
        values = [v for s in group if (v := s.number(column)) is not None]
        if (c := cv(values)) is not None:
            out[column] = c
    return out


def _spread(group: Sequence[Step]) -> list[str]:
    first = group[0]
    where = f"{first.setting_label} at {first.load_label}"
    requests = sum(s.completed + s.failed for s in group)
    return [
        f"{where}: {REPEATED_FIGURES[column]} varies {100 * c:.0f} % (CV) across "
        f"{len(group)} runs ({requests} requests), over {100 * CV_FLAG:.0f} %"
        for column, c in repeat_cvs(group).items()
        if c > CV_FLAG
    ]


def _order(step: Step) -> tuple[float, float, str, float]:
    return (
        _num_or(step.get("tensor_parallel_size"), 1.0),
        _num_or(step.get("max_num_seqs"), math.inf),
        step.setting_id,
        step.load if step.load is not None else -1.0,
    )


def _num_or(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default


def _as_int_text(value: Any, default: str) -> str:
    if isinstance(value, int | float) and not math.isnan(value):
        return f"{value:g}"
    return default


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars -> Python numbers
        return value.item()
    return value
