"""vLLM's error body: its message and param, in each shape vLLM has answered with.

Nested `{"error": {"message", "type", "param", "code"}}` (0.10.1 and later), flat
`{"object": "error", "message", "type", "param", "code"}` (before), `{"error": "Unauthorized"}`
(the --api-key middleware).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VllmError:
    message: str
    param: str | None


def _param(fields: dict[str, Any]) -> str | None:
    param = fields.get("param")
    return param if isinstance(param, str) else None


def read_error(body: str) -> VllmError | None:
    """The error the body carries; None when it is not one of vLLM's error shapes."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error", data.get("message"))
    if isinstance(error, dict):
        return VllmError(str(error.get("message") or error.get("detail") or error), _param(error))
    if error is not None:
        return VllmError(str(error), _param(data))
    return None
