"""`picoclaw-vllm diagnose`: find what is wrong with a vLLM deployment and how to fix it."""

from __future__ import annotations

import argparse

from picoclaw_vllm.errors import UsageError

HELP = "find what is wrong with a vLLM deployment and how to fix it"
DESCRIPTION = HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def run(args: argparse.Namespace) -> int:
    raise UsageError("diagnose is not built yet")
