"""`picoclaw-vllm plan` against hand-checked arithmetic from published config.json files
(tests/data/plan/, sources in SOURCES.md). No vLLM, no network.

Each expected figure is worked out here from the config's numbers, written out, and where a
published figure exists (the parameter counts on the model cards) it is checked against it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from picoclaw_vllm import model_memory
from picoclaw_vllm.cli import main
from picoclaw_vllm.plan import arithmetic

DATA = Path(__file__).parent / "data" / "plan"
LLAMA31 = DATA / "meta-llama--Llama-3.1-8B-Instruct"
QWEN25 = DATA / "Qwen--Qwen2.5-7B-Instruct"
MISTRAL = DATA / "mistralai--Mistral-7B-Instruct-v0.3"
LLAMA2 = DATA / "meta-llama--Llama-2-7b-chat-hf"
MIXTRAL = DATA / "mistralai--Mixtral-8x7B-Instruct-v0.1"
GIB = 2**30


def config(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "config.json").read_text())
    return data


def plan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    rc = main(["plan", "--json", "--no-hub", *argv])
    out = capsys.readouterr().out
    doc: dict[str, Any] = json.loads(out)
    return rc, doc


def steps(doc: dict[str, Any], tp: int | None = None) -> dict[str, Any]:
    tp = tp or doc["chosen_tensor_parallel_size"]
    layout = next(lay for lay in doc["layouts"] if lay["tensor_parallel_size"] == tp)
    return {s["key"]: s["value"] for s in layout["steps"]}


# parameters: embeddings + layers x (q, k, v, o + gated MLP + 2 norms) + final norm + head
HAND_PARAMETERS = {
    # 128256 x 4096 embeddings and head; q,o 4096x4096; k,v 4096x(8x128); MLP 3x4096x14336
    LLAMA31: 2 * 128256 * 4096 + 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
                                       + 2 * 4096) + 4096,
    # Qwen2 adds q/k/v biases: 3584 + 2 x 512
    QWEN25: 2 * 152064 * 3584 + 28 * (2 * 3584 * 3584 + 2 * 3584 * 512 + 3584 + 2 * 512
                                      + 3 * 3584 * 18944 + 2 * 3584) + 3584,
    MISTRAL: 2 * 32768 * 4096 + 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
                                      + 2 * 4096) + 4096,
    # no GQA: k and v are 4096 x 4096 too
    LLAMA2: 2 * 32000 * 4096 + 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096) + 4096,
    # 8 experts of 3 x 4096 x 14336 and a 4096 x 8 router per layer
    MIXTRAL: 2 * 32000 * 4096 + 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024
                                      + 8 * 3 * 4096 * 14336 + 4096 * 8 + 2 * 4096) + 4096,
}  # fmt: skip
# the model cards' sizes, in billions, to one more digit than they print
PUBLISHED_BILLIONS = {LLAMA31: 8.03, QWEN25: 7.62, MISTRAL: 7.25, LLAMA2: 6.74, MIXTRAL: 46.7}
# layers x KV heads x head dim x 2 (K, V) x 2 B (bf16/fp16)
HAND_KV_BYTES = {
    LLAMA31: 32 * 8 * 128 * 2 * 2,
    QWEN25: 28 * 4 * 128 * 2 * 2,
    MISTRAL: 32 * 8 * 128 * 2 * 2,
    LLAMA2: 32 * 32 * 128 * 2 * 2,
    MIXTRAL: 32 * 8 * 128 * 2 * 2,
}


@pytest.mark.parametrize("folder", list(HAND_PARAMETERS), ids=lambda p: p.name)
def test_parameters_and_kv_bytes_match_hand_arithmetic(folder: Path) -> None:
    cfg = config(folder)
    assert model_memory.parameters(cfg) == HAND_PARAMETERS[folder]
    assert (
        round(HAND_PARAMETERS[folder] / 1e9, 2 if folder != MIXTRAL else 1)
        == (PUBLISHED_BILLIONS[folder])
    )
    assert model_memory.kv_bytes_per_token(cfg) == HAND_KV_BYTES[folder]
    assert model_memory.weights_bytes_from_config(cfg) == 2 * HAND_PARAMETERS[folder]


def test_llama31_8b_on_one_24gib_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = plan_json(capsys, "--model", str(LLAMA31), "--gpus", "1x24GiB")
    s = steps(doc)
    weights_gib = 2 * HAND_PARAMETERS[LLAMA31] / GIB  # 14.958
    kv_gib = 24 * 0.9 - weights_gib - 1.0  # 5.642
    blocks = math.floor(kv_gib * GIB / (131072 * 16))  # 2888
    assert blocks == 2888
    assert s["weights"] == pytest.approx(14.958, abs=1e-3)
    assert s["kv_bytes_per_token"] == 131072
    assert s["kv_memory_per_gpu"] == pytest.approx(kv_gib, abs=1e-3)
    assert s["kv_tokens"] == blocks * 16 == 46208
    assert s["model_max_len"] == 131072  # llama3 rope scaling does not extend it further
    p = doc["picoclaw"]
    need = p["prompt_tokens"] + 50 * p["iteration_tokens"] + 32768
    assert s["context_needed"] == need
    # the need (about 67,600) exceeds the 46,208 KV tokens: the plan cuts to what fits
    assert s["largest_max_model_len"] == s["max_model_len"] == 46208
    assert s["full_sessions"] == 1 and doc["launch"]["max_num_seqs"] == 1
    assert s["iterations_fit"] == (46208 - p["prompt_tokens"] - 32768) // p["iteration_tokens"]
    assert doc["status"] == "reduced" and rc == 1
    assert any("2 GPUs of 24 GiB with --tensor-parallel-size 2" in r for r in doc["remedies"])
    assert any("--kv-cache-dtype fp8" in r for r in doc["remedies"])
    assert doc["tool_calling"]["parser"] == "llama3_json"
    assert "--chat-template" in doc["launch"]["vllm_args"]
    # offline from a bare config.json: it says what it could not know
    assert p["exact"] is False and "estimate" in p["counted_with"]
    assert any("counted from config.json" in u for u in doc["unknown"])


def test_llama31_fits_at_tp2_with_the_kv_heads_split(capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = plan_json(capsys, "--model", str(LLAMA31), "--gpus", "2x24GiB", "--sessions", "2")
    assert doc["tp_sizes"] == [1, 2]
    s = steps(doc, 2)
    assert doc["chosen_tensor_parallel_size"] == 2 and doc["status"] == "fits" and rc == 0
    assert s["kv_bytes_per_token"] == 32 * 4 * 128 * 2 * 2  # 8 KV heads / 2 ranks
    kv_gib = 24 * 0.9 - 2 * HAND_PARAMETERS[LLAMA31] / GIB / 2 - 1.0
    blocks = math.floor(kv_gib * GIB / (65536 * 16))
    assert s["kv_tokens"] == blocks * 16
    planned = -(-s["context_needed"] // 1024) * 1024
    assert s["max_model_len"] == planned
    assert s["full_sessions"] == math.floor(blocks / math.ceil(planned / 16)) >= 2
    assert doc["launch"]["tensor_parallel_size"] == 2
    assert "--tensor-parallel-size" in doc["launch"]["vllm_args"]


def test_qwen25_7b_tp_sizes_and_kv(capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = plan_json(capsys, "--model", str(QWEN25), "--gpus", "8x80GB", "--iterations", "10")
    # 28 heads and 4 KV heads: TP 1, 2, 4 (7 divides 28 but neither divides nor is divided by 4)
    assert doc["tp_sizes"] == [1, 2, 4]
    s = steps(doc, 1)
    weights_gib = 2 * HAND_PARAMETERS[QWEN25] / GIB
    gpu_gib = 80e9 / GIB
    kv_gib = gpu_gib * 0.9 - weights_gib - 1.0
    assert s["kv_tokens"] == math.floor(kv_gib * GIB / (57344 * 16)) * 16
    assert s["model_max_len"] == 32768
    assert doc["tool_calling"]["parser"] == "hermes"


def test_mistral_v03_context_is_the_limit(capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = plan_json(capsys, "--model", str(MISTRAL), "--gpus", "1x80GiB")
    s = steps(doc)
    assert s["kv_bytes_per_token"] == 131072
    assert s["model_max_len"] == 32768
    # 80 x 0.9 - 13.5 - 1 GiB holds far more than 32,768 tokens: the context caps it
    assert s["kv_tokens"] > 32768 and s["largest_max_model_len"] == 32768
    p = doc["picoclaw"]
    # max_tokens 32768 alone fills the context: no room for the prompt, PicoClaw's first
    # request cannot fit, no iteration either
    assert 32768 - p["prompt_tokens"] - 32768 < 0 and s["iterations_fit"] == 0
    assert doc["status"] == "does_not_fit" and doc["launch"] is None
    assert any("max_tokens" in r for r in doc["remedies"])
    assert doc["tool_calling"]["parser"] == "mistral"


def test_llama2_without_gqa_cannot_fit_picoclaw(capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = plan_json(capsys, "--model", str(LLAMA2), "--gpus", "1x24GiB")
    s = steps(doc)
    assert s["kv_bytes_per_token"] == 524288  # 4x Llama 3.1's: 32 KV heads, not 8
    assert s["model_max_len"] == 4096
    assert doc["status"] == "does_not_fit" and rc == 1 and doc["launch"] is None
    assert any("the model's context" in w for w in doc["why"])
    assert any("longer context" in r for r in doc["remedies"])


def test_mixtral_weights_do_not_fit_one_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = plan_json(capsys, "--model", str(MIXTRAL), "--gpus", "1x24GiB", "--max-tokens",
                        "8192", "--iterations", "10")  # fmt: skip
    s = steps(doc)
    assert s["weights"] == pytest.approx(2 * HAND_PARAMETERS[MIXTRAL] / GIB, abs=1e-3)  # 87.0
    assert s["kv_memory_per_gpu"] < 0
    assert doc["status"] == "does_not_fit" and rc == 1
    assert any("leave no memory for the KV cache" in w for w in doc["why"])
    # 87 GiB / 8 = 10.9 GiB a GPU leaves 9.7 GiB of KV; at TP 4 the 21.7 GiB do not fit 21.6
    assert any("8 GPUs of 24 GiB with --tensor-parallel-size 8" in r for r in doc["remedies"])


def test_doctor_and_plan_share_one_estimator() -> None:
    from diagnostics.checks import gpu

    assert gpu.model_size is model_memory
    assert not (Path(__file__).parent.parent / "diagnostics" / "model_size.py").exists()
    assert arithmetic.DEFAULT_RESERVE == model_memory.OVERHEAD_GIB


def test_rope_scaling_extends_the_context_as_vllm_does() -> None:
    base = config(QWEN25)
    yarn = {**base, "rope_scaling": {"type": "yarn", "factor": 4.0,
                                     "original_max_position_embeddings": 32768}}  # fmt: skip
    assert model_memory.max_context(yarn) == 131072
    assert model_memory.max_context(config(LLAMA31)) == 131072
