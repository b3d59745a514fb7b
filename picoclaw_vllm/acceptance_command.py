"""`picoclaw-vllm acceptance`: doctor, sweep and report in one pre-deployment run.

With no arguments it runs on the embedded default: the local CPU vLLM with the tiny model
(set up if needed), a small --max-num-seqs x TP sweep, and the report. The doctor runs against
the first server setting that becomes ready (no extra server start), as PicoClaw configured
for that server would see it; when no setting starts, it reads the first setting's log instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from loadtests import option_table
from picoclaw_vllm.paths import TINY_MODEL_NAME
from picoclaw_vllm.picoclaw.request import DEFAULT_REQUEST_TIMEOUT_S
from picoclaw_vllm.run_layout import DOCTOR_JSON
from picoclaw_vllm.server.launcher import ServerHandle
from reports import command as report_command
from reports import search_judge
from sweeps import command as sweep_command
from sweeps.config import SweepConfig
from sweeps.results import RunDir

HELP = "doctor, sweep and report in one pre-deployment run"
DESCRIPTION = """\
Runs the doctor, a sweep and the report the way a team does before go-live, and exits with
the report's verdict: 0 every gate met, 1 a gate failed, 2 bad input, 3 no gate failed but one
is inconclusive (its confidence interval straddles the limit; 0 with --allow-inconclusive).

With no arguments: the embedded CPU vLLM (set up on first use) with its tiny model, a sweep of
--max-num-seqs 2,8 x --tensor-parallel-size 1,2 at 1 and 8 PicoClaw sessions (the agent
workload: PicoClaw's own requests, 4 calls a turn, 1 s think time; 2 s warm-up; each step runs
until it holds 36 requests and its medians are bounded within ±25 %, at most 60 s) and gates
such steps can settle: error rate <= 10 %, median TTFT <= 2 s, median turn latency within
PicoClaw's request_timeout of 120 s, no timed-out turn, no tool call PicoClaw cannot run
(goodput counts requests with TTFT <= 2 s); about 7 minutes on a 2-core machine. Any other
target (or --slo) gets the deployment gates: error rate <= 1 %, p95 TTFT <= 2 s (agent: p95
turn latency <= 120 s, no timed-out turn, no invalid tool call). The report says how many
PicoClaw sessions each setting serves within the gates and what runs out first.

examples:
  picoclaw-vllm acceptance
  picoclaw-vllm acceptance --launch external --api-base http://gpu-box:8000/v1 \\
      --concurrency 1,8,32 --duration 60s --slo ttft_p95_ms=800,itl_p95_ms=60 \\
      --target-concurrency 32
  picoclaw-vllm acceptance --model meta-llama/Llama-3.2-3B-Instruct --python ~/vllm/bin/python \\
      --max-num-seqs 32,128 --tensor-parallel-size 1,2 --concurrency 8,32,64 --duration 60s
