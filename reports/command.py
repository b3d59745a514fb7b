"""`picoclaw-vllm report`: write the acceptance report (HTML, Markdown, JSON, JUnit) from a run."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from picoclaw_vllm import argtypes
from picoclaw_vllm.errors import UsageError
from picoclaw_vllm.intervals import CONFIDENCE
from picoclaw_vllm.redact import printable
from reports.build import ALL_FORMATS, build_report
from reports.gates import Gates, parse_slo_argument, read_gate_file

HELP = "write the acceptance report (HTML, Markdown, JSON, JUnit) from a run"
DESCRIPTION = f"""{HELP}.

Gates (SLOs) come from --slo, as KEY=VALUE pairs or a TOML/JSON file, e.g.
  --slo ttft_p95_ms=500,itl_p95_ms=50,error_rate_pct=1,output_tokens_per_s=100
  --slo gates.toml --target-concurrency 8
They are judged at the target load (--target-concurrency or --target-rate; without one, at the
best measured step). Each gate figure carries a confidence interval (--confidence, default 95 %):
a gate passes when its interval lies within the limit, fails beyond it, and is inconclusive
when it straddles it. Exit status: 0 every gate met, 1 a gate failed, 2 bad input,
3 a gate inconclusive (0 with --allow-inconclusive)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a sweep's run dir")
    add_gate_arguments(parser)
    add_output_arguments(parser)


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    """--slo, --target-concurrency, --target-rate, --no-doctor-gate (read by gates_from_args)."""
    parser.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="KEY=VALUE[,...]|FILE",
        help="gate(s) as KEY=VALUE pairs, or a TOML/JSON gate file; repeatable, later wins",
    )
    parser.add_argument(
        "--target-concurrency",
        type=argtypes.POSITIVE_INT,
        metavar="N",
        help="judge the gates at N users",
    )
    parser.add_argument(
        "--target-rate", type=argtypes.POSITIVE, metavar="R", help="judge the gates at R requests/s"
    )
    parser.add_argument(
        "--no-doctor-gate", action="store_true", help="do not gate on the doctor's failures"
    )
    parser.add_argument(
        "--confidence",
        type=_confidence,
        default=CONFIDENCE,
        metavar="C",
        help="confidence of the gates' intervals, 0.5-0.999 (default 0.95)",
    )
    parser.add_argument(
        "--allow-inconclusive",
        action="store_true",
        help="exit 0 when no gate fails but some are inconclusive (default: exit 3)",
    )


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value > 1:
        value /= 100  # 95 means 95 %
    if not 0.5 <= value <= 0.999:
        raise argparse.ArgumentTypeError(f"confidence must be 0.5-0.999 (or 50-99.9), not {text}")
    return value


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--format and --out (read by formats_from_args and args.out)."""
    parser.add_argument(
        "--format",
        default=",".join(ALL_FORMATS),
        metavar="LIST",
        help=f"comma-separated formats out of {','.join(ALL_FORMATS)} (default: all)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="output folder (default RUN_DIR/report)"
    )


def formats_from_args(args: argparse.Namespace) -> list[str]:
    return [f.strip() for f in args.format.split(",") if f.strip()]


def gates_from_args(args: argparse.Namespace) -> Gates:
    if args.target_concurrency is not None and args.target_rate is not None:
        raise UsageError("give --target-concurrency or --target-rate, not both")
    values: dict[str, Any] = {}
    for item in args.slo:
        path = Path(item)
        if "=" not in item or path.is_file():
            if not path.is_file():
                reason = "no such gate file" if not path.is_symlink() else "a broken link or loop"
                if path.is_dir():
                    reason = "a folder, not a gate file"
                raise UsageError(f"--slo {item}: {reason} (or give KEY=VALUE)")
            values.update(read_gate_file(path))
        else:
            values.update(parse_slo_argument(item))
    if args.target_concurrency is not None:
        values.pop("target_rate", None)
        values["target_concurrency"] = args.target_concurrency
    if args.target_rate is not None:
        values.pop("target_concurrency", None)
        values["target_rate"] = args.target_rate
    if args.no_doctor_gate:
        values["doctor"] = False
    return replace(
        Gates.from_values(values),
        confidence=getattr(args, "confidence", CONFIDENCE),
        allow_inconclusive=bool(getattr(args, "allow_inconclusive", False)),
    )


def run(args: argparse.Namespace) -> int:
    result = build_report(args.run_dir, gates_from_args(args), formats_from_args(args), args.out)
    for problem in result.problems:
        print(f"warning: {printable(problem)}", file=sys.stderr)
    print(printable(result.headline))
    print(printable(result.document["recommendation"]["summary"]))
    for fmt, path in result.paths.items():
        print(f"  {fmt:5} {path}")
    return result.exit_code
