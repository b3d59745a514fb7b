"""`picoclaw-vllm plan`: the vLLM flags for a model, GPUs and PicoClaw, before the first start."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from picoclaw_vllm.argtypes import integer, number
from picoclaw_vllm.errors import UsageError
from picoclaw_vllm.model_memory import (
    DTYPE_BYTES,
    KV_CACHE_DTYPE_BYTES,
    attention,
    dtype_bytes,
    parameters,
    quantized_bits,
    serving_dtype,
    weights_bytes_from_config,
)
from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.plan import arithmetic, gpus, launch, model_source, picoclaw_needs, render

CPU_BLOCK_SIZE = 128  # vLLM's CPU backend's KV block (vllm/platforms/cpu.py)
CPU_DEFAULT_KV_GIB = 4  # VLLM_CPU_KVCACHE_SPACE's example value in vLLM's CPU docs

DESCRIPTION = """\
Works out, before the first start, the vLLM flags that fit a model, its GPUs and PicoClaw:
weights, KV bytes per token, the memory left for the KV cache, the context PicoClaw's agent
needs (its prompt with 17 tool schemas, each iteration's history, max_tokens), the largest
--max-model-len, the full-context sessions that fit (hence --max-num-seqs), the
tensor-parallel sizes that divide the heads, the tool-calling flags; then the docker run line,
the python -m line, a systemd unit, the PicoClaw config entry and the acceptance command that
checks the plan on the real server. Offline from a local config.json or model folder; a Hub
repo id is read from the local Hugging Face cache, else from the Hub (HF_TOKEN, HF_ENDPOINT,
HF_HUB_OFFLINE honoured). Exit 0 when everything fits, 1 when it does not (the plan says why
and what would make it fit), 2 on bad input.

examples:
  picoclaw-vllm plan --model meta-llama/Llama-3.1-8B-Instruct --gpus 1x24GiB --explain
  picoclaw-vllm plan --model ./Qwen2.5-7B-Instruct --gpus 2x24GiB --sessions 8 --json
  picoclaw-vllm plan --model ~/.cache/picoclaw-vllm/models/tiny-llama --kv-cache-gib 1
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a model folder, a config.json, or a Hub repo id")
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="read the model's config.json (and the tokenizer files beside it) here, for a "
        "--model named by its repo id",
    )
    p.add_argument(
        "--served-model-name",
        help="the name PicoClaw sends (default: --model, or the folder's name)",
    )
    p.add_argument("--gpus", help="COUNTxSIZE, e.g. 1x24GiB or 2x80GB (default: NVML's GPUs)")
    p.add_argument(
        "--kv-cache-gib",
        type=integer(1, 1 << 20),
        metavar="GIB",
        help="plan for the CPU backend with this much memory for the KV cache "
        "(VLLM_CPU_KVCACHE_SPACE) instead of GPUs",
    )
    p.add_argument(
        "--sessions",
        type=integer(1, 100_000),
        default=1,
        help="concurrent PicoClaw sessions wanted (default 1)",
    )
    p.add_argument(
        "--iterations",
        type=integer(0, 10_000),
        default=picoclaw_request.DEFAULT_MAX_TOOL_ITERATIONS,
        help="agent iterations that must fit in one session's context (default "
        "PicoClaw's max_tool_iterations, %(default)s)",
    )
    p.add_argument(
        "--max-tokens",
        type=integer(1, 10_000_000),
        default=picoclaw_request.DEFAULT_MAX_TOKENS,
        help="PicoClaw's max_tokens (default %(default)s)",
    )
    p.add_argument(
        "--max-model-len",
        type=integer(1, 100_000_000),
        help="plan this --max-model-len instead of the context PicoClaw needs",
    )
    p.add_argument("--gpu-memory-utilization", type=number(0, 1, low_open=True), default=0.9)
    p.add_argument(
        "--reserve-gib",
        type=number(0, 1000),
        default=arithmetic.DEFAULT_RESERVE,
        help="memory kept for activations and CUDA graphs on each GPU (default %(default)s GiB)",
    )
    p.add_argument("--kv-cache-dtype", default="auto", choices=["auto", *KV_CACHE_DTYPE_BYTES])
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float16", "bfloat16", "float32"],
        help="vLLM's --dtype (default auto: the checkpoint's, float32 downcast to bfloat16)",
    )
    p.add_argument(
        "--block-size",
        type=integer(1, 4096),
        help=f"vLLM's KV block (default {arithmetic.DEFAULT_BLOCK_SIZE} on a GPU, "
        f"{CPU_BLOCK_SIZE} on the CPU backend)",
    )
    p.add_argument("--no-hub", action="store_true", help="never ask the Hugging Face Hub")
    p.add_argument("--json", action="store_true", help="the plan as JSON (picoclaw-vllm/plan/v1)")
    p.add_argument("--explain", action="store_true", help="each figure with its formula")