"""

# The sweep's own settings per target; the load options' presets (prompt and output
# tokens, warm-up, workload, think time) are in loadtests/option_table.py.
EMBEDDED_LOAD: dict[str, Any] = {
    "max_num_seqs": (2, 8),
    "tensor_parallel_size": (1, 2),
    "concurrency": (1, 8),
    "duration": 8.0,
}
# with --search on the embedded server (not yet the default: its wall time on the 4 settings
# is not measured): from 1 to 8 sessions, each step at least 12 whole turns within 30 s,
# 150 s a setting (and until the gated percentiles are bounded to ±25 %, within the 30 s).
# Each level is judged by the report's rule: with the default error_rate_pct=1 no level of a
# few dozen requests can pass (Wilson needs ~380 error-free ones), so every level reads as
# unsettled unless --slo gives a limit such steps can settle.
EMBEDDED_SEARCH: dict[str, Any] = {
    "search_start": 1,
    "search_max": 8,
    "search_resolution": 1,
    "search_budget": 150.0,
    "min_turns": 12,
    "precision": "coarse",
    "max_step_time": 30.0,
}
GENERAL_LOAD: dict[str, Any] = {
    "max_num_seqs": None,
    "tensor_parallel_size": (1,),
    "concurrency": (1, 8, 32),
    "duration": 30.0,
}
DEFAULT_GATES = "error_rate_pct=1,ttft_p95_ms=2000"
# the agent workload adds PicoClaw's own limit on a whole turn (its request_timeout) and no
# tool call PicoClaw cannot run (markup left in content, arguments off the tool's schema)
DEFAULT_AGENT_GATES = (
    DEFAULT_GATES + f",turn_latency_p95_ms={1000 * DEFAULT_REQUEST_TIMEOUT_S:g},turns_timed_out=0"
    ",invalid_tool_calls_pct=0"
)
# The embedded default (a tiny model on CPU, minutes in all) judges medians and a 10 % error
# rate: gates its steps can settle. A p95 needs 72 requests to be bounded, a 1 % error rate
# 381 error-free ones (Wilson, 95 %): no step of a short CPU run holds them, and every answer
# would be "inconclusive". Each step then runs until its medians are bounded within ±25 % and
# it holds 36 measured requests (0 failures of 36: Wilson's upper bound 9.6 %), within 60 s.
EMBEDDED_GATES = "error_rate_pct=10,ttft_p50_ms=2000"
EMBEDDED_AGENT_GATES = (
    EMBEDDED_GATES + f",turn_latency_p50_ms={1000 * DEFAULT_REQUEST_TIMEOUT_S:g},turns_timed_out=0"
    ",invalid_tool_calls_pct=0"
)
EMBEDDED_BUDGET: dict[str, Any] = {
    "min_requests": 36,
    "precision": "coarse",
    "max_step_time": 60.0,
}
DEFAULT_SLO_TTFT_MS = 2000.0  # goodput counts requests whose first token came within this


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sweep_command.add_arguments(parser, out_required=False, presets=True)
    parser.set_defaults(**dict.fromkeys(EMBEDDED_LOAD))
    report_command.add_gate_arguments(parser)
    extra = parser.add_argument_group("doctor and report")
    extra.add_argument("--config", type=Path, metavar="PATH",
                       help="PicoClaw config.json for the doctor (default: PicoClaw's own place; "
                       "with the embedded server, one written for it)")  # fmt: skip
    extra.add_argument("--format", default="html,md,json,junit", metavar="LIST",
                       help="report formats (default: all)")  # fmt: skip


def _fill_defaults(args: argparse.Namespace) -> bool:
    """Set the load defaults that depend on the target. True for the embedded default."""
    embedded = args.launch == "local" and args.model is None
    presets = EMBEDDED_LOAD if embedded else GENERAL_LOAD
    if embedded and args.search:
        presets = presets | EMBEDDED_SEARCH
    elif embedded and args.duration is None and not args.slo:
        presets = presets | EMBEDDED_BUDGET
    for key, value in presets.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    option_table.fill_presets(args, "embedded" if embedded else "general")
    if args.out is None:
        args.out = Path("runs") / time.strftime("acceptance-%Y%m%d-%H%M%S")
    if not args.slo and embedded:
        args.slo = [EMBEDDED_AGENT_GATES if args.workload == "agent" else EMBEDDED_GATES]
    if not args.slo:
        args.slo = [DEFAULT_AGENT_GATES if args.workload == "agent" else DEFAULT_GATES]
    if args.slo_ttft_ms is None and args.slo_tpot_ms is None and args.slo_e2el_ms is None:
        args.slo_ttft_ms = DEFAULT_SLO_TTFT_MS
    return embedded


def embedded_picoclaw_config(path: Path, api_base: str) -> Path:
    """A PicoClaw config (current format) that fits the embedded server."""
    doc = {
        "version": 3,
        "model_list": [
            {"model_name": "local-vllm", "model": f"vllm/{TINY_MODEL_NAME}", "api_base": api_base}
        ],
        "agents": {"defaults": {"model_name": "local-vllm"}},  # PicoClaw's own max_tokens
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


@dataclass
class DoctorOnFirstServer:
    """The sweep's server-ready hook: diagnoses the first server that answers."""

    config: SweepConfig
    picoclaw_config: Path | None
    embedded: bool
    console: Console
    diagnosis: dict[str, Any] | None = None

    def __call__(self, handle: ServerHandle) -> None:
        if self.diagnosis is None:
            self.diagnosis = self.run_doctor(handle.api_base, log_text=None)
            write_doctor(self.config.out, self.diagnosis)

    def run_doctor(self, api_base: str, log_text: str | None) -> dict[str, Any]:
        from diagnostics.options import DiagnoseOptions
        from diagnostics.render_console import summary
        from diagnostics.runner import diagnose

        config = self.picoclaw_config
        if self.embedded and config is None:
            config = embedded_picoclaw_config(self.config.out / "picoclaw-config.json", api_base)
        model = self.config.served_model_name or (None if self.embedded else self.config.model)
        diagnosis = diagnose(
            DiagnoseOptions(
                api_base=api_base,
                model=model,
                api_key=self.config.api_key,
                config_path=config,
                log_text=log_text,
                log_source="server log" if log_text else None,
                check_hub=not self.embedded,
            )
        )
        self.console.print(f"doctor: {summary(diagnosis)}")
        for f in diagnosis.findings:
            self.console.print(escape(f"  [{f.severity.value}] {f.id}: {f.message}"))
        return diagnosis.to_json_dict()


