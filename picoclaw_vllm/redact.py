"""Keeps API keys and Hugging Face tokens out of everything the tool prints or writes."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

_SECRET_ENV = ("VLLM_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")
_registered: set[str] = set()
_PATTERNS = (
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
    re.compile(r"\bhf_[A-Za-z0-9]{8,}\b"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}\b"),
    re.compile(r"(?i)(--api-key[= ])\S+"),
)
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret so redact() removes it wherever it shows up."""
    if value and len(value) >= 4:
        _registered.add(value)


def secrets_in_env() -> Iterable[str]:
    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value:
            yield value


def _as_token(secret: str) -> re.Pattern[str]:
    """The secret standing alone, so a short key does not mask ordinary words containing it."""
    return re.compile(rf"(?<![A-Za-z0-9_]){re.escape(secret)}(?![A-Za-z0-9_])")


def redact(text: str) -> str:
    for secret in sorted({*_registered, *secrets_in_env()}, key=len, reverse=True):
        if len(secret) >= 4:
            text = _as_token(secret).sub(MASK, text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text
