"""The report as JSON (schema `picoclaw-vllm/report/v1`): the document itself, NaN-free."""

from __future__ import annotations

import json
import math

from reports.document_types import ReportDocument


def render_json(document: ReportDocument) -> str:
    return json.dumps(_finite(document), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
