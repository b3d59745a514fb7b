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

from picoclaw_vllm import jsonfile, urls
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
    max_tokens_set: bool = False  # False: max_tokens is PicoClaw's default
    warnings: list[str] = field(default_factory=list)  # read, but not as the user may think


def default_path() -> Path:
    home = os.environ.get("PICOCLAW_HOME")
    return Path(home) / "config.json" if home else Path.home() / ".picoclaw" / "config.json"


def _home_problem() -> ConfigProblem | None:
    home = os.environ.get("PICOCLAW_HOME")
    if home and Path(home).exists() and not Path(home).is_dir():
        return ConfigProblem(home, f"PICOCLAW_HOME={home} is a file, not PicoClaw's folder")
    return None


def split_provider(model: str, explicit_provider: str | None = None) -> tuple[str | None, str]:
    """(provider, model sent) the way PicoClaw resolves a model string."""
    if explicit_provider:
        return explicit_provider, model
    head, sep, rest = model.partition("/")
    if sep and head.lower() in KNOWN_PROVIDERS:
        return head.lower(), rest
    return None, model


_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true/false",
               int: "a number", float: "a number", type(None): "null"}  # fmt: skip
_EXPECTED = {"int": "a whole number", "number": "a number", "bool": "true or false",
             "keys": "a string or a list of strings", "names": "a list of strings",
             "object": "an object", "list": "a list", "string": "a string"}  # fmt: skip


