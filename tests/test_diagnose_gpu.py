"""Local GPUs through NVML. No GPU exists on the test machines, so every reading here is a
RECORDING (tests/data/diagnose/nvml/*.json, fake but shaped like nvidia-ml-py's answers)
given to the doctor through its injectable reader; the Hub is the local stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from diagnose_helpers import run_json, status_of
from diagnose_standins import http_standin, hub

from diagnostics.options import DiagnoseOptions
from diagnostics.runner import diagnose
from picoclaw_vllm.nvml import NvmlReader, RecordedReader
from picoclaw_vllm.server.embedded import free_port

NVML = Path(__file__).parent / "data" / "diagnose" / "nvml"
GIB = 1024**3
LLAMA_8B_CONFIG = {
    "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "torch_dtype": "bfloat16", "max_position_embeddings": 131072,
}  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PICOCLAW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("VLLM_API_KEY", "HF_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def refused_base() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


def recorded(name: str) -> RecordedReader:
    return RecordedReader.from_file(NVML / f"{name}.json")


def local_llama_8b(tmp_path: Path) -> Path:
    """config.json plus a SPARSE 15 GiB safetensors file: its size is what counts, not data."""
    model = tmp_path / "Llama-3.1-8B-Instruct"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(LLAMA_8B_CONFIG))
    with (model / "model.safetensors").open("wb") as f:
        f.truncate(int(14.96 * GIB))
    return model


def test_no_driver_is_not_applicable_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    if not NvmlReader().read().not_applicable:
        pytest.skip("this machine has an NVIDIA driver")
    _, doc = run_json(capsys, "--api-base", refused_base(), "--check", "gpu_memory")
    assert status_of(doc, "gpu_memory") == "skip"
    skip = next(c for c in doc["checks"] if c["name"] == "gpu_memory")["skip_reason"]
    assert skip.startswith("not applicable")


def test_other_process_holding_h100_memory_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = run_json(
        capsys, "--api-base", refused_base(), "--check", "gpu_memory",
        "--gpu-recording", str(NVML / "h100_80gb_training_job.json"),
    )  # fmt: skip
    finding = next(f for f in doc["findings"] if f["id"] == "gpu_memory_in_use")
    assert "pid 31337 python train.py" in finding["evidence"]
    assert "NVIDIA H100 80GB HBM3" in finding["evidence"]
    assert "--gpu-memory-utilization 0.34" in finding["remedy"]  # 31895/81559 - 0.05
    assert "pid 31337" in finding["remedy"]


def test_idle_rtx4090_passes() -> None:
    d = diagnose(DiagnoseOptions(api_base=refused_base(), gpu_reader=recorded("rtx4090_idle"),
                                 checks=("gpu_memory",)))  # fmt: skip
    assert [r.status for r in d.results if r.check.name == "gpu_memory"] == ["pass"]


def test_vllm_itself_holding_memory_is_not_another_process() -> None:
    d = diagnose(DiagnoseOptions(api_base=refused_base(),
                                 gpu_reader=recorded("rtx4090_serving_vllm"),
                                 checks=("gpu_memory",)))  # fmt: skip
    assert "gpu_memory_in_use" not in d.finding_ids()


def test_predicted_oom_from_local_model_folder(tmp_path: Path) -> None:
    d = diagnose(DiagnoseOptions(
        api_base=refused_base(), gpu_reader=recorded("h100_80gb_training_job"),
        model_path=local_llama_8b(tmp_path), checks=("memory_fit",),
    ))  # fmt: skip
    finding = next(f for f in d.findings if f.id == "cuda_oom")
    assert "predicted" in finding.message and "131072" in finding.message
    assert (
        "weights 15.0 GiB" in finding.evidence and "KV for 131072 tokens 16.0" in finding.evidence
    )
    assert "at most" in finding.remedy


def test_model_that_fits_with_a_shorter_context(tmp_path: Path) -> None:
    d = diagnose(DiagnoseOptions(
        api_base=refused_base(), gpu_reader=recorded("h100_80gb_training_job"),
        model_path=local_llama_8b(tmp_path), max_model_len=8192, checks=("memory_fit",),
    ))  # fmt: skip
    assert "cuda_oom" not in d.finding_ids()
    assert d.results[-1].status.value == "pass"


def test_predicted_oom_from_hub_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    with http_standin(hub()) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        tight = diagnose(DiagnoseOptions(
            api_base=refused_base(), model="meta-llama/Llama-3.1-8B-Instruct",
            gpu_reader=recorded("rtx4090_idle"), checks=("memory_fit",),
        ))  # fmt: skip
        roomy = diagnose(DiagnoseOptions(
            api_base=refused_base(), model="meta-llama/Llama-3.1-8B-Instruct",
            gpu_reader=recorded("rtx4090_idle"), max_model_len=4096, checks=("memory_fit",),
        ))  # fmt: skip
    assert "cuda_oom" in tight.finding_ids()
    assert "8.03B parameters" in tight.findings[-1].evidence
    assert "cuda_oom" not in roomy.finding_ids()


def test_gpu_saturation_is_reported_by_the_recording() -> None:
    snapshot = recorded("h100_80gb_training_job").read()
    assert snapshot.gpus[0].utilization_percent == 97
    assert snapshot.gpus[0].free_mib == 81559 - 49664


def test_log_says_gpu_busy_and_nvml_names_who(capsys: pytest.CaptureFixture[str]) -> None:
    log = Path(__file__).parent / "data" / "diagnose" / "logs" / "gpu_memory_in_use.log"
    _, doc = run_json(
        capsys, "--api-base", refused_base(), "--log", str(log), "--check", "server_log",
        "--gpu-recording", str(NVML / "h100_80gb_training_job.json"),
    )  # fmt: skip
    (finding,) = [f for f in doc["findings"] if f["id"] == "gpu_memory_in_use"]
    assert "Free memory on device cuda:0" in finding["evidence"]
    assert "NVML: held by GPU 0: pid 31337 python train.py" in finding["evidence"]
    assert finding["remedy"].startswith("stop pid 31337")
