"""The embedded default: the tiny local model on the CPU vLLM, with the flags that work here."""

from __future__ import annotations

import socket

from picoclaw_vllm.paths import TINY_MODEL_NAME, cpu_python, tiny_model_dir
from picoclaw_vllm.server.backends import LocalBackend
from picoclaw_vllm.server.build_tiny_model import MAX_POSITIONS
from picoclaw_vllm.server.settings import ServerSettings

# Room for PicoClaw's default max_tokens (32768) plus its system prompt, tool schemas and a
# long history on the tiny model's byte-level tokenizer (about 1.4 characters a token).
EMBEDDED_MAX_MODEL_LEN = MAX_POSITIONS
# PicoClaw's requests carry tools with tool_choice "auto": vLLM needs both flags for them;
# the tiny model's chat template writes Hermes-style <tool_call> markup. The prompt tokens
# taken from the prefix cache are reported per request (usage.prompt_tokens_details).
EMBEDDED_TOOL_ARGS = (
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "hermes",
    "--enable-prompt-tokens-details",
)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def embedded_settings(port: int | None = None, **overrides: object) -> ServerSettings:
    settings = ServerSettings(
        model=str(tiny_model_dir()),
        served_model_name=TINY_MODEL_NAME,
        host="127.0.0.1",
        port=port or free_port(),
        max_model_len=EMBEDDED_MAX_MODEL_LEN,
        max_num_seqs=8,
        dtype="float32",
        gpu_memory_utilization=0.1,
        extra_args=EMBEDDED_TOOL_ARGS,
    )
    return settings.with_(**overrides) if overrides else settings


def embedded_backend() -> LocalBackend:
    return LocalBackend(python=str(cpu_python()), cpu=True)
