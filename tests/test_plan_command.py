"""`picoclaw-vllm plan` as a command: its JSON schema, offline behaviour, GPUs from NVML (a
recorded reading: no NVIDIA GPU exists here), the tiny local model's own tokenizer, bad input.
No vLLM, no network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import huggingface_hub.constants  # noqa: F401  (read HF_HUB_OFFLINE once, before a test sets it)
import jsonschema
import pytest

from picoclaw_vllm.cli import main
from picoclaw_vllm.errors import UsageError
from picoclaw_vllm.nvml import RecordedReader
from picoclaw_vllm.paths import tiny_model_dir
from picoclaw_vllm.plan import gpus

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "reports" / "schemas" / "plan.schema.json").read_text())
DATA = Path(__file__).parent / "data" / "plan"
LLAMA31 = DATA / "meta-llama--Llama-3.1-8B-Instruct"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["plan", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def plan_doc(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    _, out, err = run(capsys, "--json", *argv)
    assert out, err
    doc: dict[str, Any] = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    return doc


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Hub, an empty Hugging Face cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        ("--model", str(LLAMA31), "--gpus", "1x24GiB"),
        ("--model", str(LLAMA31), "--gpus", "2x24GiB", "--sessions", "4"),
        ("--model", str(DATA / "mistralai--Mixtral-8x7B-Instruct-v0.1"), "--gpus", "1x24GiB"),
        ("--model", str(DATA / "meta-llama--Llama-2-7b-chat-hf"), "--gpus", "1x24GiB"),
    ],
    ids=["reduced", "fits", "weights-too-big", "context-too-short"],
)
def test_json_follows_its_schema(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    doc = plan_doc(capsys, *argv)
    assert doc["schema"] == "picoclaw-vllm/plan/v1"
    assert (doc["launch"] is None) == (doc["status"] == "does_not_fit")


def test_schema_rejects_a_wrong_document(capsys: pytest.CaptureFixture[str]) -> None:
    doc = plan_doc(capsys, "--model", str(LLAMA31), "--gpus", "1x24GiB")
    doc["launch"]["picoclaw_config"]["model_list"][0]["model"] = "meta-llama/no-prefix"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
    doc = plan_doc(capsys, "--model", str(LLAMA31), "--gpus", "1x24GiB")
    doc["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_repo_id_with_a_local_config_offline(
    capsys: pytest.CaptureFixture[str], offline: Path
) -> None:
    doc = plan_doc(capsys, "--model", "meta-llama/Llama-3.1-8B-Instruct",
                   "--config", str(LLAMA31 / "config.json"), "--gpus", "1x24GiB")  # fmt: skip
    launch = doc["launch"]
    assert launch["vllm_args"][:2] == ["--model", "meta-llama/Llama-3.1-8B-Instruct"]
    entry = launch["picoclaw_config"]["model_list"][0]
    assert entry["model"] == "vllm/meta-llama/Llama-3.1-8B-Instruct"
    assert launch["picoclaw_config"]["agents"]["defaults"]["max_tokens"] == 32768
    assert "--max-num-seqs 1,2" in launch["acceptance"]  # around the planned 1
    assert "docker run --gpus all" in launch["commands"]["docker"]
    assert "ExecStart=" in launch["commands"]["systemd"]
    # what it could not know, said
    assert any("not read from NVML" in u for u in doc["unknown"])
    assert any("estimate" in u for u in doc["unknown"])


def test_repo_id_offline_and_uncached_is_one_line(
    capsys: pytest.CaptureFixture[str], offline: Path
) -> None:
    rc, out, err = run(capsys, "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpus", "1x24GiB")
    assert rc == 2 and not out
    assert len(err.strip().splitlines()) == 1
    assert "not in the local Hugging Face cache" in err and "offline" in err


def test_repo_id_from_the_local_hf_cache(capsys: pytest.CaptureFixture[str], offline: Path) -> None:
    """A model in the cache (HF_HUB_CACHE layout: models--ORG--NAME/snapshots/REV/) is read
    there, with no Hub."""
    snapshot = offline / "hf" / "hub" / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / "abc1"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(
        (DATA / "Qwen--Qwen2.5-7B-Instruct" / "config.json").read_text()
    )
    refs = snapshot.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc1")
    doc = plan_doc(capsys, "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpus", "1x24GiB")
    assert "local Hugging Face cache" in doc["model"]["config"]
    assert doc["tool_calling"]["parser"] == "hermes"


def test_gpus_from_nvml_recording() -> None:
    reading = RecordedReader({"gpus": [
        {"index": i, "name": "NVIDIA L4", "memory_total_mib": 23034, "memory_used_mib": used,
         "processes": []}
        for i, used in ((0, 0), (1, 4000))
    ]})  # fmt: skip
    found = gpus.from_nvml(reading)
    assert found.count == 2
    assert found.memory_gib == pytest.approx(23034 / 1024)
    assert found.free_gib == pytest.approx((23034 - 4000) / 1024)
    with pytest.raises(UsageError, match="no NVIDIA driver"):
        gpus.from_nvml(RecordedReader({"gpus": [], "not_applicable": "no NVIDIA driver"}))


def test_the_command_reads_nvml(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --gpus: the GPUs NVML reports (a recording: no NVIDIA GPU here); none at all: a
    plan for vLLM's CPU backend, said so."""
    two_l4 = {"gpus": [
        {"index": i, "name": "NVIDIA L4", "memory_total_mib": 23034, "memory_used_mib": 0,
         "processes": []} for i in (0, 1)
    ]}  # fmt: skip
    monkeypatch.setattr(gpus, "NvmlReader", lambda: RecordedReader(two_l4))
    doc = plan_doc(capsys, "--model", str(LLAMA31))
    assert doc["hardware"]["count"] == 2 and "NVML: 2 x NVIDIA L4" in doc["hardware"]["source"]
    assert doc["hardware"]["memory_gib"] == pytest.approx(23034 / 1024, abs=1e-3)
    nothing = {"gpus": [], "not_applicable": "no NVIDIA driver here"}
    monkeypatch.setattr(gpus, "NvmlReader", lambda: RecordedReader(nothing))
    doc = plan_doc(capsys, "--model", str(LLAMA31))
    assert doc["hardware"] == {"kind": "cpu", "kv_cache_gib": 4.0}
    assert any("no GPU found through NVML (no NVIDIA driver here)" in n for n in doc["notes"])


