"""What the report reads is checked before anything is judged on it: a row whose numbers are
not numbers, not finite, negative, beyond any machine's reach, or missing (a row cut short)
is marked "invalid" and is never a measured step; planned steps with no row are named.

The report fails closed on both (reports.verdict): unmeasured or invalid data is never a pass.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pandas as pd

from picoclaw_vllm import run_layout
from picoclaw_vllm.run_layout import ManifestJson

INVALID = "invalid"
INVALID_ID = "report.invalid_data"
STATUSES = ("ok", "failed")

_HUGE = 1e9  # above this no latency (ms), rate or count of one sweep step is real
# column -> (low, high, whole number)
_RANGES: dict[str, tuple[float, float, bool]] = {
    "max_num_seqs": (1, 1e6, True),
    "tensor_parallel_size": (1, 4096, True),
    "concurrency": (1, 1e7, True),
    "request_rate": (0, 1e7, False),
    "duration_s": (0, 1e8, False),
    "warmup_s": (0, 1e8, False),
    "prompt_tokens_asked": (0, 1e8, True),
    "output_tokens_asked": (0, 1e8, True),
    "completed": (0, _HUGE, True),
    "failed": (0, _HUGE, True),
    "server_kv_cache_max": (0, 1.5, False),
    "server_prefix_cache_hit_rate": (0, 1, False),
    "gpu_utilization_mean": (0, 100, False),
}
_NUMERIC = [
    c
    for c in run_layout.COLUMNS
    if c not in run_layout.SETTING_COLUMNS or c in ("max_num_seqs", "tensor_parallel_size")
]
_TEXT = {"load_mode": ("concurrency", "rate"), "workload": ("chat", "agent")}
_NUMERIC = [c for c in _NUMERIC if c not in _TEXT]
# an ok row without these was not measured (or was cut short)
_REQUIRED = ("duration_s", "completed", "failed", "request_throughput", "output_throughput")
SHORT_ROW = "_short_row"  # a column marking CSV rows with fewer fields than the header


def mark_short_rows(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """frame with SHORT_ROW set on the rows whose CSV line has fewer (or more) fields than the
    header: a row cut short is not a row whose missing values happen to be empty."""
    try:
        with path.open(newline="", errors="replace") as f:
            rows = [r for r in csv.reader(f) if r]
    except (OSError, csv.Error):
        return frame
    if not rows or len(rows) - 1 != len(frame):
        return frame
    width = len(rows[0])
    frame = frame.copy()
    frame[SHORT_ROW] = [len(r) != width for r in rows[1:]]
    return frame


def check_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """frame with numeric columns made numbers and bad "ok" rows marked invalid, and one line
    per bad row saying what is wrong with it."""
    frame = frame.copy()
    bad: dict[int, list[str]] = {}
    for column in _NUMERIC:
        if column not in frame.columns:
            continue
        raw = frame[column]
        numbers = pd.to_numeric(raw, errors="coerce").astype(float)
        for i in frame.index:
            why = _why_bad(column, raw[i], numbers[i])
            if why:
                bad.setdefault(i, []).append(why)
        # text read from a CSV (object, or pandas 3's str dtype): numbers, NaN when bad
        if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
            frame[column] = numbers
    problems = []
    for i in frame.index:
        row = frame.loc[i]
        status = str(row["status"])
        reasons = bad.get(i, [])
        if status not in STATUSES:
            reasons.insert(0, f"status {status[:40]!r} is neither ok nor failed")
        elif bool(row.get(SHORT_ROW, False)) and status == "ok":
            reasons.insert(0, "its line in results.csv is cut short (fewer fields than the header)")
        elif status == "ok":
            reasons += _unmeasured(row)
        if not reasons or (status == "failed" and not _breaks_failed_row(reasons)):
            continue
        step = str(row["step_id"])[:80]
        text = "; ".join(reasons[:4]) + (
            f"; and {len(reasons) - 4} more" if len(reasons) > 4 else ""
        )
        frame.loc[i, "status"] = INVALID
        frame.loc[i, "failure_id"] = INVALID_ID
        frame.loc[i, "failure_message"] = f"invalid data: {text}"
        problems.append(f"step {step}: invalid data, not judged ({text})")
    return frame.drop(columns=[SHORT_ROW], errors="ignore"), problems


def _why_bad(column: str, raw: Any, number: float) -> str | None:
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or _blank(raw):
        return None  # absent: judged by _unmeasured where it matters
    if isinstance(raw, bool) or math.isnan(number):
        return f"{column} is not a number ({str(raw)[:30]!r})"
    if not math.isfinite(number):
        return f"{column} is infinite"
    low, high, whole = _RANGES.get(column, (0, _HUGE, False))
    if number < low or number > high:
        return f"{column} {number:g} is outside {low:g}..{high:g}"
    if whole and not float(number).is_integer():
        return f"{column} {number:g} is not a whole number"
    return None


def _blank(value: Any) -> bool:
    return isinstance(value, str) and value.strip() in ("", "nan", "None", "NaN")


def _unmeasured(row: pd.Series) -> list[str]:
    missing = [c for c in _REQUIRED if c in row.index and _absent(row[c])]
    for column, allowed in _TEXT.items():
        value = row.get(column)
        if not _absent(value) and str(value) not in allowed:
            return [f"{column} {str(value)[:30]!r} is neither {' nor '.join(allowed)}"]
    mode = "concurrency" if _absent(row.get("load_mode")) else str(row.get("load_mode"))
    load_column = "request_rate" if mode == "rate" else "concurrency"
    if _absent(row.get(load_column)):
        missing.insert(0, load_column)
    reasons = [f"{', '.join(missing)} missing (a row cut short?)"] if missing else []
    completed = row.get("completed")
    if isinstance(completed, int | float) and completed == 0:
        reasons.append("no request was measured (completed 0)")
    return reasons


def _breaks_failed_row(reasons: list[str]) -> bool:
    """A failed row is shown, not judged: only a status that is not one is worth naming."""
    return any(r.startswith("status ") for r in reasons)


def _absent(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return _blank(value)


def missing_planned(manifest: ManifestJson, frame: pd.DataFrame) -> list[str]:
    """Step ids the manifest planned that have no row (a setting's own failed row covers all
    of its steps)."""
    settings = manifest.get("settings")
    if not isinstance(settings, dict):
        return []
    seen = set(frame["step_id"].astype(str))
    missing = []
    for setting_id, entry in settings.items():
        steps = entry.get("steps") if isinstance(entry, dict) else None
        if not isinstance(steps, list) or str(setting_id) in seen:
            continue
        missing += [str(s) for s in steps if str(s) not in seen]
    return missing
