"""The sweep's step-size, repeat and search options (one argparse group) and their values.

    add_sampling_arguments(parser)            # in sweeps.command.add_arguments
    sampling_values(args) -> dict             # SweepConfig fields: repeats, precision, ...

With `presets=True` (acceptance) every default is None, for the command to fill in.
"""

from __future__ import annotations

import argparse
from typing import Any

from picoclaw_vllm import argtypes
from sweeps.sample_budget import PRECISIONS

DEFAULTS: dict[str, Any] = {
    "repeats": 1,
    "precision": None,
    "min_requests": 0,
    "min_turns": 0,
    "max_step_time": 120.0,
    "search": False,
    "search_start": 1,
    "search_max": 64,
    "search_resolution": 1,
    "search_budget": 600.0,
}
DEFAULT_SEARCH_GATES = "error_rate_pct=1,ttft_p95_ms=2000"


def add_sampling_arguments(
    parser: argparse.ArgumentParser, *, presets: bool = False, search_gates: bool = True
) -> None:
    """`search_gates`: offer --search-slo (the plain sweep; acceptance judges by its --slo)."""
    g = parser.add_argument_group(
        "step size, repeats and search",
        "a step runs --duration, or, with --precision/--min-requests/--min-turns, until its "
        "gated percentiles' intervals are that narrow (and bounded) and it holds that many "
        "requests/turns, within --max-step-time",
    )
    a = g.add_argument
    a(
        "--repeats",
        type=argtypes.integer(1, 100),
        metavar="N",
        help="run each step N times with the same seed (steps <id>-x2, ...; default 1)",
    )
    a(
        "--precision",
        choices=tuple(PRECISIONS),
        help="each gated percentile's interval within ±"
        + ", ±".join(f"{v * 100:.0f}%% ({k})" for k, v in PRECISIONS.items()),
    )
    a(
        "--min-requests",
        type=argtypes.integer(0, 10_000_000),
        metavar="N",
        help="a step measures at least N requests (then stops)",
    )
    a(
        "--min-turns",
        type=argtypes.integer(0, 10_000_000),
        metavar="N",
        help="agent workload: at least N whole turns",
    )
    a(
        "--max-step-time",
        type=argtypes.duration,
        metavar="TIME",
        help="the longest a sample-budget step measures (default 120s)",
    )
    a(
        "--search",
        action="store_true",
        default=None,
        help="find each setting's limit: the concurrency rises from --search-start (doubling) "
        "until a gate fails, then bisects (--concurrency is then not used)",
    )
    a("--search-start", type=argtypes.POSITIVE_INT, metavar="N", help="default 1")
    a("--search-max", type=argtypes.POSITIVE_INT, metavar="N", help="default 64")
    a(
        "--search-resolution",
        type=argtypes.POSITIVE_INT,
        metavar="N",
        help="stop narrowing when passing and failing levels are N apart (default 1)",
    )
    a(
        "--search-budget",
        type=argtypes.duration,
        metavar="TIME",
        help="time for one setting's search (default 600s)",
    )
    if search_gates:
        a(
            "--search-slo",
            default=DEFAULT_SEARCH_GATES,
            metavar="KEY=VALUE[,...]",
            help="the gates the search judges by (report gate keys; default "
            f"{DEFAULT_SEARCH_GATES})",
        )
    if not presets:
        parser.set_defaults(**DEFAULTS)  # fmt: skip


def sampling_values(args: argparse.Namespace) -> dict[str, Any]:
    """The SweepConfig fields of these options (defaults where a value is None)."""
    v = {k: DEFAULTS[k] if getattr(args, k, None) is None else getattr(args, k) for k in DEFAULTS}
    return {
        "repeats": int(v["repeats"]),
        "precision": v["precision"],
        "min_requests": int(v["min_requests"]),
        "min_turns": int(v["min_turns"]),
        "max_step_time_s": float(v["max_step_time"]),
        "search": bool(v["search"]),
        "search_start": int(v["search_start"]),
        "search_max": int(v["search_max"]),
        "search_resolution": int(v["search_resolution"]),
        "search_budget_s": float(v["search_budget"]),
    }
