"""Reads a sweep run dir (picoclaw_vllm/run_layout.py) into the plain values of the report.

Everything read from disk passes through redact() here, so no later layer ever holds a secret.
A missing or unreadable run dir raises UsageError with one line that says what is wrong.
"""

from __future__ import annotations

import contextlib
import errno
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from picoclaw_vllm import jsonfile, run_layout
from picoclaw_vllm.errors import UsageError
from picoclaw_vllm.redact import MASK, redact, register_secret, secrets_in_env
from picoclaw_vllm.run_layout import DoctorJson, ManifestJson
from reports import validate

LOG_EXCERPT_LINES = 12

# Secrets that the generic patterns in redact() may not recognise by shape alone.
_SECRET_CARRIERS = (
    re.compile(r"(?i)--api-key[= ]+['\"]?([^\s'\"]+)"),
    re.compile(
        r"(?i)\b(?:VLLM_API_KEY|HF_TOKEN|HUGGING_FACE_HUB_TOKEN|OPENAI_API_KEY)=['\"]?([^\s'\"]+)"
    ),
    re.compile(r"(?i)\bbearer\s+([^\s'\",}]+)"),
    re.compile(r"(?i)\"?api_keys?\"?\s*[:=]\s*\[?\s*['\"]?([^\s'\",}\]]+)"),
)


@dataclass(frozen=True)
class StepSamples:
    """How many measured (non-warm-up) samples one step's numbers rest on, from its records."""

    requests: int
    ok_requests: int
    itl_gaps: int
    tpot_requests: int
    errors: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0  # lines that are not JSON records, skipped
    # agent workload: TTFT (ms) of the successful calls by call index in the turn / turn index
    ttft_by_call: dict[int, list[float]] = field(default_factory=dict)
    ttft_by_turn: dict[int, list[float]] = field(default_factory=dict)
    # per-request values (ms) of the successful measured requests, by metric: ttft, tpot, e2el,
    # itl (every gap of every request) and turn_latency (one per finished agent turn)
    values: dict[str, list[float]] = field(default_factory=dict)
    # (end time in unix seconds, output tokens) of each successful measured request
    finishes: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class RunData:
    run_dir: Path
    manifest: ManifestJson
    results: pd.DataFrame
    doctor: DoctorJson | None
    samples: dict[str, StepSamples]
    log_excerpts: dict[str, list[str]]  # step_id of a failed row -> last lines of its log
    problems: list[str]
    secrets: frozenset[str] = frozenset()  # found in the inputs; must appear in no output
    invalid: list[str] = field(default_factory=list)  # why rows were not judged
    missing_steps: list[str] = field(default_factory=list)  # planned, with no row
    doctor_error: str | None = None  # doctor.json exists but cannot be used


def load_run(run_dir: Path) -> RunData:
    if not run_dir.exists():
        try:
            run_dir.stat()
            reason = "does not exist"
        except OSError as e:
            reason = "does not exist" if e.errno == errno.ENOENT else jsonfile.os_reason(e)
        raise UsageError(f"run dir {run_dir}: {reason}")
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a directory (expected a sweep run dir)")
    secrets: set[str] = set()
    for text in _raw_texts(run_dir):
        secrets |= harvest_secrets(text)
    manifest = _read_manifest(run_dir)
    results, problems = _read_results(run_dir)
    results, invalid = validate.check_rows(results)
    missing = validate.missing_planned(manifest, results)
    if missing:
        problems.append(
            f"{len(missing)} planned step(s) have no result (an unfinished sweep?): "
            + ", ".join(missing[:10])
            + (" ..." if len(missing) > 10 else "")
        )
    doctor, doctor_error = _read_doctor(run_dir)
    if doctor_error:
        problems.append(doctor_error)
    samples = {}
    ends = results.get("window_end_unix", pd.Series([None] * len(results), index=results.index))
    for step, end in zip(results["step_id"].astype(str), ends, strict=True):
        if (sample := _read_samples(run_dir, step, window_end(end))) is not None:
            samples[step] = sample
            if sample.bad_lines:
                problems.append(
                    f"records/{step}.jsonl: {sample.bad_lines} line(s) are not JSON records "
                    "and were skipped"
                )
    logs = {}
    for row in results.loc[results["status"] != "ok"].to_dict(orient="records"):
        step_id, setting_id = str(row["step_id"]), str(row["setting_id"])
        # a step whose load failed has its Locust log; a setting that did not start, its server's
        name = f"locust-{step_id}" if step_id != setting_id else setting_id
        if excerpt := _log_excerpt(run_dir, name):
            logs[step_id] = excerpt
    return RunData(
        run_dir,
        manifest,
        results,
        doctor,
        samples,
        logs,
        problems + invalid,
        frozenset(secrets),
        invalid,
        missing,
        doctor_error,
    )


