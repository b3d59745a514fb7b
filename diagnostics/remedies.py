"""Remedies shared by several checks (the log, the GPU, the engine's death): one wording each."""

from __future__ import annotations


def oom_remedy(max_model_len: str = "e.g. 4096") -> str:
    """The start-up CUDA OOM remedy; `max_model_len` says what context would fit, when known."""
    return (
        "1. use a smaller (or quantized) model; 2. reduce --gpu-memory-utilization "
        f"(e.g. 0.85) to leave headroom; 3. reduce --max-model-len ({max_model_len}); "
        "4. use several GPUs with --tensor-parallel-size 2"
    )


OOM_REMEDY = oom_remedy()
ENGINE_DEAD_REMEDY = (
    "read the server log for the first exception (picoclaw-vllm diagnose --log FILE | "
    "--docker NAME | --journal UNIT) and restart vLLM"
)
RUNTIME_OOM_REMEDY = (
    "the KV cache and activations of a full batch did not fit: lower --max-num-seqs or "
    "--max-num-batched-tokens, lower --gpu-memory-utilization (e.g. 0.85) to leave headroom, "
    "or lower --max-model-len; then restart vLLM"
)
HOST_RAM_REMEDY = (
    "the host ran out of RAM: give it more memory (or a container --memory limit that fits), "
    "stop other memory users, lower --swap-space / --cpu-offload-gb, or on the CPU backend "
    "lower VLLM_CPU_KVCACHE_SPACE / --gpu-memory-utilization; then restart vLLM"
)
SIGNAL_REMEDY = (
    "find who killed it: the kernel log (sudo dmesg -T | grep -i 'out of memory'; "
    "journalctl -k | grep -i oom), a container's memory limit (docker inspect CONTAINER "
    "--format '{{.State.OOMKilled}}'), or an operator's kill; then restart vLLM. " + HOST_RAM_REMEDY
)
NCCL_REMEDY = (
    "a collective between GPUs failed or hung: check the GPUs (nvidia-smi, dmesg for Xid "
    "errors), run with NCCL_DEBUG=INFO to see which rank stalled, and in Docker use "
    "--ipc=host; a slow peer can be given more time with a larger NCCL timeout; then restart"
)
ILLEGAL_ACCESS_REMEDY = (
    "a GPU kernel crashed (a vLLM/driver bug or a failing GPU): update vLLM and the driver, "
    "try --enforce-eager (no CUDA graphs), look for Xid errors in dmesg; then restart vLLM"
)
RESTART_REMEDY = (
    "restart vLLM; the lines before the death (shown) are the cause: report it to vLLM with "
    "them if it is a bug"
)
