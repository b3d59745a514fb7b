"""How much GPU memory a model needs: weights plus the KV cache for one max-length request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 1024**3
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8": 1, "int8": 1}
OVERHEAD_GIB = 1.0  # activations, CUDA graphs and the CUDA context, roughly


@dataclass(frozen=True)
class ModelSize:
    weights_gib: float
    kv_bytes_per_token: int
    source: str

    def kv_gib(self, tokens: int) -> float:
        return self.kv_bytes_per_token * tokens / GIB

    def needed_gib(self, tokens: int) -> float:
        return self.weights_gib + self.kv_gib(tokens) + OVERHEAD_GIB

    def max_tokens_within(self, budget_gib: float) -> int:
        room = budget_gib - self.weights_gib - OVERHEAD_GIB
        return max(0, int(room * GIB / self.kv_bytes_per_token)) if room > 0 else 0


def _dtype_bytes(config: dict[str, Any]) -> int:
    name = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")
    return DTYPE_BYTES.get(name, 2)


def kv_bytes_per_token(config: dict[str, Any]) -> int | None:
    try:
        layers = int(config["num_hidden_layers"])
        heads = int(config["num_attention_heads"])
        kv_heads = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return 2 * layers * kv_heads * head_dim * _dtype_bytes(config)


def from_dir(path: Path) -> ModelSize | None:
    """A local model folder: config.json and the sizes of its safetensors files."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    kv = kv_bytes_per_token(config) if isinstance(config, dict) else None
    files = list(path.glob("*.safetensors"))
    if kv is None or not files:
        return None
    weights = sum(f.stat().st_size for f in files) / GIB
    return ModelSize(weights, kv, f"{path} ({len(files)} safetensors files)")


def from_hub(repo: str, parameters: int | None, config: dict[str, Any] | None) -> ModelSize | None:
    """The Hub's safetensors parameter count and the repo's config.json."""
    if not parameters or not config:
        return None
    kv = kv_bytes_per_token(config)
    if kv is None:
        return None
    weights = parameters * _dtype_bytes(config) / GIB
    return ModelSize(weights, kv, f"{repo} on the Hub ({parameters / 1e9:.2f}B parameters)")


def max_position(config_dir: Path | None, config: dict[str, Any] | None) -> int | None:
    if config is None and config_dir is not None:
        try:
            config = json.loads((config_dir / "config.json").read_text())
        except (OSError, ValueError):
            return None
    value = (config or {}).get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None
