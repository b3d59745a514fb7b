"""What each server-log cause means and how to fix it, from the numbers its line carries.

    EXPLAIN[kind](detail) -> (message, remedy)     # at start-up
    RUNTIME_REMEDY[kind]                            # the fix when it killed a ready engine

Shared by the server-log check and the Hugging Face check (the Hub's answers name the same
causes as the log's).
"""

from __future__ import annotations

from collections.abc import Callable

from diagnostics.remedies import (
    ILLEGAL_ACCESS_REMEDY,
    NCCL_REMEDY,
    OOM_REMEDY,
    RESTART_REMEDY,
    RUNTIME_OOM_REMEDY,
)
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.vllm_api import tool_parsers


def _f(detail: dict[str, str], key: str) -> float | None:
    try:
        return float(detail[key])
    except (KeyError, ValueError):
        return None


def _memory_in_use(d: dict[str, str]) -> tuple[str, str]:
    free, total = _f(d, "free_gib"), _f(d, "total_gib")
    cpu = d.get("device", "").isdigit()
    fits = f"{max(0.05, free / total - 0.05):.2f}" if free and total else "a lower value"
    if cpu:
        return (
            f"vLLM wants {d.get('utilization', '?')} of NUMA node {d.get('device')}'s memory "
            f"({d.get('desired_gib', '?')} GiB) but only {free} of {total} GiB is available",
            f"on the CPU backend --gpu-memory-utilization is the share of the node's memory: "
            f"use --gpu-memory-utilization {fits} or free memory (stop other processes)",
        )
    return (
        f"only {free} of {total} GiB free on {d.get('device', 'the GPU')}, vLLM wants "
        f"{d.get('utilization', '?')} ({d.get('desired_gib', '?')} GiB): another process "
        "holds GPU memory",
        f"stop the other GPU processes (nvidia-smi), or --gpu-memory-utilization {fits}, "
        "or another GPU (CUDA_VISIBLE_DEVICES / docker --gpus '\"device=N\"')",
    )


def _kv(d: dict[str, str]) -> tuple[str, str]:
    est = d.get("estimated_max_model_len")
    if est:
        return (
            f"max-model-len {d.get('max_seq_len')} needs {d.get('needed_gib')} GiB of KV cache, "
            f"{d.get('available_gib')} GiB available; vLLM estimates {est} tokens would fit",
            f"--max-model-len {est}, or raise --gpu-memory-utilization, or "
            "--tensor-parallel-size 2",
        )
    return (
        "the memory left after the weights cannot hold the KV cache for --max-model-len",
        "lower --max-model-len, raise --gpu-memory-utilization, or use a smaller model / more "
        "GPUs (--tensor-parallel-size)",
    )


def _tp(d: dict[str, str]) -> tuple[str, str]:
    if "heads" in d:
        heads, tp = int(d["heads"]), d.get("tensor_parallel_size", "?")
        ok = [str(n) for n in (1, 2, 4, 8) if heads % n == 0]
        return (
            f"{heads} attention heads are not divisible by --tensor-parallel-size {tp}",
            f"--tensor-parallel-size {' or '.join(ok)} (must divide {heads})",
        )
    if "gpus" in d:
        return (
            f"--tensor-parallel-size {d.get('world_size')} but only {d['gpus']} GPU(s) visible",
            f"--tensor-parallel-size {d['gpus']} (or expose more GPUs: docker --gpus all, "
            "CUDA_VISIBLE_DEVICES)",
        )
    return (
        f"{d.get('workers', 'several')} CPU workers cannot be bound to NUMA nodes",
        'set VLLM_CPU_OMP_THREADS_BIND="0|1" (one core range per worker) or use '
        "--tensor-parallel-size 1",
    )


def _hf_gated(d: dict[str, str]) -> tuple[str, str]:
    repo = d.get("repo", "<repo>")
    return (
        f"the model repo {repo} is gated: this token has no access (or no token)",
        f"huggingface-cli login (or export HF_TOKEN=hf_...), request access at "
        f"https://huggingface.co/{repo}; Docker: docker run -e HF_TOKEN ...",
    )