@pytest.mark.parametrize(
    ("spec", "count", "gib"),
    [("2x24GiB", 2, 24.0), ("24GiB", 1, 24.0), ("1x80GB", 1, 80e9 / 2**30), ("4x16384MiB", 4, 16)],
)
def test_gpus_flag(spec: str, count: int, gib: float) -> None:
    found = gpus.parse(spec)
    assert (found.count, found.memory_gib) == (count, pytest.approx(gib))


@pytest.mark.parametrize(
    "argv",
    [
        ("--gpus", "lots"),
        ("--gpus", "0x24GiB"),
        ("--sessions", "0"),
        ("--gpu-memory-utilization", "1.5"),
        ("--gpu-memory-utilization", "nan"),
        ("--kv-cache-gib", "2", "--gpus", "1x24GiB"),
    ],
)
def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    rc, out, err = run(capsys, "--model", str(LLAMA31), *argv)
    assert rc == 2 and not out
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_model_files_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    rc, _, err = run(capsys, "--model", str(tmp_path), "--gpus", "1x24GiB")
    assert rc == 2 and "not JSON" in err
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    rc, _, err = run(capsys, "--model", str(tmp_path), "--gpus", "1x24GiB")
    assert rc == 2 and "this plan can size" in err
    rc, _, err = run(capsys, "--model", str(tmp_path / "missing"), "--gpus", "1x24GiB")
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_tiny_model_counts_with_its_own_tokenizer(capsys: pytest.CaptureFixture[str]) -> None:
    """The tiny local model has tokenizer.json and a chat template: the prompt is counted
    exactly (the vLLM test compares the count with the server's /tokenize)."""
    model = tiny_model_dir()
    if not (model / "tokenizer.json").exists():
        pytest.skip("the tiny model is not built (make setup-cpu)")
    doc = plan_doc(capsys, "--model", str(model), "--kv-cache-gib", "1", "--dtype", "float32",
                   "--explain")  # fmt: skip
    p = doc["picoclaw"]
    assert p["exact"] is True and "tokenizer" in p["counted_with"]
    assert doc["hardware"] == {"kind": "cpu", "kv_cache_gib": 1.0}
    launch = doc["launch"]
    assert launch["environment"] == {"VLLM_CPU_KVCACHE_SPACE": "1"}
    assert launch["commands"]["docker"] == ""  # vllm/vllm-openai is a GPU image
    assert "--gpu-memory-utilization" not in launch["vllm_args"]
    assert "--dtype float32" in " ".join(launch["vllm_args"])


def test_explain_prints_each_formula(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--model", str(LLAMA31), "--gpus", "1x24GiB", "--explain")
    assert "= 32 layers x 8 KV heads (8 KV heads / TP 1) x 128 head dim x 2 (K and V) x 2 B" in out
    assert "= 21.600 GiB - weights 14.958 GiB - activation/CUDA-graph reserve 1 GiB" in out
    assert "Verdict: REDUCED" in out and "What would make it fit:" in out
    _, plain, _ = run(capsys, "--model", str(LLAMA31), "--gpus", "1x24GiB")
    assert "= 21.600 GiB" not in plain and "46,208 tokens" in plain


def test_repo_id_from_the_hub_standin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The Hub is a local stand-in behind HF_ENDPOINT (no hub is reachable here); an empty
    cache, not offline. The weights come from the Hub's parameter count, as in the doctor's
    memory-fit check, and the token never shows."""
    from diagnose_standins import HUB_CONFIGS, HUB_PARAMETERS, http_standin, hub

    from picoclaw_vllm import model_memory

    repo = "meta-llama/Llama-3.1-8B-Instruct"
    token = "hf_plan_secret_token_9x7"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_TOKEN", token)
    with http_standin(hub(granted_token=token)) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        _, out, err = run(capsys, "--json", "--model", repo, "--gpus", "1x24GiB")
    assert token not in out + err
    assert out, err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert "(the Hub)" in doc["model"]["config"]
    weights = next(s for s in doc["layouts"][0]["steps"] if s["key"] == "weights")
    doctor = model_memory.from_hub(repo, HUB_PARAMETERS[repo], HUB_CONFIGS[repo])
    assert doctor is not None
    assert weights["value"] == pytest.approx(doctor.weights_gib, abs=1e-3)
    assert "8.03B parameters on the Hub" in weights["formula"]
