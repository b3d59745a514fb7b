"""`picoclaw-vllm diagnose`: find what is wrong with a vLLM deployment and how to fix it."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console

from diagnostics.deadline import TIMEOUT_FACTOR, default_budget, process_start
from diagnostics.options import DiagnoseOptions
from diagnostics.server_runs import ServerLog, read_server_log
from diagnostics.watchdog import Watchdog
from picoclaw_vllm import argtypes, urls
from picoclaw_vllm.errors import UsageError
from picoclaw_vllm.nvml import GpuReader, RecordedReader

if TYPE_CHECKING:
    from diagnostics.runner import Diagnosis

HELP = "find what is wrong with a vLLM deployment and how to fix it"
DESCRIPTION = """\
Checks a vLLM server the way PicoClaw uses it: config, reachability, API key, model name,
max_tokens vs context, a real PicoClaw-shaped request, speed; reads a server log (--log,
--docker, --journal) down to its root cause; looks at local GPUs and the Hugging Face repo.
Each problem comes with its evidence and the exact fix.

Settings come from PicoClaw's config (--config, else $PICOCLAW_HOME/config.json, else
~/.picoclaw/config.json); flags override it. Exit status: 0 clean, 1 a failure (or a
warning with --strict), 2 usage or config error. `--list` shows every finding id.

It ends within --deadline (default 3 x --timeout: 30 s), counted from the process's start,
and about a second, however slow or overloaded the server: what the probes saw by then is
the diagnosis. A run that overruns it by more than 3 s prints one line and exits 1."""

# the newest lines of --docker/--journal: a week of a busy server; log_scan bounds the bytes
LOG_LINES = 2_000_000
LOG_COMMAND_TIMEOUT_S = 30.0
MAX_PROBE_REQUESTS = 100  # each is a 16-token stream: 100 of them fit the doctor's time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("what to diagnose")
    target.add_argument("--config", type=Path, metavar="PATH", help="PicoClaw config.json")
    target.add_argument("--api-base", metavar="URL", help="e.g. http://localhost:8000/v1")
    target.add_argument("--model", help="model as PicoClaw names it (vllm/ prefix allowed)")
    target.add_argument("--api-key", metavar="KEY", help="server key (default $VLLM_API_KEY)")
    target.add_argument("--timeout", type=argtypes.TIMEOUT_S, default=10.0, metavar="S",
                        help="bound on each probe request (default 10)")  # fmt: skip
    target.add_argument("--deadline", type=argtypes.TIMEOUT_S, metavar="S",
                        help="bound on the whole diagnosis: requests still waiting are "
                        f"cancelled and judged (default {TIMEOUT_FACTOR} x --timeout)")  # fmt: skip
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
                     "names: config fallbacks connection api_base health auth leftovers model "
                     "context tools completion tool_call tool_call_auto tool_result latency "
                     "prefix_cache host server_log gpu_memory memory_fit hub")  # fmt: skip


class _Head:
    """A binary stream that keeps the first bytes read through it (for an error message)."""

    def __init__(self, stream: IO[bytes], keep: int = 4096) -> None:
        self.stream, self.keep, self.head = stream, keep, b""

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        if len(self.head) < self.keep:
            self.head += data[: self.keep - len(self.head)]
        return data


def _run_log_command(cmd: list[str], what: str, source: str) -> ServerLog:
    """Stream cmd's output (stdout and stderr: vLLM logs to stderr) into the log reader."""
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError as e:
        raise UsageError(f"{what}: {cmd[0]} is not installed") from e
    timer = threading.Timer(LOG_COMMAND_TIMEOUT_S, proc.kill)
    timer.start()
    assert proc.stdout is not None
    head = _Head(proc.stdout)
    try:
        log = read_server_log(stream=head, source=source)  # type: ignore[arg-type]
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
        proc.stdout.close()
    if proc.returncode not in (0, -signal.SIGKILL) and log.scan.bytes_read < head.keep:
        text = head.head.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"{what}: {text[-1][:300] if text else f'exit {proc.returncode}'}")
    if proc.returncode == -signal.SIGKILL and log.scan.bytes_read == 0:
        raise UsageError(f"{what}: {cmd[0]} did not answer within {LOG_COMMAND_TIMEOUT_S:g} s")
    return log


def read_log(args: argparse.Namespace) -> ServerLog | None:
    """The server log of --log / --docker / --journal, read (bounded) at once."""
    if args.log == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text-only stdin (tests)
            return read_server_log(text=sys.stdin.read(), source="stdin")
        return read_server_log(stream=stream, source="stdin")
    if args.log:
        try:
            return read_server_log(path=Path(args.log), source=args.log)
        except OSError as e:
            raise UsageError(f"--log {args.log}: {e.strerror or e}") from e
    if args.docker:
        cmd = ["docker", "logs", "--tail", str(LOG_LINES), args.docker]
        return _run_log_command(cmd, f"--docker {args.docker}", f"docker logs {args.docker}")
    if args.journal:
        cmd = ["journalctl", "-u", args.journal, "-n", str(LOG_LINES), "--no-pager", "-o", "cat"]
        return _run_log_command(cmd, f"--journal {args.journal}", f"journal {args.journal}")
    return None


def options_from_args(args: argparse.Namespace, started_at: float | None = None) -> DiagnoseOptions:
    """started_at: the process's start when the doctor is the whole process (its budget
    then includes the start-up); None when called in-process."""
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
    server_log = read_log(args)
    return DiagnoseOptions(
        api_base=api_base,
        model=args.model,
        api_key=args.api_key,
        timeout_s=args.timeout,
        deadline_s=args.deadline,
        started_at=started_at,
        startup_s=None if started_at is None else getattr(args, "main_at", started_at) - started_at,
        config_path=args.config,
        server_log=server_log,
        log_source=server_log.scan.source if server_log else None,
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
    console = Console(highlight=False)
    if args.list:
        from diagnostics import render_console

        render_console.render_catalog(console)
        return 0
    if not getattr(args, "whole_process", False):  # in-process (tests): no watchdog may end it
        return _diagnose(args, console, None)
    # armed before the probes are imported and the log is read: both cost seconds on a
    # starved host, and the watchdog counts from the process's start whatever comes after
    started_at = process_start()
    watchdog = Watchdog(started_at, args.deadline or default_budget(args.timeout))
    watchdog.run(lambda: _diagnose(args, console, started_at))


def _diagnose(args: argparse.Namespace, console: Console, started_at: float | None) -> int:
    from diagnostics.runner import diagnose

    return _report(diagnose(options_from_args(args, started_at)), args, console)


def _report(diagnosis: Diagnosis, args: argparse.Namespace, console: Console) -> int:
    from diagnostics import render_console, render_json

    if args.json:
        sys.stdout.write(render_json.render(diagnosis) + "\n")
    else:
        render_console.render(diagnosis, console, verbose=args.verbose)
    sys.stdout.flush()
    return diagnosis.exit_code(strict=args.strict)