def _hf_missing(d: dict[str, str]) -> tuple[str, str]:
    repo = d.get("repo", "the model id")
    return (
        f"{repo} is neither a Hugging Face repo this token can see nor a local directory",
        "check the spelling of --model (org/name) or the local path; for a private repo set "
        "HF_TOKEN with read access (huggingface-cli login)",
    )


def _tool_parser(d: dict[str, str]) -> tuple[str, str]:
    model = d.get("model")
    advice = tool_parsers.parser_advice(model)
    flags = " ".join(tool_parsers.tool_flags(model))
    if "token" in d:
        parser = f"--tool-call-parser {d['parser']}" if "parser" in d else "the tool-call parser"
        return (
            f"{parser} needs the token {d['token']!r}, which this model's tokenizer lacks: "
            "the parser is for another model family, and vLLM does not start",
            f"start vLLM with {flags} ({advice})",
        )
    if "parser" in d:
        return (
            f"vLLM knows no tool-call parser named {d['parser']!r}",
            f"start vLLM with {flags} ({advice}); the log lists every parser name",
        )
    return (
        "--enable-auto-tool-choice was given without --tool-call-parser",
        f"start vLLM with {flags} ({advice})",
    )


EXPLAIN: dict[FindingId, Callable[[dict[str, str]], tuple[str, str]]] = {
    FindingId.CUDA_OOM: lambda d: (
        "CUDA out of memory" + (f" (tried to allocate {d['tried_to_allocate']})" if
                                "tried_to_allocate" in d else ""),
        OOM_REMEDY,
    ),
    FindingId.GPU_MEMORY_IN_USE: _memory_in_use,
    FindingId.KV_CACHE_INSUFFICIENT: _kv,
    FindingId.TENSOR_PARALLEL_INVALID: _tp,
    FindingId.SHM_TOO_SMALL: lambda d: (
        "NCCL could not use shared memory (/dev/shm too small): Docker without --ipc=host",
        "docker run --ipc=host ... (or --shm-size=16g)",
    ),
    FindingId.HF_GATED: _hf_gated,
    FindingId.HF_REPO_NOT_FOUND: _hf_missing,
    FindingId.NO_KERNEL_IMAGE: lambda d: (
        "this vLLM/PyTorch build has no kernels for this GPU's architecture",
        "install a vLLM build for this GPU (pip install -U vllm, or a newer "
        "vllm/vllm-openai image); compare nvidia-smi with torch.cuda.get_arch_list()",
    ),
    FindingId.PORT_IN_USE: lambda d: (
        "the port vLLM wants is taken by another process",
        "find it with ss -ltnp 'sport = :PORT'; stop it, or start vLLM with --port OTHER and "
        "update api_base",
    ),
    FindingId.TOOL_PARSER_INVALID: _tool_parser,
    FindingId.ILLEGAL_MEMORY_ACCESS: lambda d: (
        "CUDA error: an illegal memory access was encountered (a GPU kernel crashed)",
        ILLEGAL_ACCESS_REMEDY,
    ),
    FindingId.NCCL_ERROR: lambda d: (
        "an NCCL collective between GPUs failed or timed out", NCCL_REMEDY
    ),
    FindingId.LOG_ERROR: lambda d: (
        f"vLLM failed with {d.get('exception', 'an error')} (no known signature)",
        "read the log around this line: the first exception is the cause",
    ),
}  # fmt: skip


RUNTIME_REMEDY: dict[FindingId, str] = {
    FindingId.CUDA_OOM: RUNTIME_OOM_REMEDY,
    FindingId.NCCL_ERROR: NCCL_REMEDY,
    FindingId.ILLEGAL_MEMORY_ACCESS: ILLEGAL_ACCESS_REMEDY,
    FindingId.LOG_ERROR: RESTART_REMEDY,
}
