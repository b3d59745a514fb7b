"""How much GPU memory a model needs: the one estimator of the doctor's memory-fit check and
of `picoclaw-vllm plan`.

Weights (from the safetensors files, the Hub's parameter count, or the parameters counted from
config.json), KV bytes per token (layers x KV heads x head dim x 2 x element size, per
tensor-parallel rank), and a fixed reserve for activations, CUDA graphs and the CUDA context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 1024**3
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8": 1, "int8": 1}
OVERHEAD_GIB = 1.0  # activations, CUDA graphs and the CUDA context, roughly
# vLLM's --kv-cache-dtype values and their element size ("auto": the model's dtype)
KV_CACHE_DTYPE_BYTES = {"fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "bfloat16": 2, "float16": 2}
# rope scaling types whose factor vLLM does not multiply into the derived max_model_len
# (vllm/config/model.py: _get_and_verify_max_len)
_ROPE_TYPES_NOT_SCALING_LENGTH = ("su", "longrope", "llama3", "default", "mrope")


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


def dtype_name(config: dict[str, Any]) -> str:
    return str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")


def dtype_bytes(config: dict[str, Any]) -> int:
    return DTYPE_BYTES.get(dtype_name(config), 2)


def serving_dtype(config: dict[str, Any], asked: str = "auto") -> str:
    """The dtype vLLM computes in: the one asked for, else the checkpoint's, with float32
    checkpoints downcast to bfloat16 (vllm/config/model.py: _resolve_auto_dtype)."""
    if asked != "auto":
        return {"half": "float16", "float": "float32"}.get(asked, asked)
    name = dtype_name(config)
    return "bfloat16" if name == "float32" else name


@dataclass(frozen=True)
class Attention:
    """The attention shape that sizes the KV cache."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int


def attention(config: dict[str, Any]) -> Attention | None:
    try:
        layers = int(config["num_hidden_layers"])
        heads = int(config["num_attention_heads"])
        kv_heads = int(config.get("num_key_value_heads") or heads)
        head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return Attention(layers, heads, kv_heads, head_dim)


def kv_heads_per_rank(kv_heads: int, tp: int) -> int:
    """vLLM splits the KV heads over the ranks, or replicates them when there are fewer heads
    than ranks (each rank then holds one)."""
    return max(1, kv_heads // tp)


def kv_bytes_per_token(
    config: dict[str, Any], tp: int = 1, element_bytes: int | None = None
) -> int | None:
    """Bytes of KV cache one token takes on one tensor-parallel rank."""
    shape = attention(config)
    if shape is None:
        return None
    size = element_bytes or dtype_bytes(config)
    return 2 * shape.layers * kv_heads_per_rank(shape.kv_heads, tp) * shape.head_dim * size


def tp_sizes(config: dict[str, Any], gpus: int) -> list[int]:
    """The tensor-parallel sizes up to `gpus` that vLLM accepts: they divide the attention
    heads, and the KV heads divide them or they divide the KV heads."""
    shape = attention(config)
    if shape is None:
        return []
    return [
        tp
        for tp in range(1, gpus + 1)
        if shape.heads % tp == 0 and (shape.kv_heads % tp == 0 or tp % shape.kv_heads == 0)
    ]


def _int(config: dict[str, Any], *keys: str) -> int:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    raise KeyError(keys[0])


def parameters(config: dict[str, Any]) -> int | None:
    """Parameters of a decoder-only transformer (Llama, Qwen2, Mistral, Mixtral and alike)
    counted from its config: embeddings, attention (with Qwen2's q/k/v biases), the gated MLP
    or its experts, norms and the output head. None when the config lacks a size."""
    shape = attention(config)
    try:
        hidden = _int(config, "hidden_size")
        vocab = _int(config, "vocab_size")
        intermediate = _int(config, "intermediate_size")
    except KeyError:
        return None
    if shape is None:
        return None
    q = shape.heads * shape.head_dim
    kv = shape.kv_heads * shape.head_dim
    attn = hidden * q + 2 * hidden * kv + q * hidden
    if config.get("attention_bias") or config.get("model_type") == "qwen2":
        attn += q + 2 * kv
    experts = config.get("num_local_experts") or config.get("num_experts")
    if isinstance(experts, int) and experts > 1:
        expert_size = config.get("moe_intermediate_size") or intermediate
        mlp = experts * 3 * hidden * int(expert_size) + hidden * experts
        shared = config.get("shared_expert_intermediate_size")
        if isinstance(shared, int) and shared > 0:
            mlp += 3 * hidden * shared + hidden
    else:
        mlp = 3 * hidden * intermediate
    per_layer = attn + mlp + 2 * hidden
    head = 0 if config.get("tie_word_embeddings") else vocab * hidden
    return vocab * hidden + shape.layers * per_layer + hidden + head


def quantized_bits(config: dict[str, Any]) -> tuple[str, float] | None:
    """(method, bits per weight) of a quantized checkpoint's linear layers, from its
    quantization_config; None for an unquantized one."""
    quant = config.get("quantization_config")
    if not isinstance(quant, dict):
        return None
    method = str(quant.get("quant_method") or "unknown")
    bits = quant.get("bits") or quant.get("w_bit")
    if isinstance(bits, int | float) and bits > 0:
        return method, float(bits)
    if "fp8" in method or "fp8" in str(quant.get("fmt", "")):
        return method, 8.0
    return method, 16.0


def weights_bytes_from_config(config: dict[str, Any]) -> int | None:
    """The weights' bytes from the parameter count: every weight at the checkpoint's dtype,
    or, when quantized, the layers' weights at the quantized bits (embeddings and output head
    stay at the dtype; scales and zero points are left out)."""
    count = parameters(config)
    if count is None:
        return None
    element = dtype_bytes(config)
    quant = quantized_bits(config)
    if quant is None:
        return count * element
    hidden = int(config["hidden_size"])
    vocab = int(config["vocab_size"])
    outer = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return int(outer * element + (count - outer) * quant[1] / 8)


def max_context(config: dict[str, Any]) -> int | None:
    """The longest context vLLM derives from the config: max_position_embeddings, times the
    rope scaling factor for the types that extend it (yarn, dynamic, linear)."""
    value = config.get("max_position_embeddings")
    if not isinstance(value, int):
        return None
    rope = config.get("rope_scaling")
    if isinstance(rope, dict):
        kind = str(rope.get("rope_type") or rope.get("type") or "default")
        factor = rope.get("factor")
        if kind not in _ROPE_TYPES_NOT_SCALING_LENGTH and isinstance(factor, int | float):
            original = rope.get("original_max_position_embeddings")
            base = original if isinstance(original, int) and kind == "yarn" else value
            return int(base * factor)
    return value


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
    weights = parameters * dtype_bytes(config) / GIB
    return ModelSize(weights, kv, f"{repo} on the Hub ({parameters / 1e9:.2f}B parameters)")


def max_position(config_dir: Path | None, config: dict[str, Any] | None) -> int | None:
    if config is None and config_dir is not None:
        try:
            config = json.loads((config_dir / "config.json").read_text())
        except (OSError, ValueError):
            return None
    value = (config or {}).get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None
