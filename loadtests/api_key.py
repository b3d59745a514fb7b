"""Which API key a load test sends: given, VLLM_API_KEY, or the one in PicoClaw's config.

The key is only ever returned, never printed or logged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def picoclaw_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = env.get("PICOCLAW_HOME")
    return Path(home) / "config.json" if home else Path.home() / ".picoclaw" / "config.json"


def _is_vllm_entry(entry: dict[str, Any]) -> bool:
    provider = str(entry.get("provider") or "")
    model = str(entry.get("model") or "")
    name = str(entry.get("model_name") or "")
    return provider == "vllm" or model.startswith("vllm/") or name == "vllm"


def key_from_picoclaw_config(config: dict[str, Any]) -> str | None:
    """providers.vllm.api_key (old format), else the first api_keys of a vLLM model_list entry."""
    providers = config.get("providers")
    if isinstance(providers, dict):
        vllm = providers.get("vllm")
        if isinstance(vllm, dict) and vllm.get("api_key"):
            return str(vllm["api_key"])
    entries = config.get("model_list")
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and _is_vllm_entry(entry):
                keys = entry.get("api_keys") or ([entry["api_key"]] if entry.get("api_key") else [])
                if keys:
                    return str(keys[0])
    return None


def resolve_api_key(
    given: str | None, env: Mapping[str, str] | None = None, config_path: Path | None = None
) -> str | None:
    env = os.environ if env is None else env
    if given:
        return given
    if env.get("VLLM_API_KEY"):
        return env["VLLM_API_KEY"]
    path = config_path or picoclaw_config_path(env)
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return key_from_picoclaw_config(config) if isinstance(config, dict) else None
