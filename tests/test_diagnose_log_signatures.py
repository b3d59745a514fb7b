"""Log signatures: one realistic excerpt per catalog entry (tests/data/diagnose/logs), and
the reduction of a log with many errors to its root cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.catalog import CATALOG
from diagnostics.checks.server_log import finding_for
from diagnostics.log_explanations import EXPLAIN
from picoclaw_vllm.vllm_api.log_signatures import SIGNATURES, all_causes, root_cause

LOGS = Path(__file__).parent / "data" / "diagnose" / "logs"


def log(name: str) -> str:
    return (LOGS / f"{name}.log").read_text()


@pytest.mark.parametrize(
    ("name", "finding_id", "line_has", "detail"),
    [
        ("cuda_oom", "cuda_oom", "torch.OutOfMemoryError",
         {"tried_to_allocate": "1.96 GiB", "total_capacity": "23.54 GiB", "free": "1.12 GiB"}),
        ("gpu_memory_in_use", "gpu_memory_in_use", "Free memory on device cuda:0",
         {"device": "cuda:0", "free_gib": "7.34", "total_gib": "15.49", "utilization": "0.8"}),
        ("cpu_memory_in_use", "gpu_memory_in_use", "Available memory on node 0",
         {"device": "0", "free_gib": "7.1", "total_gib": "8.46", "desired_gib": "7.79"}),
        ("kv_cache_insufficient", "kv_cache_insufficient", "estimated maximum model length",
         {"max_seq_len": "40960", "estimated_max_model_len": "32768", "available_gib": "4.50"}),
        ("tensor_parallel_invalid", "tensor_parallel_invalid", "Total number of attention heads",
         {"heads": "24", "tensor_parallel_size": "3"}),
        ("tensor_parallel_world_size", "tensor_parallel_invalid", "World size (2)",
         {"world_size": "2", "gpus": "1"}),
        ("cpu_numa_binding", "tensor_parallel_invalid", "NUMA nodes", {"workers": "2"}),
        ("shm_too_small", "shm_too_small", "NCCL WARN Error while creating shared memory", {}),
        ("hf_gated", "hf_gated", "GatedRepoError", {"repo": "meta-llama/Llama-3.2-3B-Instruct"}),
        # real start-up logs of vLLM 0.32 (CPU) with the tiny model, 2026-12-04
        ("tool_parser_llama3_json", "tool_parser_invalid", "could not locate the bot token",
         {"token": "<|python_tag|>"}),
        ("tool_parser_unknown", "tool_parser_invalid", "invalid tool call parser",
         {"parser": "nosuchparser"}),
        ("tool_parser_missing", "tool_parser_invalid", "requires --tool-call-parser", {}),
        ("hf_repo_not_found", "hf_repo_not_found", "RepositoryNotFoundError",
         {"repo": "meta-lama/Llama-3.2-3B-Instruct"}),
        ("no_kernel_image", "no_kernel_image", "no kernel image is available", {}),
        ("port_in_use", "port_in_use", "[Errno 98]", {"port": "8000"}),
        ("unknown_error", "log_error", "KeyError: 'rope_scaling'", {"exception": "KeyError"}),
    ],
)  # fmt: skip
def test_root_cause_of_each_signature(
    name: str, finding_id: str, line_has: str, detail: dict[str, str]
) -> None:
    cause = root_cause(log(name))
    assert cause is not None
    assert cause.finding_id == finding_id
    assert line_has in cause.line
    assert cause.detail.items() >= detail.items(), cause.detail
    assert cause.finding_id in CATALOG
    finding = finding_for(cause)
    assert finding.remedy and finding.message
    assert f"line {cause.line_number}" in finding.evidence


def test_every_signature_id_is_in_the_catalog_and_has_a_remedy() -> None:
    for signature in SIGNATURES:
        assert signature.finding_id in CATALOG
        assert signature.finding_id in EXPLAIN


def test_first_error_is_the_cause_and_later_ones_are_consequences() -> None:
    text = log("gpu_memory_in_use") + log("cuda_oom") + log("port_in_use")
    causes = all_causes(text)
    assert [c.finding_id for c in causes][:1] == ["gpu_memory_in_use"]
    assert {"cuda_oom", "port_in_use"} <= {c.finding_id for c in causes}
    cause = root_cause(text)
    assert cause is not None and cause.finding_id == "gpu_memory_in_use"


def test_engine_core_initialization_failed_is_never_the_cause() -> None:
    text = (
        "(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause "
        "above. Failed core proc(s): {}\n"
        "(APIServer pid=1) vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered "
        "an issue. See stack trace (above) for the root cause.\n"
    )
    assert root_cause(text) is None


def test_shm_bus_error_reduces_to_the_nccl_warning() -> None:
    cause = root_cause(log("shm_too_small"))
    assert cause is not None
    assert cause.line_number == 3
    assert "--ipc=host" in finding_for(cause).remedy


def test_kv_remedy_names_vllms_estimate() -> None:
    cause = root_cause(log("kv_cache_insufficient"))
    assert cause is not None
    assert "--max-model-len 32768" in finding_for(cause).remedy


def test_cpu_memory_remedy_gives_a_utilization_that_fits() -> None:
    cause = root_cause(log("cpu_memory_in_use"))
    assert cause is not None
    finding = finding_for(cause)
    assert "--gpu-memory-utilization 0.79" in finding.remedy  # 7.1/8.46 - 0.05
    assert "NUMA node" in finding.message


def test_tp_remedy_lists_sizes_that_divide_the_heads() -> None:
    cause = root_cause(log("tensor_parallel_invalid"))
    assert cause is not None
    assert "--tensor-parallel-size 1 or 2 or 4 or 8" in finding_for(cause).remedy


def test_healthy_log_has_no_cause() -> None:
    assert root_cause(log("healthy")) is None
    assert root_cause("") is None


def test_matched_line_is_redacted_and_ansi_free() -> None:
    token = "hf_abcdefghijklmnopqrstuvwx"
    text = (
        f"\x1b[1;36m(APIServer pid=1)\x1b[0m ERROR Cannot access gated repo for url "
        f"https://huggingface.co/org/model/resolve/main/config.json?token={token}\n"
    )
    cause = root_cause(text)
    assert cause is not None and cause.finding_id == "hf_gated"
    assert token not in cause.line and "\x1b" not in cause.line
    assert cause.detail["repo"] == "org/model"


def test_cuda_oom_remedies_follow_the_seed_order() -> None:
    cause = root_cause(log("cuda_oom"))
    assert cause is not None
    remedy = finding_for(cause).remedy
    steps = ["smaller", "--gpu-memory-utilization", "--max-model-len", "--tensor-parallel-size"]
    positions = [remedy.index(s) for s in steps]
    assert positions == sorted(positions)
