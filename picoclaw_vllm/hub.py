"""Ask the Hugging Face Hub whether the model's repo exists and this machine may read it.

Honours HF_TOKEN (or the token `huggingface-cli login` saved), HF_ENDPOINT and
HF_HUB_OFFLINE, read at call time. An unreachable Hub is a fact, not an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import httpx

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class HubAnswer:
    repo: str
    state: str  # ok, gated_no_token, gated_no_access, not_found, token_rejected, unreachable,
    # offline
    detail: str = ""
    endpoint: str = DEFAULT_ENDPOINT
    token_used: bool = False
    parameters: int | None = None  # from the repo's safetensors metadata
    config: dict[str, Any] | None = None


def looks_like_repo_id(model: str) -> bool:
    return bool(REPO_ID.match(model)) and not os.path.exists(model)


def _token() -> str | None:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:
        return None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def check_repo(repo: str, timeout_s: float = 3.0) -> HubAnswer:
    """What the Hub says about repo, without raising."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
    if _offline():
        return HubAnswer(repo, "offline", "HF_HUB_OFFLINE is set", endpoint)
    token = _token()
    api = HfApi(endpoint=endpoint, token=token or False)

    def answer(state: str, detail: str, parameters: int | None = None) -> HubAnswer:
        return HubAnswer(repo, state, detail, endpoint, bool(token), parameters)

    try:
        info = api.model_info(repo, timeout=timeout_s)
    except Exception as e:
        if token and _token_rejected(e):
            return answer("token_rejected", _first_line(e))
        if isinstance(e, GatedRepoError):
            return answer("gated_no_access", _first_line(e))
        if isinstance(e, RepositoryNotFoundError):
            return answer("not_found", _first_line(e))
        return answer("unreachable", f"{type(e).__name__}: {_first_line(e)}")
    params = info.safetensors.total if info.safetensors is not None else None
    if info.gated:
        if not token:
            return answer("gated_no_token", f"gated={info.gated}", params)
        try:
            _auth_check(endpoint, repo, token, timeout_s)
        except GatedRepoError as e:
            return answer("gated_no_access", _first_line(e), params)
        except Exception as e:
            if _token_rejected(e):
                return answer("token_rejected", _first_line(e), params)
            return answer("unreachable", f"{type(e).__name__}: {_first_line(e)}", params)
    ok = answer("ok", f"gated={info.gated}", params)
    return HubAnswer(**{**ok.__dict__, "config": _config(endpoint, repo, token, timeout_s)})


def _auth_check(endpoint: str, repo: str, token: str, timeout_s: float) -> None:
    """HfApi.auth_check with a bound on time (the library's own call has none)."""
    from huggingface_hub import get_session, hf_raise_for_status

    url = f"{endpoint}/api/models/{repo}/auth-check"
    headers = {"authorization": f"Bearer {token}"}
    response = get_session().get(url, headers=headers, timeout=timeout_s)
    hf_raise_for_status(response)


def _config(endpoint: str, repo: str, token: str | None, timeout_s: float) -> dict[str, Any] | None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.get(
            f"{endpoint}/{repo}/resolve/main/config.json",
            headers=headers,
            timeout=timeout_s,
            follow_redirects=True,
        )
        data = r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _token_rejected(e: BaseException) -> bool:
    """The Hub answered 401 to a request with a token, not as a gated or missing repo: the
    token itself is invalid (the Hub then refuses every download, public repos too)."""
    response = getattr(e, "response", None)
    if getattr(response, "status_code", None) != 401:
        return False
    code = response.headers.get("X-Error-Code", "") if response is not None else ""
    return code not in ("GatedRepo", "RepoNotFound")


def _first_line(e: BaseException) -> str:
    lines = [line for line in str(e).splitlines() if line.strip()]
    return " ".join(lines[:2])[:300]
