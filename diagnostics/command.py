"""`picoclaw-vllm diagnose`: find what is wrong with a vLLM deployment and how to fix it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from diagnostics.options import DiagnoseOptions
from diagnostics.probes.nvml import GpuReader, RecordedReader
from picoclaw_vllm import argtypes, urls
from picoclaw_vllm.errors import UsageError

HELP = "find what is wrong with a vLLM deployment and how to fix it"
DESCRIPTION = """\
Checks a vLLM server the way PicoClaw uses it: config, reachability, API key, model name,
max_tokens vs context, a real PicoClaw-shaped request, speed; reads a server log (--log,
--docker, --journal) down to its root cause; looks at local GPUs and the Hugging Face repo.
Each problem comes with its evidence and the exact fix.

Settings come from PicoClaw's config (--config, else $PICOCLAW_HOME/config.json, else
~/.picoclaw/config.json); flags override it. Exit status: 0 clean, 1 a failure (or a
warning with --strict), 2 usage or config error. `--list` shows every finding id."""

LOG_LINES = 5000
MAX_PROBE_REQUESTS = 100  # each is a 16-token stream: 100 of them fit the doctor's time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("what to diagnose")
    target.add_argument("--config", type=Path, metavar="PATH", help="PicoClaw config.json")
    target.add_argument("--api-base", metavar="URL", help="e.g. http://localhost:8000/v1")
    target.add_argument("--model", help="model as PicoClaw names it (vllm/ prefix allowed)")
    target.add_argument("--api-key", metavar="KEY", help="server key (default $VLLM_API_KEY)")
    target.add_argument("--timeout", type=argtypes.TIMEOUT_S, default=10.0, metavar="S",
                        help="bound on each probe request (default 10)")  # fmt: skip
    logs = target.add_mutually_exclusive_group()
    logs.add_argument("--log", metavar="FILE", help="vLLM server log ('-' reads stdin)")
    logs.add_argument("--docker", metavar="CONTAINER", help="read `docker logs CONTAINER`")
    logs.add_argument("--journal", metavar="UNIT", help="read `journalctl -u UNIT`")
    tuning = parser.add_argument_group("thresholds and server plans")
    tuning.add_argument(
        "--ttft-threshold",
        type=argtypes.POSITIVE,
        default=2.0,
        metavar="S",
        help="time to first token above this is slow (default 2)",
    )
    tuning.add_argument(
        "--itl-threshold",
        type=argtypes.POSITIVE,
        default=0.2,
        metavar="S",
        help="time between tokens above this is slow (default 0.2)",
    )
    tuning.add_argument("--probe-requests", type=argtypes.integer(1, MAX_PROBE_REQUESTS),
                        default=3, metavar="N", help="streaming requests timed for speed "
                        f"(default 3, at most {MAX_PROBE_REQUESTS})")  # fmt: skip
    tuning.add_argument("--gpu-memory-utilization", type=argtypes.FRACTION, default=0.9,
                        metavar="F",
                        help="the server's (planned) setting, for GPU memory checks")  # fmt: skip
    tuning.add_argument("--max-model-len", type=argtypes.POSITIVE_INT, metavar="N",
                        help="the server's (planned) setting, for the fit prediction")  # fmt: skip
    tuning.add_argument("--model-path", type=Path, metavar="DIR",
                        help="local model folder, for the fit prediction")  # fmt: skip
    tuning.add_argument("--no-hub", action="store_true", help="do not ask the Hugging Face Hub")
    tuning.add_argument("--gpu-recording", type=Path, metavar="FILE",
                        help="recorded NVML readings (JSON) to judge instead")  # fmt: skip
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="versioned JSON document on stdout")
    out.add_argument("-v", "--verbose", action="store_true", help="show probe details")
    out.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    out.add_argument("--list", action="store_true", help="list every finding id and exit")
    out.add_argument("--check", action="append", default=[], metavar="NAME",
                     help="run only this check (and what it needs); repeatable; "
                     "names: config fallbacks connection api_base health auth model context "
                     "tools completion tool_call latency server_log gpu_memory memory_fit "
                     "hub")  # fmt: skip


def _run_log_command(cmd: list[str], what: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, errors="replace")
    except FileNotFoundError as e:
        raise UsageError(f"{what}: {cmd[0]} is not installed") from e
    except subprocess.TimeoutExpired as e:
        raise UsageError(f"{what}: {cmd[0]} did not answer within 30 s") from e
    if done.returncode != 0:
        raise UsageError(f"{what}: {done.stderr.strip()[:300] or f'exit {done.returncode}'}")
    return done.stdout + done.stderr


def read_log(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(log text, where it came from) for --log / --docker / --journal."""
    if args.log == "-":
        return sys.stdin.read(), "stdin"
    if args.log:
        try:
            return Path(args.log).read_text(encoding="utf-8", errors="replace"), args.log
        except OSError as e:
            raise UsageError(f"--log {args.log}: {e.strerror or e}") from e
    if args.docker:
        cmd = ["docker", "logs", "--tail", str(LOG_LINES), args.docker]
        return _run_log_command(cmd, f"--docker {args.docker}"), f"docker logs {args.docker}"
    if args.journal:
        cmd = ["journalctl", "-u", args.journal, "-n", str(LOG_LINES), "--no-pager", "-o", "cat"]
        return _run_log_command(cmd, f"--journal {args.journal}"), f"journal {args.journal}"
    return None, None


def options_from_args(args: argparse.Namespace) -> DiagnoseOptions:
    from diagnostics.runner import CHECKS_BY_NAME

    unknown = [c for c in args.check if c not in CHECKS_BY_NAME]
    if unknown:
        raise UsageError(f"unknown check {unknown[0]!r}; checks: {', '.join(CHECKS_BY_NAME)}")
    api_base = args.api_base
    if api_base is not None:
        try:
            api_base = urls.check_api_base(api_base)
        except urls.BadUrl as e:
            raise UsageError(str(e)) from None
    log_text, log_source = read_log(args)
    return DiagnoseOptions(
        api_base=api_base,
        model=args.model,
        api_key=args.api_key,
        timeout_s=args.timeout,
        config_path=args.config,
        log_text=log_text,
        log_source=log_source,
        ttft_threshold_s=args.ttft_threshold,
        itl_threshold_s=args.itl_threshold,
        probe_requests=args.probe_requests,
        gpu_memory_utilization=args.gpu_memory_utilization,
        max_model_len=args.max_model_len,
        model_path=args.model_path,
        check_hub=not args.no_hub,
        checks=tuple(args.check),
        gpu_reader=_recording(args.gpu_recording),
    )


def _recording(path: Path | None) -> GpuReader | None:
    if path is None:
        return None
    try:
        return RecordedReader.from_file(path)
    except (OSError, ValueError) as e:
        raise UsageError(f"--gpu-recording {path}: {e}") from e


def run(args: argparse.Namespace) -> int:
    from diagnostics import render_console, render_json
    from diagnostics.runner import diagnose

    console = Console(highlight=False)
    if args.list:
        render_console.render_catalog(console)
        return 0
    diagnosis = diagnose(options_from_args(args))
    if args.json:
        sys.stdout.write(render_json.render(diagnosis) + "\n")
    else:
        render_console.render(diagnosis, console, verbose=args.verbose)
    return diagnosis.exit_code(strict=args.strict)
