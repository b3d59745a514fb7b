"""api_base as every command reads it: checked once, joined to paths by its parts (a query such
as `?api_key=...` stays a query, never a path segment), its credentials kept apart."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from picoclaw_vllm.redact import redact, register_url_secrets


class BadUrl(ValueError):
    """The text cannot be an api_base; str() is one line that says why (credentials masked)."""


def check_api_base(text: str | None, what: str = "--api-base") -> str:
    """text stripped of blanks and a trailing slash, or BadUrl saying what is wrong with it.

    A URL without a scheme (`localhost:8000/v1`) passes: the doctor names that as a finding."""
    if text is None:
        raise BadUrl(f"{what} is not set")
    value = text.strip()
    if not value:
        raise BadUrl(f"{what} is empty (e.g. http://localhost:8000/v1)")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise BadUrl(f"{what} {redact(value)!r} contains blanks or control characters")
    register_url_secrets(value)
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises for a port that is not a number in 0..65535
    except ValueError as e:
        raise BadUrl(f"{what} {redact(value)!r} is not a valid URL: {e}") from None
    if "://" in value and not parts.hostname:
        raise BadUrl(f"{what} {redact(value)!r} has no host name")
    return value.rstrip("/")


def join(base: str, suffix: str) -> str:
    """base's URL with suffix appended to its path; its query (if any) kept after the path."""
    if "://" not in base:
        return base.rstrip("/") + suffix
    parts = urlsplit(base)
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + suffix, parts.query, "")
    )


def ends_in_v1(base: str) -> bool:
    """Whether the base's path ends in /v1 (PicoClaw's api_base does)."""
    return path_of(base).rstrip("/").endswith("/v1")


def without_v1(base: str) -> str:
    """The base without a trailing /v1 (and slash); a base without one is returned as is."""
    if not ends_in_v1(base):
        return base.rstrip("/")
    if "://" not in base:
        return base.rstrip("/")[: -len("/v1")]
    parts = urlsplit(base)
    path = parts.path.rstrip("/")[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def root(base: str) -> str:
    """Where /health, /metrics and /version live: base without its /v1, else the host root."""
    if "://" not in base or ends_in_v1(base):
        return without_v1(base)
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))


def path_of(base: str) -> str:
    return urlsplit(base).path if "://" in base else base


def without_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """(url without user:password@, (user, password) or None) — the credentials travel as an
    HTTP Basic header, the way Go's (PicoClaw's) HTTP client sends them."""
    if "://" not in url:
        return url, None
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, (unquote(parts.username or ""), unquote(parts.password or ""))


def has_userinfo(url: str) -> bool:
    return without_userinfo(url)[1] is not None