def _served(args: argparse.Namespace, source: model_source.ModelSource) -> str:
    if args.served_model_name:
        return str(args.served_model_name)
    local = args.config is None and Path(args.model).expanduser().exists()
    return Path(source.name).name if local else source.name


def run(args: argparse.Namespace) -> int:
    source = model_source.locate(args.model, check_hub=not args.no_hub, config=args.config)
    config = source.config
    if attention(config) is None or (parameters(config) is None and source.weights_bytes is None):
        raise UsageError(
            f"{source.where}: not a decoder model config this plan can size "
            "(needs hidden_size, num_hidden_layers, num_attention_heads, "
            "intermediate_size, vocab_size)"
        )
    notes: list[str] = []
    hardware: gpus.GpuSet | None = None
    if args.kv_cache_gib is None and not args.gpus:
        try:
            hardware = gpus.from_nvml()
        except gpus.NoGpu as no_gpu:
            args.kv_cache_gib = CPU_DEFAULT_KV_GIB
            notes.append(
                f"{no_gpu}: planned for vLLM's CPU backend with {CPU_DEFAULT_KV_GIB} GiB of KV "
                "cache (--kv-cache-gib); --gpus COUNTxSIZE plans for GPUs"
            )
    if args.kv_cache_gib is None:
        hardware = hardware or gpus.parse(args.gpus)
        wanted = hardware.memory_gib * args.gpu_memory_utilization
        if hardware.free_gib is not None and hardware.free_gib < wanted:
            notes.append(
                f"a GPU has only {hardware.free_gib:.1f} GiB free, less than "
                f"--gpu-memory-utilization x total = {wanted:.1f} GiB: vLLM will "
                "not start until that memory is freed"
            )
        if hardware.free_gib is None:
            source.unknown.append("the GPUs' free memory (given by --gpus, not read from NVML)")
    elif args.gpus:
        raise UsageError("--kv-cache-gib plans the CPU backend; leave out --gpus")
    if source.weights_bytes is not None:
        weights, formula = (
            source.weights_bytes,
            f"{source.weights_source}: {source.weights_bytes:,} B",
        )
    else:
        count = parameters(config) or 0
        weights = weights_bytes_from_config(config) or 0
        formula = (
            f"{count:,} parameters counted from config.json x "
            f"{weights / count:g} B each = {weights:,} B"
        )
        source.unknown.append("the weights' exact size (counted from config.json, not files)")
    dtype = serving_dtype(config, args.dtype)
    on_disk = dtype_bytes(config)
    if quantized_bits(config) is None and DTYPE_BYTES.get(dtype, 2) != on_disk:
        ratio = DTYPE_BYTES.get(dtype, 2) / on_disk
        weights = int(weights * ratio)
        formula += f", x {ratio:g} loaded as {dtype} = {weights:,} B"
    needs = picoclaw_needs.count(source, args.iterations, args.max_tokens, args.sessions)
    if not needs.exact:
        source.unknown.append(f"PicoClaw's prompt in this model's tokens ({needs.counted_with})")
    block = args.block_size or (
        CPU_BLOCK_SIZE if args.kv_cache_gib else arithmetic.DEFAULT_BLOCK_SIZE
    )
    inputs = arithmetic.Inputs(
        config=config,
        weights_bytes=weights,
        weights_formula=formula,
        needs=needs,
        gpus=hardware.count if hardware else 1,
        gpu_gib=hardware.memory_gib if hardware else 0.0,
        gpu_memory_utilization=args.gpu_memory_utilization,
        reserve_gib=args.reserve_gib,
        kv_cache_gib=float(args.kv_cache_gib) if args.kv_cache_gib else None,
        kv_cache_dtype=args.kv_cache_dtype,
        dtype=dtype,
        dtype_flag=None if args.dtype == "auto" else args.dtype,
        block_size=block,
        max_model_len=args.max_model_len,
    )
    plan = arithmetic.make_plan(inputs)
    served = _served(args, source)
    tools = launch.tool_calling(f"{args.model} {served}", config)
    rendered = render.Rendered(plan, source, hardware, served, tools, tuple(notes))
    doc = render.document(rendered)
    sys.stdout.write(
        json.dumps(doc, indent=2) + "\n" if args.json else render.text(doc, args.explain)
    )
    return 0 if plan.status == arithmetic.FITS else 1
