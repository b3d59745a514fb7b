"""The diagnosis as a versioned JSON document (schema picoclaw-vllm/diagnosis/v1)."""

from __future__ import annotations

import json

from diagnostics.runner import Diagnosis
from picoclaw_vllm.redact import redact


def render(diagnosis: Diagnosis) -> str:
    # redact once more over the whole text: no key may leave through any field
    return redact(json.dumps(diagnosis.to_json_dict(), indent=2, ensure_ascii=False))
