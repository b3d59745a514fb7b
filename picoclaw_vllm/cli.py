"""Command line: parses, then calls the layer that does the work. Never shows a traceback."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn, Protocol

from picoclaw_vllm import __version__
from picoclaw_vllm.errors import PicoclawVllmError, UsageError
from picoclaw_vllm.redact import printable, redact

PROG = "picoclaw-vllm"


class Command(Protocol):
    DESCRIPTION: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# name -> (module implementing Command, one-line help). Only the module of the command being
# run is imported, so the doctor does not pay for pandas and matplotlib at start-up.
COMMANDS: dict[str, tuple[str, str]] = {
    "diagnose": (
        "diagnostics.command",
        "find what is wrong with a vLLM deployment and how to fix it",
    ),
    "sweep": (
        "sweeps.command",
        "measure throughput and latency across vLLM server settings",
    ),
    "report": (
        "reports.command",
        "write the acceptance report (HTML, Markdown, JSON, JUnit) from a run",
    ),
    "acceptance": (
        "picoclaw_vllm.acceptance_command",
        "doctor, sweep and report in one pre-deployment run",
    ),
    "load-options": (
        "loadtests.options_command",
        "list the options of the Locust load profile (locust -f loadtests/chat.py)",
    ),
    "plan": (
        "picoclaw_vllm.plan.command",
        "work out the vLLM flags that fit a model, GPUs and PicoClaw",
    ),
    "server": (
        "picoclaw_vllm.server.command",
        "set up the local CPU vLLM environment, or start a server and show it answering",
    ),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s own arguments are loaded (all of them when None)."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Troubleshoot and benchmark a vLLM server the way PicoClaw uses it: "
            "diagnose what is wrong, sweep load across server settings, and write "
            "a pre-deployment acceptance report."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name, help=help_text)
            continue
        module: Command = importlib.import_module(module_name)  # type: ignore[assignment,unused-ignore]
        p = sub.add_parser(
            name,
            help=help_text,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _command_in(argv: Sequence[str]) -> str:
    """The subcommand named in argv (the first positional word), or "" when none."""
    first = next((a for a in argv if not a.startswith("-")), "")
    return first if first in COMMANDS else ""


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _crash_report(exc: BaseException) -> Path | None:
    """A new file for each crash, made with O_EXCL and mode 0600 (mkstemp): a planted symlink
    or an earlier crash's file is never followed nor overwritten. None when none can be made."""
    try:
        fd, name = tempfile.mkstemp(prefix=f"{PROG}-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(redact("".join(traceback.format_exception(exc))))
    except OSError:
        return None
    return Path(name)


def main(argv: Sequence[str] | None = None) -> int:
    main_at = time.monotonic()  # the process's start-up ends here (the doctor measures it)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    whole_process = argv is None
    if whole_process:
        # a shell starts background jobs with SIGINT ignored, and Python then never raises
        # KeyboardInterrupt: a first Ctrl-C (or kill -INT) must stop the tool all the same
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        parser = build_parser(_command_in(argv))
        args = parser.parse_args(argv)
        args.whole_process = whole_process  # the command is this process: time from its start
        args.main_at = main_at
        run: Callable[[argparse.Namespace], int] | None = getattr(args, "_run", None)
        if run is None:
            parser.print_help()
            return 2
        return run(args)
    except PicoclawVllmError as e:
        print(f"{PROG}: error: {printable(redact(str(e)))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # the last line of defence: one line, details on disk
        path = _crash_report(e)
        where = f"details in {path}" if path else "no crash file could be written"
        print(
            f"{PROG}: internal error: {type(e).__name__}: "
            f"{printable(redact(str(e)))[:300]} ({where})",
            file=sys.stderr,
        )
        return 1
