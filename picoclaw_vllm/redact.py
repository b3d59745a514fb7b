"""Keeps API keys and Hugging Face tokens out of everything the tool prints or writes."""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

_SECRET_ENV = ("VLLM_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")
_registered: set[str] = set()
_PATTERNS = (
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
    re.compile(r"\bhf_[A-Za-z0-9]{8,}\b"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}\b"),
    re.compile(r"(?i)(--api-key[= ])\S+"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?basic\s+)[A-Za-z0-9+/=]+"),
    # a URL's user info (user:password@) and the secrets some proxies take in its query
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://)[^/\s@?#\"'<>]+(?=@)"),
    re.compile(
        r"(?i)([?&;](?:api[_-]?key|key|token|access[_-]?token|auth|password|passwd|pwd|secret"
        r"|sig|signature|x-api-key|hf_token)=)[^&#\s\"'<>]+"
    ),
)
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret so redact() removes it wherever it shows up."""
    if value and len(value) >= 4:
        _registered.add(value)


def register_url_secrets(url: str) -> None:
    """Remember the credentials a URL carries (its user info, also as the Basic header that
    an HTTP client makes of it), so they are masked wherever they appear on their own."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return
    if parts.password:
        register_secret(parts.password)
        register_secret(unquote(parts.password))
    if parts.username and parts.password is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password)}"
        register_secret(base64.b64encode(pair.encode()).decode())
    elif parts.username:
        register_secret(parts.username)
        register_secret(unquote(parts.username))


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


_SAFE_WHITESPACE = {"\n", "\t"}


def printable(text: str) -> str:
    """text with control, format (bidirectional overrides, zero-width) and separator characters
    escaped, so a config or a server cannot rewrite or hide what the terminal shows."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _SAFE_WHITESPACE or ch == " " or unicodedata.category(ch)[0] not in "CZ":
            out.append(ch)
        else:  # \uXXXX (surrogate pairs above U+FFFF): also a valid escape inside JSON
            out.append(_u_escape(ch))
    return "".join(out)


def _u_escape(ch: str) -> str:
    data = ch.encode("utf-16-be")
    return "".join(f"\\u{data[i]:02x}{data[i + 1]:02x}" for i in range(0, len(data), 2))