def harvest_secrets(text: str) -> set[str]:
    """Every value found in a key-carrying position, registered so redact() removes it anywhere
    (also where it shows up later without its `--api-key` or `Bearer` in front)."""
    found = set()
    for pattern in _SECRET_CARRIERS:
        for match in pattern.finditer(text):
            value = match.group(1)
            if len(value) >= 8 and MASK not in value and not value.replace(".", "").isdigit():
                register_secret(value)
                found.add(value)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The last line of defence on a rendered report: removes known secrets literally (the
    pattern rules of redact() already ran on the inputs and would eat markup here)."""
    for secret in sorted({*secrets, *secrets_in_env()}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _raw_texts(run_dir: Path) -> Iterator[str]:
    for name in (run_layout.MANIFEST, run_layout.DOCTOR_JSON):
        path = run_dir / name
        if path.is_file():
            with contextlib.suppress(jsonfile.BadFile):
                yield jsonfile.read_text(path)
    logs = run_dir / run_layout.LOGS_DIR
    if logs.is_dir():
        for log in sorted(logs.glob("*.log")):
            yield log.read_text(errors="replace")


def _read_manifest(run_dir: Path) -> ManifestJson:
    path = run_dir / run_layout.MANIFEST
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a sweep run dir: {run_layout.MANIFEST} is missing")
    try:
        data = jsonfile.read_json(path)
    except jsonfile.BadFile as e:
        raise UsageError(f"{path} cannot be used: {e} (line {e.line})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} should hold a JSON object")
    schema = data.get("schema")
    if schema is not None and schema != run_layout.SCHEMA:
        raise UsageError(f"{path} has schema {schema!r}; this report reads {run_layout.SCHEMA!r}")
    manifest: ManifestJson = redact_tree(data)
    return manifest


def _read_results(run_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    parquet = run_dir / run_layout.RESULTS_PARQUET
    csv_path = run_dir / run_layout.RESULTS_CSV
    frame: pd.DataFrame | None = None
    errors = []
    for path, reader in ((parquet, pd.read_parquet), (csv_path, pd.read_csv)):
        if not path.is_file():
            continue
        try:
            frame = reader(path)
            break
        except Exception as e:  # pyarrow and the csv parser raise many kinds; any means corrupt
            errors.append(f"{path.name}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    if frame is None:
        detail = "; ".join(errors) if errors else "no results.parquet or results.csv"
        raise UsageError(f"{run_dir}: cannot read the sweep results ({detail})")
    problems = [f"{e}; the report reads {run_layout.RESULTS_CSV} instead" for e in errors]
    if path == csv_path:
        frame = validate.mark_short_rows(frame, csv_path)
    if frame.empty:
        raise UsageError(f"{run_dir}: the sweep results have no rows yet (no step finished)")
    missing = [c for c in run_layout.SETTING_COLUMNS if c not in frame.columns]
    if missing:
        raise UsageError(f"{run_dir}: results lack columns {', '.join(missing)}")
    for column in run_layout.COLUMNS:
        if column not in frame.columns:
            frame[column] = math.nan
    for column in ("failure_id", "failure_message"):
        frame[column] = frame[column].map(lambda v: redact(str(v)) if _present(v) else None)
    frame["status"] = frame["status"].astype(str)
    return frame.reset_index(drop=True), problems


def _read_doctor(run_dir: Path) -> tuple[DoctorJson | None, str | None]:
    """(doctor.json, None), (None, None) when the doctor was not run, (None, why) when its
    file is there but unusable."""
    path = run_dir / run_layout.DOCTOR_JSON
    if not path.exists() and not path.is_symlink():
        return None, None
    try:
        data = jsonfile.read_json(path)
    except jsonfile.BadFile as e:
        return None, f"{run_layout.DOCTOR_JSON} cannot be read ({e}); doctor results unknown"
    if not isinstance(data, dict) or not isinstance(data.get("checks", []), list):
        return None, f"{run_layout.DOCTOR_JSON} is not the doctor's JSON; doctor results unknown"
    doctor: DoctorJson = redact_tree(data)
    return doctor, None


def _read_samples(run_dir: Path, step_id: str, until_unix: float | None) -> StepSamples | None:
    return read_samples(run_dir / run_layout.RECORDS_DIR / f"{step_id}.jsonl", until_unix)


def window_end(value: object) -> float | None:
    """A results row's window_end_unix (a number, its text, or empty) as a number or None."""
    try:
        end = float(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
    return end if end is not None and math.isfinite(end) else None


def read_samples(path: Path, until_unix: float | None = None) -> StepSamples | None:
    """One step's records file (records/<step_id>.jsonl) read into its samples; None if absent.
    `until_unix`: the step's window_end_unix (a sample-budget step that met its budget): the
    requests started after it are not counted, as the sweep's own row does not count them."""
    if not path.is_file():
        return None
    requests = ok = gaps = tpot = bad = 0
    errors: dict[str, int] = {}
    by_call: dict[int, list[float]] = {}
    by_turn: dict[int, list[float]] = {}
    values: dict[str, list[float]] = {m: [] for m in SAMPLED_METRICS}
    finishes: list[tuple[float, float]] = []
    with path.open(errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                record = jsonfile.loads(line)
            except jsonfile.BadFile:
                bad += 1
                continue
            if not isinstance(record, dict):
                bad += 1
                continue
            if record.get("warmup"):
                continue
            start = _number(record.get("start_unix"))
            if until_unix is not None and start is not None and start > until_unix:
                continue
            requests += 1
            if record.get("ok"):
                ok += 1
                itl = record.get("itl_ms")
                gaps += len(itl) if isinstance(itl, list) else 0
                tpot += 1 if _present(record.get("tpot_ms")) else 0
                _collect(record, values, finishes)
                ttft = record.get("ttft_ms")
                if isinstance(ttft, int | float):
                    for key, into in (("call_index", by_call), ("turn_index", by_turn)):
                        index = record.get(key)
                        if isinstance(index, int) and not isinstance(index, bool):
                            into.setdefault(index, []).append(float(ttft))
            else:
                reason = redact(str(record.get("error") or f"HTTP {record.get('status_code')}"))
                key = reason[:160]
                errors[key] = errors.get(key, 0) + 1
    return StepSamples(requests, ok, gaps, tpot, errors, bad, by_call, by_turn, values, finishes)


SAMPLED_METRICS = ("ttft", "tpot", "e2el", "itl", "turn_latency")


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _collect(
    record: dict[str, Any], values: dict[str, list[float]], finishes: list[tuple[float, float]]
) -> None:
    for metric in ("ttft", "tpot", "e2el", "turn_latency"):
        if (v := _number(record.get(f"{metric}_ms"))) is not None:
            values[metric].append(v)
    itl = record.get("itl_ms")
    if isinstance(itl, list):
        values["itl"].extend(v for g in itl if (v := _number(g)) is not None)
    start, e2el = _number(record.get("start_unix")), _number(record.get("e2el_ms"))
    if start is not None and e2el is not None:
        finishes.append((start + e2el / 1000, _number(record.get("output_tokens")) or 0.0))


def _log_excerpt(run_dir: Path, name: str) -> list[str]:
    path = run_dir / run_layout.LOGS_DIR / f"{name}.log"
    if not path.is_file():
        return []
    lines = path.read_text(errors="replace").splitlines()
    return [redact(line)[:400] for line in lines[-LOG_EXCERPT_LINES:]]


def redact_tree(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and value.strip() in ("", "nan", "None"))
