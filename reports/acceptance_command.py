"""`picoclaw-vllm acceptance`: doctor, sweep and report in one pre-deployment run."""

from __future__ import annotations

import argparse

from picoclaw_vllm.errors import UsageError

HELP = "doctor, sweep and report in one pre-deployment run"
DESCRIPTION = HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def run(args: argparse.Namespace) -> int:
    raise UsageError("acceptance is not built yet")
