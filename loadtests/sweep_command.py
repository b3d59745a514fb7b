"""`picoclaw-vllm sweep`: measure throughput and latency across vLLM server settings."""

from __future__ import annotations

import argparse

from picoclaw_vllm.errors import UsageError

HELP = "measure throughput and latency across vLLM server settings"
DESCRIPTION = HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def run(args: argparse.Namespace) -> int:
    raise UsageError("sweep is not built yet")
