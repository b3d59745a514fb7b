"""The load test's own options, added to Locust's parser (each also read from an env var).

    locust -f loadtests/chat.py --host http://localhost:8000 --headless -u 8 -r 8 -t 60s \\
        --prompt-tokens 256 --output-tokens 128 --records runs/my.jsonl

The API key option is masked in the web UI and never printed; without it the key comes from
VLLM_API_KEY or PicoClaw's config (see loadtests.api_key).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.arrivals import LOAD_MODES, LoadMode
from loadtests.request_builder import ENDPOINTS, USAGE_STATS, Endpoint, UsageStats

ENV_PREFIX = "PICOCLAW_LOAD_"


@dataclass(frozen=True)
class LoadOptions:
    model: str | None = None
    api_key: str | None = None
    prompt_tokens: int = 256
    output_tokens: int = 128
    stream: bool = True
    usage_stats: UsageStats = "final"
    endpoint: Endpoint = "chat"
    prompt_file: Path | None = None
    prompt_pool: int = 32
    seed: int = 0
    records: Path | None = None
    warmup_s: float = 0.0
    load_mode: LoadMode = "concurrency"
    rate: float | None = None
    burstiness: float = 1.0
    step_id: str = "locust"
    request_timeout_s: float = 600.0

    @classmethod
    def from_namespace(cls, ns: Any) -> LoadOptions:
        mode: LoadMode = ns.load_mode
        if mode == "rate" and not ns.rate:
            raise ValueError("--load-mode rate needs --rate (requests per second)")
        return cls(
            model=ns.model or None,
            api_key=ns.api_key or None,
            prompt_tokens=int(ns.prompt_tokens),
            output_tokens=int(ns.output_tokens),
            stream=ns.stream == "on",
            usage_stats=ns.usage_stats,
            endpoint=ns.endpoint,
            prompt_file=Path(ns.prompt_file) if ns.prompt_file else None,
            prompt_pool=int(ns.prompt_pool),
            seed=int(ns.seed),
            records=Path(ns.records) if ns.records else None,
            warmup_s=float(ns.warmup),
            load_mode=mode,
            rate=float(ns.rate) if ns.rate else None,
            burstiness=float(ns.burstiness),
            step_id=ns.step_id,
            request_timeout_s=float(ns.request_timeout),
        )

    def records_path(self) -> Path:
        return (
            self.records or Path("runs") / f"locust-records-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
        )


def add_arguments(parser: Any) -> None:
    """Add the options to a Locust (configargparse) parser; env vars are PICOCLAW_LOAD_*."""

    def opt(flag: str, **kw: Any) -> None:
        env = ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(flag, env_var=kw.pop("env_var", env), **kw)

    opt("--model", default="", help="served model name (default: first in /v1/models)")
    opt(
        "--api-key",
        default="",
        env_var="PICOCLAW_LOAD_API_KEY",
        is_secret=True,
        help="API key (default: VLLM_API_KEY, else PicoClaw's config); never printed",
    )
    opt("--prompt-tokens", type=int, default=256, help="synthetic prompt length in tokens")
    opt("--output-tokens", type=int, default=128, help="tokens per answer (ignore_eos)")
    opt("--stream", choices=["on", "off"], default="on", help="stream answers (SSE)")
    opt(
        "--usage-stats",
        choices=list(USAGE_STATS),
        default="final",
        help="streamed usage: final (like vllm bench serve) or continuous (every event)",
    )
    opt("--endpoint", choices=list(ENDPOINTS), default="chat", help="chat or completions")
    opt("--prompt-file", default="", help="JSONL / ShareGPT file instead of synthetic prompts")
    opt("--prompt-pool", type=int, default=32, help="distinct synthetic prompts per process")
    opt("--seed", type=int, default=0, help="seed for prompts and arrivals")
    opt("--records", default="", help="raw per-request records (JSONL) path")
    opt("--warmup", type=float, default=0.0, help="seconds at the start not counted")
    opt("--load-mode", choices=list(LOAD_MODES), default="concurrency", help="closed/open loop")
    opt("--rate", type=float, default=0.0, help="open loop: requests/s (Poisson)")
    opt("--burstiness", type=float, default=1.0, help="open loop: gamma shape (1 = Poisson)")
    opt("--step-id", default="locust", help="step id written into each record")
    opt("--request-timeout", type=float, default=600.0, help="seconds before a request fails")


def parse_for_test(argv: list[str]) -> LoadOptions:
    """Parse only these options (a plain argparse parser): for tests and tools."""

    class _Plain(argparse.ArgumentParser):
        def add_argument(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.pop("env_var", None)
            kwargs.pop("is_secret", None)
            return super().add_argument(*args, **kwargs)

    parser = _Plain()
    add_arguments(parser)
    return LoadOptions.from_namespace(parser.parse_args(argv))
