"""Read PicoClaw's config the way PicoClaw does, and say what it will send to vLLM.

Both formats: the seed's (`providers.vllm.{api_base, api_key}`, `agents.defaults.model`,
`model_fallbacks`) and the current one (`"version": 3`, `model_list` and
`agents.defaults.model_name`, secrets in `.security.yml`). A file that cannot be read
becomes a `ConfigProblem` with file, line and column, never an exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from picoclaw_vllm.picoclaw.request import AGENT_TEMPERATURE

DEFAULT_API_BASE = "http://localhost:8000/v1"
DEFAULT_MAX_TOKENS = 32768
DEFAULT_REQUEST_TIMEOUT_S = 120.0
# First path segments PicoClaw takes as a provider, not as part of the model name.
KNOWN_PROVIDERS = frozenset(
    {
        "openai", "anthropic", "openrouter", "groq", "zhipu", "gemini", "google", "vllm",
        "nvidia", "ollama", "moonshot", "deepseek", "qwen", "cerebras", "volcengine",
        "shengsuanyun", "github_copilot", "litellm", "azure", "mistral", "xai",
    }
)  # fmt: skip
KEYLESS_PROVIDERS = frozenset({"vllm", "ollama", "litellm"})


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str
    line: int = 1
    column: int = 1


@dataclass(frozen=True)
class Fallback:
    name: str
    provider: str | None
    has_key: bool


@dataclass
class PicoclawConfig:
    """What PicoClaw would use to talk to vLLM, with where each value came from."""

    path: str | None
    format: str  # "none", "legacy" or "v3"
    api_base: str = DEFAULT_API_BASE
    api_key: str | None = field(default=None, repr=False)
    model_configured: str | None = None
    model_sent: str | None = None
    provider: str | None = "vllm"
    max_tokens: int = DEFAULT_MAX_TOKENS
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    fallbacks: list[Fallback] = field(default_factory=list)
    entry_name: str | None = None  # the model_list entry in use (current format)
    streaming: bool | None = None
    temperature: float = AGENT_TEMPERATURE  # agents.defaults.temperature, the agent's 0.7 unset
    max_tokens_field: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    custom_headers: dict[str, str] = field(default_factory=dict, repr=False)
    user_agent: str | None = None


def default_path() -> Path:
    home = os.environ.get("PICOCLAW_HOME")
    return Path(home) / "config.json" if home else Path.home() / ".picoclaw" / "config.json"


def split_provider(model: str, explicit_provider: str | None = None) -> tuple[str | None, str]:
    """(provider, model sent) the way PicoClaw resolves a model string."""
    if explicit_provider:
        return explicit_provider, model
    head, sep, rest = model.partition("/")
    if sep and head.lower() in KNOWN_PROVIDERS:
        return head.lower(), rest
    return None, model


def _problem_from_json_error(path: Path, text: str, e: json.JSONDecodeError) -> ConfigProblem:
    return ConfigProblem(str(path), f"not valid JSON: {e.msg}", e.lineno, e.colno)


def _parse_json(path: Path) -> dict[str, Any] | ConfigProblem:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return ConfigProblem(str(path), f"cannot be read: {e}")
    if not text.strip():
        return ConfigProblem(str(path), "file is empty (PicoClaw needs a JSON object)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return _problem_from_json_error(path, text, e)
    if not isinstance(data, dict):
        return ConfigProblem(str(path), f"top level is a JSON {type(data).__name__}, not an object")
    return data


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _keys(value: object) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [k for k in value if isinstance(k, str) and k]
    return []


def _security_keys(config_path: Path) -> dict[str, list[str]] | ConfigProblem:
    path = config_path.parent / ".security.yml"
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return ConfigProblem(str(path), f"not valid YAML: {e.problem}", line, col)
    except (OSError, yaml.YAMLError) as e:
        return ConfigProblem(str(path), f"cannot be read: {e}")
    entries = _dict(_dict(data).get("model_list"))
    return {name: _keys(_dict(v).get("api_keys")) for name, v in entries.items()}


def _temperature(defaults: dict[str, Any]) -> float:
    value = defaults.get("temperature")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return AGENT_TEMPERATURE


def _streaming(value: object) -> bool | None:
    """`"streaming": {"enabled": true}` (ModelStreamingConfig); a bare bool is read too."""
    if isinstance(value, dict):
        value = value.get("enabled")
    return value if isinstance(value, bool) else None


def _number(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) and value > 0 else default


def _legacy(path: Path, data: dict[str, Any]) -> PicoclawConfig:
    providers = _dict(data.get("providers"))
    vllm = _dict(providers.get("vllm"))
    defaults = _dict(_dict(data.get("agents")).get("defaults"))
    model = defaults.get("model") if isinstance(defaults.get("model"), str) else None
    provider, sent = split_provider(model) if model else ("vllm", None)
    fallbacks = []
    for name in defaults.get("model_fallbacks") or []:
        if isinstance(name, str):
            fb_provider, _ = split_provider(name)
            fb_conf = _dict(providers.get(fb_provider or ""))
            has_key = bool(fb_conf.get("api_key")) or fb_provider in KEYLESS_PROVIDERS
            fallbacks.append(Fallback(name, fb_provider, has_key))
    return PicoclawConfig(
        path=str(path),
        format="legacy",
        api_base=str(vllm.get("api_base") or DEFAULT_API_BASE),
        api_key=str(vllm.get("api_key")) if vllm.get("api_key") else None,
        model_configured=model,
        model_sent=sent,
        provider=provider if model else "vllm",
        max_tokens=int(_number(defaults.get("max_tokens"), DEFAULT_MAX_TOKENS)),
        request_timeout_s=_number(vllm.get("request_timeout"), DEFAULT_REQUEST_TIMEOUT_S),
        fallbacks=fallbacks,
        temperature=_temperature(defaults),
    )


def _v3(path: Path, data: dict[str, Any]) -> PicoclawConfig | ConfigProblem:
    secrets = _security_keys(path)
    if isinstance(secrets, ConfigProblem):
        return secrets
    entries = {
        str(e.get("model_name")): e
        for e in (data.get("model_list") or [])
        if isinstance(e, dict) and e.get("model_name")
    }
    defaults = _dict(_dict(data.get("agents")).get("defaults"))
    name = defaults.get("model_name") or defaults.get("model")
    entry = _dict(entries.get(str(name))) if name else {}
    if name and not entry:
        return ConfigProblem(str(path), f'agents.defaults.model_name "{name}" is not in model_list')

    def keys_of(entry_name: str, e: dict[str, Any]) -> list[str]:
        return secrets.get(entry_name) or _keys(e.get("api_keys")) or _keys(e.get("api_key"))

    model = entry.get("model") if isinstance(entry.get("model"), str) else None
    provider, sent = split_provider(model, entry.get("provider")) if model else ("vllm", None)
    fallbacks = []
    for fb in list(entry.get("fallbacks") or []) + list(defaults.get("model_fallbacks") or []):
        if not isinstance(fb, str):
            continue
        fb_entry = _dict(entries.get(fb))
        fb_model = str(fb_entry.get("model") or fb)
        fb_provider, _ = split_provider(fb_model, fb_entry.get("provider"))
        has_key = bool(keys_of(fb, fb_entry)) or fb_provider in KEYLESS_PROVIDERS
        fallbacks.append(Fallback(fb, fb_provider, has_key))
    keys = keys_of(str(name), entry) if name else []
    return PicoclawConfig(
        path=str(path),
        format="v3",
        api_base=str(entry.get("api_base") or DEFAULT_API_BASE),
        api_key=keys[0] if keys else None,
        model_configured=model,
        model_sent=sent,
        provider=provider,
        max_tokens=int(_number(defaults.get("max_tokens"), DEFAULT_MAX_TOKENS)),
        request_timeout_s=_number(entry.get("request_timeout"), DEFAULT_REQUEST_TIMEOUT_S),
        fallbacks=fallbacks,
        entry_name=str(name) if name else None,
        streaming=_streaming(entry.get("streaming")),
        temperature=_temperature(defaults),
        max_tokens_field=_str_or_none(entry.get("max_tokens_field")),
        extra_body=_dict(entry.get("extra_body")),
        custom_headers={
            str(k): str(v)
            for k, v in _dict(entry.get("custom_headers")).items()
            if str(k).strip() and isinstance(v, str)
        },
        user_agent=_str_or_none(entry.get("user_agent")),
    )


def load(path: Path | None = None) -> PicoclawConfig | ConfigProblem:
    """The config at path (or PicoClaw's default place); defaults when none exists there."""
    path = path or default_path()
    if not path.exists():
        return PicoclawConfig(path=None, format="none")
    data = _parse_json(path)
    if isinstance(data, ConfigProblem):
        return data
    if "model_list" in data or isinstance(data.get("version"), int):
        return _v3(path, data)
    return _legacy(path, data)


def api_key(
    given: str | None, config: PicoclawConfig, env: Mapping[str, str] | None = None
) -> tuple[str | None, str]:
    """The key PicoClaw's traffic is sent with, and where it came from: the flag, then
    $VLLM_API_KEY, then the config (.security.yml first); the one precedence every part of
    this tool uses (the doctor, the load profiles, the sweep)."""
    env = os.environ if env is None else env
    if given:
        return given, "--api-key"
    if env.get("VLLM_API_KEY"):
        return env["VLLM_API_KEY"], "VLLM_API_KEY"
    if config.api_key:
        return config.api_key, "config"
    return None, "none"
