"""vLLM's error answers as data: (status, message, param) -> the finding kind they mean.

    match_http_error(status, body) -> HttpSignature | None    # the first row that matches
    catalog_finding(answer) -> Finding | None   # for a kind whose catalog entry has a remedy

Wording drifts between vLLM releases: a row's pattern matches a stable substring of the
error's message (of the whole body when it holds no vLLM error), and its param, when given,
must equal the error's. Adding a vLLM error is one row here, its kind (finding_ids, catalog
with a remedy: the completion check then reports it) and one row in
tests/test_http_signatures.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnostics.catalog import CATALOG, entry
from diagnostics.findings import Finding, Severity
from diagnostics.probes.http import HttpAnswer
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.vllm_api.vllm_error import read_error


@dataclass(frozen=True)
class HttpSignature:
    status: int
    message: re.Pattern[str]
    param: str | None
    finding_id: FindingId


def _row(status: int, message: str, param: str | None, finding_id: FindingId) -> HttpSignature:
    return HttpSignature(status, re.compile(message, re.IGNORECASE), param, finding_id)


SIGNATURES: tuple[HttpSignature, ...] = (
    # 0.32: '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be
    # set' (also for tools without tool_choice); older releases word it alike
    _row(400, r"enable-auto-tool-choice|tool[-_ ]call[-_ ]parser", None,
         FindingId.TOOL_CHOICE_REJECTED),
    _row(500, r"EngineCore encountered an issue", None, FindingId.ENGINE_DEAD),
    _row(401, r"", None, FindingId.AUTH_FAILED),  # any 401: vLLM's is {"error": "Unauthorized"}
    _row(400, r"must provide a chat template if the tokenizer does not define one", None,
         FindingId.CHAT_TEMPLATE_MISSING),
    # 0.32 with a template that raises on role "tool" (Llama-2/early Mistral templates):
    # 400 "Conversation roles must alternate user/assistant/user/assistant/..."; others say
    # "Unexpected message role" (vllm #39279). Only the tool-result check names it so: on a
    # first call the same words mean another template fault.
    _row(400, r"Conversation roles must alternate|Unexpected message role", None,
         FindingId.TOOL_RESULT_REJECTED),
)  # fmt: skip


def match_http_error(status: int | None, body: str) -> HttpSignature | None:
    error = read_error(body)
    message = error.message if error is not None else " ".join(body.split())
    param = error.param if error is not None else None
    for signature in SIGNATURES:
        if (
            signature.status == status
            and (signature.param is None or signature.param == param)
            and signature.message.search(message)
        ):
            return signature
    return None


def kind_of(answer: HttpAnswer) -> FindingId | None:
    """The finding kind an answer's error means, if a signature knows it."""
    signature = match_http_error(answer.status, answer.body)
    return signature.finding_id if signature is not None else None


# kinds no check words itself: reported from the catalog when an answer matches
CATALOG_REPORTED: tuple[FindingId, ...] = tuple(
    dict.fromkeys(s.finding_id for s in SIGNATURES if CATALOG[s.finding_id].remedy)
)


def catalog_finding(answer: HttpAnswer) -> Finding | None:
    """The finding an answer's error means, when its kind's catalog entry holds the remedy."""
    kind = kind_of(answer)
    if kind is None or kind not in CATALOG_REPORTED:
        return None
    described = entry(kind)
    return Finding(
        kind,
        Severity.FAIL,
        f"{described.title}: PicoClaw's request fails with {answer.status}",
        evidence=f"{answer.method} {answer.url} -> {answer.status}: {answer.error_message()}"[:600],
        remedy=described.remedy,
    )
