"""Run every benchmark and write results/latest.{md,json} (or quick.{md,json} with --quick).

    .venv/bin/python -m benchmarks.run            # full run (about 15-20 minutes on 2 cores)
    .venv/bin/python -m benchmarks.run --quick    # smoke run (a few minutes)

Parts: `agreement` (this tool vs `vllm bench serve` on one real CPU vLLM server), `doctor`
(`picoclaw-vllm diagnose` against the floor of its HTTP calls), `ceiling` (the load
generators against the stub server). Traffic goes to 127.0.0.1 only; every process started
is stopped at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import report
from benchmarks.agent_cost import QUICK as QUICK_AGENT_COST
from benchmarks.agent_cost import AgentCostPlan, run_agent_cost
from benchmarks.agreement import QUICK_AGREEMENT, AgreementPlan, run_agreement
from benchmarks.ceiling import QUICK_CEILING, CeilingPlan, run_ceiling
from benchmarks.common import REPO
from benchmarks.doctor import run_doctor
from benchmarks.machine import machine, other_activity, versions
from benchmarks.vllm_bench import VllmBench
from picoclaw_vllm.paths import tiny_model_dir
from picoclaw_vllm.server.cpu_env import setup_cpu
from picoclaw_vllm.server.embedded import embedded_backend, embedded_settings
from picoclaw_vllm.server.launcher import running_server

PARTS = ("agreement", "doctor", "ceiling", "agent-cost")
SCHEMA = "picoclaw-vllm/benchmarks/v1"
RESULTS = Path(__file__).resolve().parent / "results"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--only", action="append", choices=PARTS, help="run only this part")
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results)")
    p.add_argument("--work", type=Path, help="raw files (default runs/benchmarks-TIME)")
    p.add_argument("--repeats", type=int, help="agreement repeats (default 4; quick 2)")
    p.add_argument("--levels", help="agreement concurrency levels, e.g. 1,8,32")
    p.add_argument("--requests", help="vllm bench --num-prompts per level, e.g. 32,128,256")
    p.add_argument(
        "--budget-min",
        type=float,
        default=25.0,
        help="no new agreement repeat starts after this many minutes",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin clients/stub to CPUs")
    p.add_argument("--max-num-seqs", type=int, default=8, help="the vLLM server's setting")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _terminate)
    parts = args.only or list(PARTS)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = args.work or REPO / "runs" / f"benchmarks-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    out_dir = args.out or RESULTS
    name = "quick" if args.quick else "latest"
    started = time.monotonic()
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": "quick" if args.quick else "full",
        "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python -m benchmarks.run " + " ".join(argv or sys.argv[1:]),
        "machine": machine(),
        "work_dir": str(work),
        "activity_before": other_activity({os.getpid()}),
        "errors": {},
    }
    log(f"raw files in {work}; other activity: {doc['activity_before']}")
    agreement_plan = QUICK_AGREEMENT if args.quick else AgreementPlan()
    changes: dict[str, Any] = {}
    if args.repeats:
        changes["repeats"] = args.repeats
    if args.levels:
        changes["levels"] = tuple(int(x) for x in args.levels.split(","))
        changes["requests"] = tuple(
            int(x) for x in (args.requests or ",".join(["64"] * len(changes["levels"]))).split(",")
        )
        if len(changes["requests"]) != len(changes["levels"]):
            raise SystemExit("--requests needs one number per --levels entry")
    if changes:
        agreement_plan = AgreementPlan(**{**agreement_plan.__dict__, **changes})
    ceiling_plan = QUICK_CEILING if args.quick else CeilingPlan()
    bench = VllmBench(work / "vllm-bench-worker.log")
    try:
        setup_cpu(log=log)
        bench.launch()
        if "agreement" in parts or "doctor" in parts:
            settings = embedded_settings(max_num_seqs=args.max_num_seqs)
            log(f"starting vLLM ({settings.label()}) on port {settings.port}")
            with running_server(
                settings, embedded_backend(), log_path=work / "vllm-server.log"
            ) as server:
                log(f"vLLM ready after {server.ready_after_s:.0f} s")
                bench.wait_ready()
                if "agreement" in parts:
                    log("agreement with vllm bench serve")
                    deadline = started + args.budget_min * 60
                    try:
                        doc["agreement"] = run_agreement(
                            agreement_plan,
                            server,
                            bench,
                            work / "agreement",
                            str(tiny_model_dir()),
                            log,
                            deadline,
                        )
                    except Exception as e:
                        doc["errors"]["agreement"] = _error(e)
                if "doctor" in parts:
                    log("doctor speed")
                    try:
                        doc["doctor"] = run_doctor(
                            server.base_url, server.settings.name, 2 if args.quick else 3, log
                        )
                    except Exception as e:
                        doc["errors"]["doctor"] = _error(e)
            log("vLLM stopped")
        if "ceiling" in parts:
            bench.wait_ready()
            log("load generator ceiling (stub server)")
            try:
                doc["ceiling"] = run_ceiling(
                    ceiling_plan, work / "ceiling", bench, log, pin=not args.no_pin
                )
            except Exception as e:
                doc["errors"]["ceiling"] = _error(e)
        if "agent-cost" in parts:
            log("the load generator's cost per agent request (stub server)")
            try:
                plan = QUICK_AGENT_COST if args.quick else AgentCostPlan()
                doc["agent_cost"] = run_agent_cost(plan, work / "agent-cost", log)
            except Exception as e:
                doc["errors"]["agent-cost"] = _error(e)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        doc["errors"]["interrupted"] = "Ctrl-C or SIGTERM"
        return 130
    finally:
        bench.stop()
        doc["versions"] = versions(bench.version)
        doc["duration_s"] = time.monotonic() - started
        doc["activity_after"] = other_activity({os.getpid()})
        if "interrupted" not in doc["errors"]:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
            (out_dir / f"{name}.md").write_text(report.render(doc))
            log(f"wrote {out_dir / name}.md and .json")
    return 1 if doc["errors"] else 0


def _error(e: BaseException) -> str:
    log(f"failed: {e}")
    traceback.print_exc()
    return f"{type(e).__name__}: {e}"[-2000:]


if __name__ == "__main__":
    raise SystemExit(main())
