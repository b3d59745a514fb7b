"""`picoclaw-vllm report`: write the acceptance report (HTML, Markdown, JSON, JUnit) from a run."""

from __future__ import annotations

import argparse

from picoclaw_vllm.errors import UsageError

HELP = "write the acceptance report (HTML, Markdown, JSON, JUnit) from a run"
DESCRIPTION = HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def run(args: argparse.Namespace) -> int:
    raise UsageError("report is not built yet")
