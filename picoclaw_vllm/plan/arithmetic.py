"""The memory plan, step by step: weights, KV bytes per token, memory left for the KV cache,
KV tokens, the context PicoClaw needs, the largest --max-model-len, full-context sessions and
hence --max-num-seqs, for each tensor-parallel size that divides the heads.

Every figure is a Step: a value with the formula that made it (`--explain` prints them).
The estimator is picoclaw_vllm.model_memory, the one the doctor's memory-fit check uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from picoclaw_vllm import model_memory
from picoclaw_vllm.model_memory import GIB
from picoclaw_vllm.plan.picoclaw_needs import PicoclawNeeds

DEFAULT_BLOCK_SIZE = 16  # vLLM's KV cache block on a GPU
DEFAULT_RESERVE = model_memory.OVERHEAD_GIB
MAX_NUM_SEQS_CAP = 256  # vLLM's own default --max-num-seqs
ROUND_TOKENS = 1024  # a planned --max-model-len is a multiple of this, as the doctor suggests

FITS = "fits"
REDUCED = "reduced"  # starts and serves PicoClaw's first request, with less than asked
DOES_NOT_FIT = "does_not_fit"


@dataclass(frozen=True)
class Inputs:
    config: dict[str, Any]
    weights_bytes: int
    weights_formula: str
    needs: PicoclawNeeds
    gpus: int
    gpu_gib: float
    gpu_memory_utilization: float = 0.9
    reserve_gib: float = model_memory.OVERHEAD_GIB
    kv_cache_gib: float | None = None  # given KV memory per rank (CPU: VLLM_CPU_KVCACHE_SPACE)
    kv_cache_dtype: str = "auto"
    dtype: str = "bfloat16"  # what vLLM computes in (model_memory.serving_dtype)
    dtype_flag: str | None = None  # the --dtype to pass vLLM; None: its default (auto)
    block_size: int = DEFAULT_BLOCK_SIZE
    max_model_len: int | None = None  # asked for; None: what PicoClaw needs

    def with_(self, **changes: Any) -> Inputs:
        return replace(self, **changes)


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    value: float | int | str
    unit: str
    formula: str


@dataclass(frozen=True)
class Layout:
    """One tensor-parallel size worked through."""

    tp: int
    steps: tuple[Step, ...]
    weights_gib_per_gpu: float
    kv_gib_per_gpu: float
    kv_tokens: int
    model_max_len: int | None
    largest_max_model_len: int
    max_model_len: int  # planned; 0 when nothing fits
    concurrency: float  # vLLM's "Maximum concurrency for max_model_len tokens per request"
    full_sessions: int
    max_num_seqs: int
    iterations_fit: int  # agent iterations that fit beside the first request and max_tokens
    status: str
    why: tuple[str, ...]  # what falls short, in words

    def step(self, key: str) -> Step:
        return next(s for s in self.steps if s.key == key)


def kv_element_bytes(inputs: Inputs) -> int:
    if inputs.kv_cache_dtype == "auto":
        return model_memory.DTYPE_BYTES.get(inputs.dtype, 2)
    return model_memory.KV_CACHE_DTYPE_BYTES.get(inputs.kv_cache_dtype, 2)


def round_up(tokens: int) -> int:
    return -(-tokens // ROUND_TOKENS) * ROUND_TOKENS


def _gib(value: float) -> float:
    return round(value, 3)


def layout(inputs: Inputs, tp: int) -> Layout:
    shape = model_memory.attention(inputs.config)
    if shape is None:
        raise ValueError("config.json lacks num_hidden_layers / num_attention_heads")
    needs = inputs.needs
    steps: list[Step] = []

    def add(key: str, label: str, value: float | int | str, unit: str, formula: str) -> None:
        steps.append(Step(key, label, value, unit, formula))

    weights = inputs.weights_bytes / GIB
    add("weights", "weight memory", _gib(weights), "GiB", inputs.weights_formula)
    per_gpu = weights / tp
    add(
        "weights_per_gpu",
        "weights on each GPU",
        _gib(per_gpu),
        "GiB",
        f"{weights:.3f} GiB / TP {tp}",
    )
    elem = kv_element_bytes(inputs)
    heads = model_memory.kv_heads_per_rank(shape.kv_heads, tp)
    per_token = 2 * shape.layers * heads * shape.head_dim * elem
    heads_note = (
        f"{shape.kv_heads} KV heads / TP {tp}"
        if shape.kv_heads >= tp
        else f"{shape.kv_heads} KV heads replicated: 1 per rank at TP {tp}"
    )
    add(
        "kv_bytes_per_token",
        "KV bytes per token on each GPU",
        per_token,
        "B",
        f"{shape.layers} layers x {heads} KV heads ({heads_note}) x {shape.head_dim} head dim "
        f"x 2 (K and V) x {elem} B ({inputs.kv_cache_dtype} KV cache"
        + (f" = {inputs.dtype})" if inputs.kv_cache_dtype == "auto" else ")"),
    )
    if inputs.kv_cache_gib is not None:
        kv_gib = inputs.kv_cache_gib
        add(
            "kv_memory_per_gpu",
            "memory for the KV cache on each rank",
            _gib(kv_gib),
            "GiB",
            "given (--kv-cache-gib; the CPU backend's VLLM_CPU_KVCACHE_SPACE)",
        )
    else:
        budget = inputs.gpu_gib * inputs.gpu_memory_utilization
        add(
            "gpu_budget",
            "vLLM's share of each GPU",
            _gib(budget),
            "GiB",
            f"{inputs.gpu_gib:.2f} GiB x --gpu-memory-utilization {inputs.gpu_memory_utilization}",
        )
        kv_gib = budget - per_gpu - inputs.reserve_gib
        add(
            "kv_memory_per_gpu",
            "memory left for the KV cache on each GPU",
            _gib(kv_gib),
            "GiB",
            f"{budget:.3f} GiB - weights {per_gpu:.3f} GiB - activation/CUDA-graph reserve "
            f"{inputs.reserve_gib:g} GiB",
        )
    block_bytes = per_token * inputs.block_size
    blocks = max(0, math.floor(kv_gib * GIB / block_bytes)) if kv_gib > 0 else 0
    kv_tokens = blocks * inputs.block_size
    add(
        "kv_tokens_per_gpu",
        "KV tokens each GPU holds",
        kv_tokens,
        "tokens",
        f"floor({kv_gib:.3f} GiB / ({per_token} B x {inputs.block_size}-token blocks)) = "
        f"{blocks} blocks x {inputs.block_size}",
    )
    add(
        "kv_tokens",
        "KV tokens across the TP ranks",
        kv_tokens,
        "tokens",
        f"each of the {tp} ranks holds its share of the KV heads of every token: the same "
        f"{kv_tokens} tokens",
    )
    add(
        "prompt_tokens",
        "PicoClaw's first request",
        needs.prompt_tokens,
        "tokens",
        f"system prompt + 17 tool schemas + one user message, counted with {needs.counted_with}",
    )
    add(
        "iteration_tokens",
        "what each agent iteration adds",
        needs.iteration_tokens,
        "tokens",
        "one assistant tool call + its 2,000-character tool result, resent on every call",
    )
    need = needs.context
    add(
        "context_needed",
        "the context PicoClaw needs",
        need,
        "tokens",
        f"prompt {needs.prompt_tokens} + {needs.iterations} iterations x "
        f"{needs.iteration_tokens} + max_tokens {needs.max_tokens}",
    )
    model_max = model_memory.max_context(inputs.config)
    add(
        "model_max_len",
        "the model's longest context",
        model_max or "unknown",
        "tokens",
        "max_position_embeddings, times the rope scaling factor where vLLM applies it",
    )
    largest = min(kv_tokens, model_max) if model_max else kv_tokens
    add(
        "largest_max_model_len",
        "the largest --max-model-len that fits",
        largest,
        "tokens",
        f"min(KV tokens {kv_tokens}, model's context {model_max or 'unknown'}): vLLM refuses "
        "to start when one request of --max-model-len does not fit the KV cache",
    )
    wanted = inputs.max_model_len or round_up(need)
    planned = min(wanted, largest)
    add(
        "max_model_len",
        "planned --max-model-len",
        planned,
        "tokens",
        (f"asked {wanted}" if inputs.max_model_len else f"{need} rounded up to {wanted}")
        + (f", cut to the largest that fits {largest}" if planned < wanted else ""),
    )
    per_request = math.ceil(planned / inputs.block_size) if planned else 0
    concurrency = blocks / per_request if per_request else 0.0
    full = math.floor(concurrency)
    add(
        "concurrency",
        "vLLM's maximum concurrency at --max-model-len",
        round(concurrency, 2),
        "x",
        f"{blocks} blocks / ceil({planned} / {inputs.block_size}) blocks a request",
    )
    add(
        "kv_tokens_logged",
        'vLLM\'s logged "KV cache size"',
        int(concurrency * planned),
        "tokens",
        f"int({concurrency:.4f} x {planned}): vLLM logs the concurrency times --max-model-len, "
        "so a length that is not a whole number of blocks logs fewer tokens than it holds",
    )
    add(
        "full_sessions",
        "full-context sessions at once",
        full,
        "session(s)",
        f"floor({concurrency:.2f})",
    )
    seqs = min(max(full, 1), MAX_NUM_SEQS_CAP) if full else 0
    add(
        "max_num_seqs",
        "planned --max-num-seqs",
        seqs,
        "sequences",
        f"the full-context sessions, at most vLLM's default {MAX_NUM_SEQS_CAP}",
    )
    room = planned - needs.prompt_tokens - needs.max_tokens
    fit_iterations = max(0, room // needs.iteration_tokens) if needs.iteration_tokens else 0
    add(
        "iterations_fit",
        "agent iterations that fit",
        fit_iterations,
        "iterations",
        f"({planned} - prompt {needs.prompt_tokens} - max_tokens {needs.max_tokens}) // "
        f"{needs.iteration_tokens}",
    )
    why: list[str] = []
    if kv_gib <= 0:
        why.append(
            f"the weights ({per_gpu:.2f} GiB a GPU) and the {inputs.reserve_gib:g} GiB reserve "
            f"leave no memory for the KV cache"
        )
    elif planned < needs.prompt_tokens + needs.max_tokens:
        why.append(
            f"the first request with max_tokens needs {needs.prompt_tokens + needs.max_tokens} "
            f"tokens; at most {largest} fit"
            + (
                " (the model's context)"
                if model_max and largest == model_max
                else " (the KV cache)"
            )
        )
    if kv_gib > 0 and planned >= needs.prompt_tokens + needs.max_tokens:
        if fit_iterations < needs.iterations:
            why.append(f"{fit_iterations} of the {needs.iterations} agent iterations fit")
        if full < needs.sessions:
            why.append(f"{full} of the {needs.sessions} sessions fit at full context")
    if kv_gib <= 0 or planned < needs.prompt_tokens + needs.max_tokens or full < 1:
        status = DOES_NOT_FIT
    else:
        status = REDUCED if why else FITS
    return Layout(
        tp,
        tuple(steps),
        per_gpu,
        kv_gib,
        kv_tokens,
        model_max,
        largest,
        planned if full else 0,
        concurrency,
        full,
        seqs,
        fit_iterations,
        status,
        tuple(why),
    )


@dataclass(frozen=True)
class Plan:
    inputs: Inputs
    tp_sizes: tuple[int, ...]  # those up to the GPU count that divide the heads
    layouts: tuple[Layout, ...]
    chosen: Layout | None  # the smallest TP that fits, else the best that starts, else None
    remedies: tuple[str, ...]

    @property
    def status(self) -> str:
        return self.chosen.status if self.chosen else DOES_NOT_FIT


_RANK = {FITS: 0, REDUCED: 1, DOES_NOT_FIT: 2}


def _best(layouts: list[Layout]) -> Layout | None:
    startable = [lay for lay in layouts if lay.status != DOES_NOT_FIT]
    if not startable:
        return max(layouts, key=lambda lay: lay.largest_max_model_len, default=None)
    return min(startable, key=lambda lay: (_RANK[lay.status], lay.tp))


def _choose(inputs: Inputs) -> tuple[tuple[int, ...], list[Layout], Layout | None]:
    sizes = tuple(model_memory.tp_sizes(inputs.config, inputs.gpus))
    layouts = [layout(inputs, tp) for tp in sizes]
    return sizes, layouts, _best(layouts)


def make_plan(inputs: Inputs) -> Plan:
    sizes, layouts, chosen = _choose(inputs)
    remedies = () if chosen and chosen.status == FITS else tuple(_remedies(inputs, chosen))
    return Plan(inputs, sizes, tuple(layouts), chosen, remedies)


def _fits(inputs: Inputs) -> Layout | None:
    chosen = _choose(inputs)[2]
    return chosen if chosen and chosen.status == FITS else None


def _remedies(inputs: Inputs, chosen: Layout | None) -> list[str]:
    """What would make the whole plan fit, each worked through with the same arithmetic."""
    found: list[str] = []
    needs = inputs.needs
    tp = chosen.tp if chosen else 1
    model_max = model_memory.max_context(inputs.config)
    first = needs.prompt_tokens + needs.max_tokens
    if model_max is not None and first > model_max:
        found.append(
            f"a model with a longer context: this one's is {model_max} tokens, PicoClaw's first "
            f"request with max_tokens {needs.max_tokens} needs {first}"
        )
    # a smaller context: fewer iterations, a smaller max_tokens
    for iterations in range(needs.iterations - 1, -1, -1):
        if _fits(inputs.with_(needs=replace(needs, iterations=iterations))):
            found.append(
                f"allow {iterations} agent iterations instead of {needs.iterations} "
                f"(--iterations {iterations}; PicoClaw's max_tool_iterations)"
            )
            break
    for max_tokens in (16384, 8192, 4096, 2048):
        if max_tokens < needs.max_tokens and _fits(
            inputs.with_(needs=replace(needs, max_tokens=max_tokens))
        ):
            found.append(f"set PicoClaw's max_tokens to {max_tokens} (--max-tokens {max_tokens})")
            break
    if needs.sessions > 1:
        for sessions in range(needs.sessions - 1, 0, -1):
            if _fits(inputs.with_(needs=replace(needs, sessions=sessions))):
                found.append(f"plan for {sessions} concurrent sessions instead of {needs.sessions}")
                break
    if inputs.kv_cache_dtype == "auto" and kv_element_bytes(inputs) > 1:
        fp8 = _fits(inputs.with_(kv_cache_dtype="fp8"))
        if fp8:
            found.append(
                f"an fp8 KV cache (--kv-cache-dtype fp8): {fp8.kv_tokens} KV tokens at TP {fp8.tp}"
            )
    if model_memory.quantized_bits(inputs.config) is None:
        four_bit = {**inputs.config, "quantization_config": {"quant_method": "awq", "bits": 4}}
        weights = model_memory.weights_bytes_from_config(four_bit)
        if weights is not None:
            q = _fits(
                inputs.with_(
                    config=four_bit, weights_bytes=weights, weights_formula="4-bit estimate"
                )
            )
            if q:
                found.append(
                    f"a 4-bit quantized variant (AWQ/GPTQ, about {weights / GIB:.1f} "
                    f"GiB of weights) at TP {q.tp}"
                )
    if inputs.kv_cache_gib is None:
        for gpus in range(inputs.gpus + 1, 9):
            more = _fits(inputs.with_(gpus=gpus))
            if more and more.tp > inputs.gpus:
                found.append(
                    f"{more.tp} GPUs of {inputs.gpu_gib:g} GiB with "
                    f"--tensor-parallel-size {more.tp}"
                )
                break
        per_gpu_needed = _memory_needed(inputs, tp)
        if per_gpu_needed is not None:
            found.append(f"GPUs with at least {per_gpu_needed:.1f} GiB each at TP {tp}")
    if not found:
        found.append(
            "none of: fewer iterations, a smaller max_tokens, fewer sessions, an fp8 KV "
            "cache, 4-bit weights, up to 8 GPUs: serve a smaller model"
        )
    return found


def _memory_needed(inputs: Inputs, tp: int) -> float | None:
    """Each GPU's memory for the whole need at TP tp: weights, reserve, and KV for the
    sessions at full context, over --gpu-memory-utilization."""
    shape = model_memory.attention(inputs.config)
    if shape is None:
        return None
    model_max = model_memory.max_context(inputs.config)
    need = round_up(inputs.needs.context)
    if model_max is not None and need > model_max:
        return None  # no GPU makes the model's context longer
    per_token = (
        2
        * shape.layers
        * model_memory.kv_heads_per_rank(shape.kv_heads, tp)
        * shape.head_dim
        * kv_element_bytes(inputs)
    )
    kv = per_token * need * inputs.needs.sessions / GIB
    return (inputs.weights_bytes / GIB / tp + inputs.reserve_gib + kv) / (
        inputs.gpu_memory_utilization
    ) + 0.05