class _ShapeError(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_json(path: Path) -> tuple[dict[str, Any], str] | ConfigProblem:
    try:
        text = jsonfile.read_text(path)
    except jsonfile.BadFile as e:
        return ConfigProblem(str(path), f"cannot be read: {e}")
    if not text.strip():
        return ConfigProblem(str(path), "file is empty (PicoClaw needs a JSON object)")
    try:
        data = jsonfile.loads(text)
    except jsonfile.BadFile as e:
        return ConfigProblem(str(path), str(e), e.line, e.column)
    if not isinstance(data, dict):
        return ConfigProblem(str(path), f"top level is {_json_type(data)}, not an object")
    return data, text


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


def _expect(data: dict[str, Any], key: str, where: str, kind: str) -> None:
    """Raise _ShapeError when data[key] is not of the kind PicoClaw reads (null: unset)."""
    value = data.get(key)
    if value is None:
        return
    ok = {
        "object": isinstance(value, dict),
        "list": isinstance(value, list),
        "string": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "keys": isinstance(value, str)
        or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
        "names": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    name = f"{where}{key}"
    if not ok:
        raise _ShapeError(
            name, f"is {_json_type(value)} ({_short(value)}), PicoClaw expects {_EXPECTED[kind]}"
        )
    if kind in ("int", "number") and value <= 0:
        raise _ShapeError(name, f"is {value}: it must be above 0")


def _check_shape(data: dict[str, Any]) -> None:
    _expect(data, "version", "", "int")
    for key in ("providers", "agents"):
        _expect(data, key, "", "object")
    for name, provider in _dict(data.get("providers")).items():
        if provider is not None and not isinstance(provider, dict):
            raise _ShapeError(f"providers.{name}", f"is {_json_type(provider)}, not an object")
        for key in ("api_base", "api_key"):
            _expect(_dict(provider), key, f"providers.{name}.", "string")
        _expect(_dict(provider), "request_timeout", f"providers.{name}.", "number")
    _expect(_dict(data.get("agents")), "defaults", "agents.", "object")
    defaults = _dict(_dict(data.get("agents")).get("defaults"))
    for key in ("model", "model_name"):
        _expect(defaults, key, "agents.defaults.", "string")
    _expect(defaults, "max_tokens", "agents.defaults.", "int")
    _expect(defaults, "model_fallbacks", "agents.defaults.", "names")
    _expect(data, "model_list", "", "list")
    for i, entry in enumerate(data.get("model_list") or []):
        where = f"model_list[{i}]."
        if not isinstance(entry, dict):
            raise _ShapeError(f"model_list[{i}]", f"is {_json_type(entry)}, not an object")
        for key in ("model_name", "model", "api_base", "provider", "api_key"):
            _expect(entry, key, where, "string")
        _expect(entry, "api_keys", where, "keys")
        _expect(entry, "request_timeout", where, "number")
        if not isinstance(entry.get("streaming"), dict):  # {"enabled": bool}, or a bare bool
            _expect(entry, "streaming", where, "bool")
        _expect(_dict(entry.get("streaming")), "enabled", f"{where}streaming.", "bool")
        for key in ("max_tokens_field", "user_agent"):
            _expect(entry, key, where, "string")
        for key in ("extra_body", "custom_headers"):
            _expect(entry, key, where, "object")
        _expect(entry, "fallbacks", where, "names")


def _problem(path: Path, text: str, e: _ShapeError) -> ConfigProblem:
    last = e.key.rsplit(".", 1)[-1].split("[")[0]
    line, column = jsonfile.key_position(text, last)
    return ConfigProblem(str(path), f"{e.key} {e.message}", line, column)


def _api_base(value: object, key: str, warnings: list[str]) -> str:
    """The api_base PicoClaw uses: the configured one when set, else its default (said so)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        state = "null" if value is None else "empty"
        warnings.append(f"{key} is {state}: PicoClaw uses its default {DEFAULT_API_BASE}")
        return DEFAULT_API_BASE
    try:
        return urls.check_api_base(str(value), key)
    except urls.BadUrl as e:
        raise _ShapeError(key, str(e).removeprefix(key).strip()) from None


def _security_keys(config_path: Path) -> dict[str, list[str]] | ConfigProblem:
    path = config_path.parent / ".security.yml"
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        data = yaml.safe_load(jsonfile.read_text(path)) or {}
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return ConfigProblem(str(path), f"not valid YAML: {e.problem}", line, col)
    except jsonfile.BadFile as e:
        return ConfigProblem(str(path), f"cannot be read: {e}")
    except (yaml.YAMLError, RecursionError) as e:
        return ConfigProblem(str(path), f"cannot be read: {type(e).__name__}")
    if not isinstance(data, dict):
        return ConfigProblem(str(path), f"top level is {_json_type(data)}, not a mapping")
    entries = data.get("model_list") or {}
    if not isinstance(entries, dict):
        return ConfigProblem(
            str(path), f"model_list is {_json_type(entries)}, not a mapping of model names"
        )
    keys = {}
    for name, entry in entries.items():
        value = _dict(entry).get("api_keys")
        if not isinstance(entry, dict | None) or not isinstance(value, str | list | None):
            return ConfigProblem(
                str(path), f"model_list.{name} should be a mapping with api_keys: [KEY, ...]"
            )
        keys[str(name)] = _keys(value)
    return keys


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


def _max_tokens(defaults: dict[str, Any]) -> tuple[int, bool]:
    value = defaults.get("max_tokens")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, True
    return DEFAULT_MAX_TOKENS, False


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
    warnings: list[str] = []
    api_base = _api_base(vllm.get("api_base"), "providers.vllm.api_base", warnings)
    max_tokens, max_tokens_set = _max_tokens(defaults)
    return PicoclawConfig(
        path=str(path),
        format="legacy",
        api_base=api_base,
        api_key=str(vllm.get("api_key")) if vllm.get("api_key") else None,
        model_configured=model,
        model_sent=sent,
        provider=provider if model else "vllm",
        max_tokens=max_tokens,
        request_timeout_s=_number(vllm.get("request_timeout"), DEFAULT_REQUEST_TIMEOUT_S),
        fallbacks=fallbacks,
        temperature=_temperature(defaults),
        max_tokens_set=max_tokens_set,
        warnings=warnings,
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
    warnings: list[str] = []
    if "vllm" in _dict(data.get("providers")):
        warnings.append(
            "providers.vllm is ignored: this config has a model_list, and PicoClaw then takes "
            "api_base and keys from its model_list entries only"
        )
    where = f"model_list entry {name!r} api_base" if name else "api_base"
    api_base = _api_base(entry.get("api_base"), where, warnings) if entry else DEFAULT_API_BASE
    max_tokens, max_tokens_set = _max_tokens(defaults)
    return PicoclawConfig(
        path=str(path),
        format="v3",
        api_base=api_base,
        api_key=keys[0] if keys else None,
        model_configured=model,
        model_sent=sent,
        provider=provider,
        max_tokens=max_tokens,
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
        max_tokens_set=max_tokens_set,
        warnings=warnings,
    )


def load(path: Path | None = None) -> PicoclawConfig | ConfigProblem:
    """The config at path (or PicoClaw's default place); defaults when none exists there."""
    if path is None and (home := _home_problem()) is not None:
        return home
    path = path or default_path()
    if not path.exists() and not path.is_symlink():  # a dangling link or a loop is named
        return PicoclawConfig(path=None, format="none")
    parsed = _parse_json(path)
    if isinstance(parsed, ConfigProblem):
        return parsed
    data, text = parsed
    try:
        _check_shape(data)
        if "model_list" in data or isinstance(data.get("version"), int):
            return _v3(path, data)
        return _legacy(path, data)
    except _ShapeError as e:
        return _problem(path, text, e)


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
