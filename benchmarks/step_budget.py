"""A chat step at a fixed load: a fixed 30 s against the sample-budget mode (--precision).

    flock /tmp/vllm-cpu.lock .venv/bin/python -m benchmarks.step_budget [--users 4] [--repeats 3]

One embedded CPU vLLM server (the tiny model) is started; two sweeps run against it as an
external server: `--duration 30s` and `--precision normal --max-step-time 60s`, each step
repeated. For each figure (p50/p95 TTFT, p50 E2EL, output tok/s) it writes the interval's
relative half-width per step (order-statistic interval), the spread (CV) across repeats and
the time each step took, to benchmarks/results/step_budget.{json,md}. Ratios, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from loadtests.option_table import sweep_defaults
from loadtests.records import read_records
from picoclaw_vllm.intervals import cv, quantile_interval
from picoclaw_vllm.paths import cpu_python
from picoclaw_vllm.server.backends import LocalBackend
from picoclaw_vllm.server.embedded import embedded_settings, free_port
from picoclaw_vllm.server.launcher import running_server
from sweeps.config import SweepConfig
from sweeps.engine import run_sweep
from sweeps.results import RunDir
from sweeps.sample_budget import metric_values

RESULTS = Path(__file__).resolve().parent / "results"
FIGURES = (("ttft", 0.5), ("ttft", 0.95), ("e2el", 0.5))


def _step(run_dir: Path, row: dict[str, Any]) -> dict[str, Any]:
    records = [
        r
        for r in read_records(run_dir / "records" / f"{row['step_id']}.jsonl")
        if not r.warmup
        and (not row.get("window_end_unix") or r.start_unix <= float(row["window_end_unix"]))
    ]
    out: dict[str, Any] = {
        "step_id": row["step_id"],
        "wall_s": float(row["wall_s"]),
        "requests": len(records),
        "output_tok_s": float(row["output_throughput"]),
    }
    for metric, q in FIGURES:
        est = quantile_interval(metric_values(records, metric), q)
        out[f"{metric}_p{q * 100:g}"] = est.value
        out[f"{metric}_p{q * 100:g}_rel_half_width"] = est.relative_half_width
    return out


def _mode(api_base: str, out: Path, users: int, repeats: int, **given: Any) -> list[dict[str, Any]]:
    config = SweepConfig(
        out=out, launch="external", api_base=api_base, concurrency=(users,), repeats=repeats,
        gated=(("ttft", 0.5), ("ttft", 0.95), ("e2el", 0.5)),
        load=sweep_defaults(warmup_s=2.0, prompt_tokens=64, output_tokens=32), **given,
    )  # fmt: skip
    run_dir = run_sweep(config)
    return [_step(run_dir, dict(r)) for r in RunDir(run_dir).rows() if r.get("status") == "ok"]


def _summary(steps: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["output_tok_s", *(f"{m}_p{q * 100:g}" for m, q in FIGURES)]
    return {
        "steps": len(steps),
        "mean_wall_s": statistics.fmean(s["wall_s"] for s in steps),
        "mean_requests": statistics.fmean(s["requests"] for s in steps),
        "cv": {k: cv([s[k] for s in steps if s[k] is not None]) for k in keys},
        "mean_rel_half_width": {
            k: statistics.fmean(s[f"{k}_rel_half_width"] or float("nan") for s in steps)
            for k in keys[1:]
        },
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def markdown(doc: dict[str, Any]) -> str:
    fixed, budget = doc["fixed_30s"]["summary"], doc["budget_normal"]["summary"]
    lines = [
        f"# A chat step at {doc['users']} users: 30 s against --precision normal",
        "",
        f"{doc['repeats']} repeats each, one CPU vLLM (tiny model), this machine's 2 cores "
        "shared with other work (noisy).",
        "",
        "| | 30 s | budget | budget / 30 s |",
        "|---|---|---|---|",
        f"| step wall time (s) | {fixed['mean_wall_s']:.1f} | {budget['mean_wall_s']:.1f} | "
        f"{budget['mean_wall_s'] / fixed['mean_wall_s']:.2f} |",
        f"| requests a step | {fixed['mean_requests']:.0f} | {budget['mean_requests']:.0f} | |",
    ]
    for k, v in fixed["mean_rel_half_width"].items():
        b = budget["mean_rel_half_width"][k]
        lines.append(f"| {k} interval ± | {v:.1%} | {b:.1%} | {b / v:.2f} |")
    for k, v in fixed["cv"].items():
        b = budget["cv"][k]
        ratio = f"{b / v:.2f}" if v and b is not None else "-"
        lines.append(f"| {k} CV across repeats | {_pct(v)} | {_pct(b)} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    python = str(cpu_python())
    settings = embedded_settings(port=free_port())
    with tempfile.TemporaryDirectory() as tmp, running_server(
        settings, LocalBackend(python=python, cpu=True), log_path=Path(tmp) / "vllm.log",
        ready_timeout_s=600, started_by="benchmarks.step_budget",
    ) as handle:  # fmt: skip
        base = handle.api_base
        fixed = _mode(base, Path(tmp) / "fixed", args.users, args.repeats, duration_s=30.0)
        budget = _mode(
            base, Path(tmp) / "budget", args.users, args.repeats,
            precision="normal", max_step_time_s=60.0,
        )  # fmt: skip
    doc = {
        "users": args.users,
        "repeats": args.repeats,
        "fixed_30s": {"steps": fixed, "summary": _summary(fixed)},
        "budget_normal": {"steps": budget, "summary": _summary(budget)},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "step_budget.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "step_budget.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
