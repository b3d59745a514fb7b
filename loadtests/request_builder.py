"""The HTTP requests a load test sends: path, headers and JSON body for chat or completions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from picoclaw_vllm import urls

Endpoint = Literal["chat", "completions"]
ENDPOINTS: tuple[Endpoint, ...] = ("chat", "completions")

# Streamed usage: "final" asks for one usage event at the end (`include_usage`, as
# `vllm bench serve` does); "continuous" adds `continuous_usage_stats` (cumulative usage in
# every event: exact tokens per event, but it changes how a CPU vLLM delivers the stream,
# see benchmarks/results/continuous-usage-c1.md).
UsageStats = Literal["final", "continuous"]
USAGE_STATS: tuple[UsageStats, ...] = ("final", "continuous")


@dataclass(frozen=True)
class RequestSpec:
    model: str
    endpoint: Endpoint = "chat"
    stream: bool = True
    output_tokens: int = 128
    ignore_eos: bool = True
    temperature: float = 0.0
    usage_stats: UsageStats = "final"


def api_path(host: str, endpoint: Endpoint) -> str:
    """The request path; a host that already ends in /v1 (PicoClaw's api_base) is accepted."""
    prefix = "" if urls.ends_in_v1(host) else "/v1"
    return f"{prefix}/chat/completions" if endpoint == "chat" else f"{prefix}/completions"


def body(spec: RequestSpec, prompt: str | list[dict[str, str]]) -> dict[str, Any]:
    """The JSON body. A prompt given as messages is sent as is to chat, joined to completions."""
    data: dict[str, Any] = {
        "model": spec.model,
        "max_tokens": spec.output_tokens,
        "temperature": spec.temperature,
    }
    if spec.ignore_eos:
        data["ignore_eos"] = True  # vLLM extension: exactly max_tokens tokens
    if spec.endpoint == "chat":
        data["messages"] = (
            prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        )
    else:
        data["prompt"] = (
            prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
        )
    if spec.stream:
        data["stream"] = True
        data["stream_options"] = {"include_usage": True}
        if spec.usage_stats == "continuous":
            data["stream_options"]["continuous_usage_stats"] = True
    return data


def encoded_body(spec: RequestSpec, prompt: str | list[dict[str, str]]) -> str:
    return json.dumps(body(spec, prompt), separators=(",", ":"))


def headers(api_key: str | None, *, stream: bool) -> dict[str, str]:
    h = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
        "Accept-Encoding": "identity",
    }
    if api_key:
        h["Authorization"] = f"Bearer {api_key}"
    return h
