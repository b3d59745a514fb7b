"""Local GPUs: memory held by other processes, and whether the model will fit at all."""

from __future__ import annotations

from diagnostics.checks.base import Check
from diagnostics.facts import Facts
from diagnostics.findings import Finding, Outcome, Severity
from diagnostics.remedies import oom_remedy
from picoclaw_vllm import model_memory as model_size
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.nvml import Gpu, other_processes

GIB_PER_MIB = 1 / 1024


def _gib(mib: float) -> str:
    return f"{mib * GIB_PER_MIB:.1f}"


def check_gpu_memory(facts: Facts) -> Outcome:
    snapshot = facts.gpus()
    if snapshot.not_applicable:
        return Outcome.skip(f"not applicable: {snapshot.not_applicable}")
    util = facts.options.gpu_memory_utilization
    findings, notes = [], []
    for gpu in snapshot.gpus:
        others = other_processes(gpu)
        notes.append(
            f"GPU {gpu.index} {gpu.name}: {_gib(gpu.free_mib)}/{_gib(gpu.total_mib)} GiB free, "
            f"utilization {gpu.utilization_percent}%"
        )
        wanted = gpu.total_mib * util
        if gpu.free_mib >= wanted or not others:
            continue
        held = ", ".join(f"pid {p.pid} {p.name} ({_gib(p.used_mib)} GiB)" for p in others)
        fits = max(0.05, gpu.free_mib / gpu.total_mib - 0.05)
        findings.append(
            Finding(
                FindingId.GPU_MEMORY_IN_USE,
                Severity.WARN,
                f"GPU {gpu.index}: other processes hold {_gib(sum(p.used_mib for p in others))} "
                f"GiB; vLLM at --gpu-memory-utilization {util} will not start",
                evidence=f"GPU {gpu.index} {gpu.name}: {_gib(gpu.free_mib)} of "
                f"{_gib(gpu.total_mib)} GiB free, vLLM wants {util} x {_gib(gpu.total_mib)} = "
                f"{_gib(wanted)} GiB; held by {held}",
                remedy=f"stop {others[0].name} (pid {others[0].pid}), or start vLLM with "
                f"--gpu-memory-utilization {fits:.2f}, or use another GPU "
                "(CUDA_VISIBLE_DEVICES=N)",
            )
        )
    return Outcome.of(*findings, notes=notes)


def _best(gpus: tuple[Gpu, ...]) -> Gpu:
    return max(gpus, key=lambda g: g.free_mib)


def check_memory_fit(facts: Facts) -> Outcome:
    snapshot = facts.gpus()
    if snapshot.not_applicable:
        return Outcome.skip(f"not applicable: {snapshot.not_applicable}")
    size, limit = _model_size(facts)
    if size is None or limit is None:
        return Outcome.skip("model size unknown (pass --model-path DIR or a Hub repo id)")
    gpu = _best(snapshot.gpus)
    util = facts.options.gpu_memory_utilization
    budget = gpu.free_mib * GIB_PER_MIB * util
    needed = size.needed_gib(limit)
    detail = (
        f"weights {size.weights_gib:.1f} GiB + KV for {limit} tokens {size.kv_gib(limit):.1f} "
        f"GiB + ~{model_size.OVERHEAD_GIB:.0f} GiB overhead = {needed:.1f} GiB; budget on GPU "
        f"{gpu.index} ({gpu.name}): {_gib(gpu.free_mib)} GiB free x {util} = {budget:.1f} GiB "
        f"[{size.source}]"
    )
    if needed <= budget:
        return Outcome.ok(detail)
    fits = size.max_tokens_within(budget)
    remedy = oom_remedy(f"at most {fits} fits") if fits >= 1024 else oom_remedy()
    return Outcome.of(
        Finding(
            FindingId.CUDA_OOM,
            Severity.FAIL,
            "predicted CUDA out of memory: "
            + ("the weights alone do not fit" if size.weights_gib > budget else
               f"the KV cache for --max-model-len {limit} does not fit"),
            evidence=detail,
            remedy=remedy,
        )
    )  # fmt: skip


def _model_size(facts: Facts) -> tuple[model_size.ModelSize | None, int | None]:
    directory = facts.model_dir()
    served = {m.id: m for m in facts.served()}
    model = facts.target().model
    limit = facts.options.max_model_len or (
        served[model].max_model_len if model in served else None
    )
    if directory is not None:
        return model_size.from_dir(directory), limit or model_size.max_position(directory, None)
    answer = facts.hub() if facts.options.check_hub else None
    if answer is None or answer.state != "ok":
        return None, limit
    size = model_size.from_hub(answer.repo, answer.parameters, answer.config)
    return size, limit or model_size.max_position(None, answer.config)


CHECKS = (
    Check(
        "gpu_memory", "GPU memory free", "GPU", check_gpu_memory, (), (FindingId.GPU_MEMORY_IN_USE,)
    ),
    Check("memory_fit", "Model fits the GPU", "GPU", check_memory_fit, (), (FindingId.CUDA_OOM,)),
)
