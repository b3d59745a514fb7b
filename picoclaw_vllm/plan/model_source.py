"""The model's config.json (and tokenizer files when there are some) from a local path, the
local Hugging Face cache, or the Hub when reachable (HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE
honoured as the doctor honours them, picoclaw_vllm/hub.py)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from picoclaw_vllm import hub
from picoclaw_vllm.errors import UsageError
from picoclaw_vllm.model_memory import GIB

CONFIG = "config.json"


@dataclass(frozen=True)
class ModelSource:
    name: str  # what vLLM's --model gets: a repo id or a local path
    config: dict[str, Any]
    where: str  # where config.json was read, in words
    directory: Path | None = None  # a local folder holding the model's other files
    weights_bytes: int | None = None  # from the safetensors files or the Hub's count
    weights_source: str = ""
    unknown: list[str] = field(default_factory=list)  # what could not be known

    def file(self, name: str) -> Path | None:
        if self.directory is None:
            return None
        path = self.directory / name
        return path if path.is_file() else None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise UsageError(f"{path} is not JSON: {str(e)[:120]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a model config (a JSON object)")
    return data


def _local(path: Path) -> ModelSource:
    config_path = path if path.is_file() else path / CONFIG
    if not config_path.is_file():
        raise UsageError(f"{path} holds no {CONFIG}")
    directory = config_path.parent
    files = sorted(directory.glob("*.safetensors"))
    weights = sum(f.stat().st_size for f in files) if files else None
    return ModelSource(
        name=str(directory),
        config=_read_config(config_path),
        where=str(config_path),
        directory=directory,
        weights_bytes=weights,
        weights_source=f"{len(files)} safetensors files in {directory}" if files else "",
    )


def _cached(repo: str) -> Path | None:
    """config.json of repo in the local Hugging Face cache (HF_HOME / HF_HUB_CACHE)."""
    from huggingface_hub import constants, try_to_load_from_cache

    # read at call time, as the doctor reads HF_* (huggingface_hub reads them at import)
    home = os.environ.get("HF_HOME")
    cache = os.environ.get("HF_HUB_CACHE") or (
        str(Path(home) / "hub") if home else constants.HF_HUB_CACHE
    )
    found = try_to_load_from_cache(repo, CONFIG, cache_dir=cache)
    return Path(found) if isinstance(found, str) else None


def locate(model: str, check_hub: bool = True, config: Path | None = None) -> ModelSource:
    """The model's config, from `config` when given (the model keeps its name), else from the
    first place that has it; UsageError when none does."""
    if config is not None:
        source = _local(config.expanduser())
        return replace(source, name=model)
    path = Path(model).expanduser()
    if path.exists():
        return _local(path)
    if not hub.looks_like_repo_id(model):
        raise UsageError(f"--model {model!r}: no such file or folder, and not a Hub repo id")
    cached = _cached(model)
    if cached is not None:
        return replace(_local(cached), name=model, where=f"{cached} (local Hugging Face cache)")
    if not check_hub:
        raise UsageError(f"{model}: not in the local Hugging Face cache, and --no-hub was given")
    answer = hub.check_repo(model)
    if answer.state != "ok" or answer.config is None:
        why = answer.detail or answer.state
        raise UsageError(
            f"{model}: not in the local Hugging Face cache and the Hub gave no config.json "
            f"({answer.state}: {why}); pass a local config.json or model folder"
        )
    weights = None
    if answer.parameters:
        from picoclaw_vllm.model_memory import dtype_bytes

        weights = answer.parameters * dtype_bytes(answer.config)
    return ModelSource(
        model,
        answer.config,
        f"{answer.endpoint}/{model} (the Hub)",
        None,
        weights,
        f"{answer.parameters / 1e9:.2f}B parameters on the Hub" if answer.parameters else "",
    )


def describe_weights(source: ModelSource) -> str:
    if source.weights_bytes is None:
        return "unknown"
    return f"{source.weights_bytes / GIB:.2f} GiB ({source.weights_source})"
