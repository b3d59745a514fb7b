"""The diagnosis as a versioned JSON document (schema picoclaw-vllm/diagnosis/v1).

    {"schema": "picoclaw-vllm/diagnosis/v1",
     "tool": {"name", "version"}, "vllm": {"version" | null}, "platform": {"python", "system"},
     "started_at", "duration_s", "status": "pass" | "warn" | "fail",
     "target": {"api_base", "model", "model_configured", "api_key_set", "api_key_source",
                "config_path", "config_format", "max_tokens"},          # never the key
     "summary": {"pass": n, "warn": n, "fail": n, "skip": n},
     "checks": [{"name", "title", "group", "status", "skip_reason", "duration_s",
                 "finding_ids", "notes"}],                              # declared order
     "findings": [{"id", "severity": "fail" | "warn" | "info", "message", "evidence",
                   "remedy"}]}

Fields are only ever added within v1.
"""

from __future__ import annotations

import json

from diagnostics.runner import Diagnosis
from picoclaw_vllm.redact import printable, redact


def render(diagnosis: Diagnosis) -> str:
    # redact once more over the whole text: no key may leave through any field
    # and no control or bidirectional character reaches a terminal raw (escaped as \uXXXX)
    return printable(redact(json.dumps(diagnosis.to_json_dict(), indent=2, ensure_ascii=False)))
