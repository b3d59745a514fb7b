"""A check: a named judgement over the facts, with the checks it needs to have passed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from diagnostics.facts import Facts, Target
from diagnostics.findings import Outcome
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.picoclaw.config import default_path

CheckFn = Callable[[Facts], Outcome]


@dataclass(frozen=True)
class Check:
    name: str
    title: str
    group: str
    run: CheckFn
    requires: tuple[str, ...] = ()
    finding_ids: tuple[FindingId, ...] = ()


def config_where(target: Target) -> str:
    """The config a fix goes into; when there is none yet, where PicoClaw would read one."""
    return target.config.path or f"{default_path()} (none yet; create it)"


def key_line(target: Target) -> str:
    """The config line that gives PicoClaw the server's key, in the config's own format."""
    if target.config.format == "v3":
        name = target.config.entry_name or "<model_name>"
        return (
            f'{config_where(target)}: "model_list": [{{"model_name": "{name}", ..., '
            '"api_keys": ["<the server\'s --api-key>"]}] (or in ~/.picoclaw/.security.yml)'
        )
    return (
        f'{config_where(target)}: "providers": {{"vllm": {{"api_key": '
        '"<the server\'s --api-key>"}}'
    )


def model_line(target: Target, served_name: str) -> str:
    if target.config.format == "v3":
        name = target.config.entry_name or "<model_name>"
        return (
            f'{config_where(target)}: "model_list": [{{"model_name": "{name}", '
            f'"model": "vllm/{served_name}", ...}}]'
        )
    return f'{config_where(target)}: "agents": {{"defaults": {{"model": "vllm/{served_name}"}}}}'


def max_tokens_line(target: Target, value: int) -> str:
    return f'{config_where(target)}: "agents": {{"defaults": {{"max_tokens": {value}}}}}'
