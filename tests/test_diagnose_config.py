"""Reading PicoClaw's config like PicoClaw: both formats, secrets file, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from diagnose_helpers import ids, run_cli, run_json, status_of

from diagnostics.facts import build_target
from diagnostics.options import DiagnoseOptions
from picoclaw_vllm.picoclaw import config as picoclaw_config
from picoclaw_vllm.picoclaw.config import ConfigProblem, PicoclawConfig

UNUSED_PORT_BASE = "http://127.0.0.1:9/v1"  # port 9 (discard): nothing listens here


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PICOCLAW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("VLLM_API_KEY", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) if not isinstance(data, str) else data)
    return path


def loaded(path: Path) -> PicoclawConfig:
    config = picoclaw_config.load(path)
    assert isinstance(config, PicoclawConfig), config
    return config


def test_seed_format(tmp_path: Path) -> None:
    config = loaded(write(tmp_path / "c.json", {
        "agents": {"defaults": {"model": "vllm/meta-llama/Llama-3.2-3B-Instruct",
                                "model_fallbacks": ["openrouter/meta-llama/llama-3.2-3b"]}},
        "providers": {"vllm": {"api_base": "http://192.168.1.100:8000/v1", "api_key": "k-123"},
                      "openrouter": {"api_key": "sk-or-v1-xxx"}},
    }))  # fmt: skip
    assert config.format == "legacy"
    assert config.api_base == "http://192.168.1.100:8000/v1"
    assert config.api_key == "k-123"
    assert config.model_sent == "meta-llama/Llama-3.2-3B-Instruct"
    assert config.max_tokens == 32768
    assert [(f.provider, f.has_key) for f in config.fallbacks] == [("openrouter", True)]


def test_current_format_with_security_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", {
        "version": 3,
        "agents": {"defaults": {"model_name": "local", "max_tokens": 4096,
                                "model_fallbacks": ["cloud"]}},
        "model_list": [
            {"model_name": "local", "model": "vllm/Qwen/Qwen2.5-7B-Instruct",
             "api_base": "http://gpu-box:8000/v1", "api_keys": ["from-config"],
             "request_timeout": 300},
            {"model_name": "cloud", "model": "openrouter/qwen/qwen-2.5-7b-instruct"},
        ],
    })  # fmt: skip
    (tmp_path / ".security.yml").write_text(
        "model_list:\n  local:\n    api_keys:\n      - from-security-yml\n"
    )
    config = loaded(path)
    assert config.format == "v3"
    assert config.api_base == "http://gpu-box:8000/v1"
    assert config.api_key == "from-security-yml"
    assert config.model_sent == "Qwen/Qwen2.5-7B-Instruct"
    assert config.max_tokens == 4096 and config.request_timeout_s == 300
    assert [(f.name, f.has_key) for f in config.fallbacks] == [("cloud", False)]


def test_explicit_provider_sends_model_unchanged(tmp_path: Path) -> None:
    config = loaded(write(tmp_path / "c.json", {
        "version": 3, "agents": {"defaults": {"model_name": "m"}},
        "model_list": [{"model_name": "m", "provider": "vllm", "model": "qwen/x"}],
    }))  # fmt: skip
    assert config.model_sent == "qwen/x"


def test_defaults_when_no_config(tmp_path: Path) -> None:
    config = loaded(tmp_path / "absent.json")
    assert config.format == "none"
    assert config.api_base == "http://localhost:8000/v1" and config.api_key is None


def test_picoclaw_home_then_home_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert picoclaw_config.default_path() == tmp_path / "home" / "config.json"
    monkeypatch.delenv("PICOCLAW_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert picoclaw_config.default_path() == tmp_path / "user" / ".picoclaw" / "config.json"


def test_flags_override_config_and_env_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = loaded(write(tmp_path / "c.json", {
        "providers": {"vllm": {"api_base": "http://a:1/v1", "api_key": "from-config"}},
        "agents": {"defaults": {"model": "x"}},
    }))  # fmt: skip
    target = build_target(DiagnoseOptions(), config)
    assert (target.api_key, target.key_source) == ("from-config", "config")
    monkeypatch.setenv("VLLM_API_KEY", "from-env")
    assert build_target(DiagnoseOptions(), config).key_source == "VLLM_API_KEY"
    target = build_target(
        DiagnoseOptions(api_base="http://b:2/v1/", model="vllm/y", api_key="flag-key-0042"), config
    )
    assert (target.api_base, target.model, target.api_key) == (
        "http://b:2/v1",
        "y",
        "flag-key-0042",
    )


def test_malformed_json_reports_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "c.json", '{\n  "agents": {\n    "defaults": {"model": "x",}\n  }\n}\n')
    problem = picoclaw_config.load(path)
    assert isinstance(problem, ConfigProblem)
    assert (problem.line, problem.column) == (3, 31)
    rc, out, err = run_cli(capsys, "--config", str(path))
    assert rc == 2
    unwrapped = "".join(line.strip() for line in out.splitlines())
    assert f"{path}:3:31" in unwrapped and "[config_invalid]" in out
    assert "Traceback" not in out + err


def test_empty_config_is_a_clear_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "c.json", "  \n")
    rc, doc = run_json(capsys, "--config", str(path))
    assert rc == 2
    assert ids(doc) == ["config_invalid"]
    assert "empty" in doc["findings"][0]["message"]
    assert status_of(doc, "connection") == "skip"


def test_top_level_array_is_invalid(tmp_path: Path) -> None:
    problem = picoclaw_config.load(write(tmp_path / "c.json", "[1, 2]"))
    assert isinstance(problem, ConfigProblem) and "list" in problem.message


def test_malformed_security_yml_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", {"version": 3, "model_list": []})
    (tmp_path / ".security.yml").write_text("model_list:\n  local: [unclosed\n")
    problem = picoclaw_config.load(path)
    assert isinstance(problem, ConfigProblem)
    assert problem.path.endswith(".security.yml") and problem.line >= 2


def test_model_name_missing_from_model_list(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", {
        "version": 3, "agents": {"defaults": {"model_name": "nope"}}, "model_list": [],
    })  # fmt: skip
    problem = picoclaw_config.load(path)
    assert isinstance(problem, ConfigProblem) and "nope" in problem.message


def test_missing_config_flag_path_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = run_cli(capsys, "--config", str(tmp_path / "missing.json"))
    assert rc == 2 and "no such file" in err and "Traceback" not in err


def test_no_fallbacks_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "c.json", {"providers": {"vllm": {"api_base": UNUSED_PORT_BASE}}})
    _, doc = run_json(capsys, "--config", str(path), "--check", "fallbacks")
    finding = next(f for f in doc["findings"] if f["id"] == "fallback_missing")
    assert finding["severity"] == "warn" and "model_fallbacks" in finding["remedy"]


def test_fallback_provider_without_key_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "c.json", {
        "agents": {"defaults": {"model": "m", "model_fallbacks": ["openrouter/a/b"]}},
        "providers": {"vllm": {"api_base": UNUSED_PORT_BASE}},
    })  # fmt: skip
    rc, doc = run_json(capsys, "--config", str(path), "--check", "fallbacks")
    finding = next(f for f in doc["findings"] if f["id"] == "fallback_missing")
    assert "openrouter" in finding["message"] and '"openrouter"' in finding["remedy"]
    assert rc == 0
    assert run_json(capsys, "--config", str(path), "--check", "fallbacks", "--strict")[0] == 1


def test_fallback_with_key_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "c.json", {
        "agents": {"defaults": {"model": "m", "model_fallbacks": ["openrouter/a/b"]}},
        "providers": {"openrouter": {"api_key": "sk-or-v1-abcdefgh"}},
    })  # fmt: skip
    rc, doc = run_json(capsys, "--config", str(path), "--check", "fallbacks")
    assert status_of(doc, "fallbacks") == "pass" and rc == 0
    assert "sk-or-v1-abcdefgh" not in json.dumps(doc)