def write_doctor(run_dir: Path, document: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / DOCTOR_JSON).write_text(json.dumps(document, indent=2) + "\n")


def run(args: argparse.Namespace) -> int:
    from picoclaw_vllm.server.cpu_env import setup_cpu
    from reports.build import build_report
    from sweeps.engine import run_sweep
    from sweeps.progress import RichProgress

    progress = RichProgress()
    console = progress.console
    embedded = _fill_defaults(args)
    gates = report_command.gates_from_args(args)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    # the sample budget bounds the percentiles the gates judge; --search judges by the gates
    config = dataclasses.replace(
        sweep_command.config_from_args(args), gated=search_judge.gated_quantiles(gates)
    )
    judge = search_judge.step_judge(gates) if config.search else None
    if embedded:
        env = setup_cpu(log=lambda m: console.print(f"[dim]{m}[/]"))
        console.print(f"embedded CPU vLLM ready ({env.seconds:.0f} s)")
    if args.resume and RunDir(config.out).exists():
        config = sweep_command.resumed_config(RunDir(config.out), config)
    console.print(f"acceptance run: {config.out}")

    doctor = DoctorOnFirstServer(config, args.config, embedded, console)
    if config.launch == "external" and config.api_base:
        doctor.diagnosis = doctor.run_doctor(config.api_base, log_text=None)
        write_doctor(config.out, doctor.diagnosis)
    try:
        run_sweep(config, progress, resume=args.resume, on_server_ready=doctor, judge=judge)
    finally:
        progress.close()
    if doctor.diagnosis is None and not (config.out / DOCTOR_JSON).exists():
        _doctor_from_failed_start(doctor, config)

    result = build_report(config.out, gates, formats=formats)
    console.print(_summary_line(result.outcome, gates.allow_inconclusive))
    console.print(escape(result.headline))
    for fmt, path in result.paths.items():
        console.print(f"  {fmt:5} {path}")
    return result.exit_code


def _summary_line(outcome: str, allow_inconclusive: bool) -> str:
    if outcome == "pass":
        return "acceptance PASSED: every gate met"
    if outcome == "inconclusive":
        allowed = " (allowed by --allow-inconclusive)" if allow_inconclusive else ""
        return (
            "acceptance INCONCLUSIVE: no gate failed, but some cannot be told met at this "
            f"precision{allowed} (see the report for what would settle them)"
        )
    return "acceptance FAILED: a gate failed (see the report)"


def _doctor_from_failed_start(doctor: DoctorOnFirstServer, config: SweepConfig) -> None:
    """No setting started: let the doctor read the first setting's log."""
    run = RunDir(config.out)
    plans = config.settings()
    if not plans:
        return
    log = run.log_path(plans[0].setting_id)
    log_text = log.read_text(errors="replace") if log.exists() else None
    api_base = config.api_base or "http://127.0.0.1:8000/v1"
    doctor.diagnosis = doctor.run_doctor(api_base, log_text=log_text)
    write_doctor(config.out, doctor.diagnosis)
