"""vLLM's error answers map to finding kinds by data (diagnostics.http_signatures): one row per
real answer (bodies as vLLM sends them, see /work/shared/reference/vllm-signatures.md)."""

from __future__ import annotations

import re

import pytest

from diagnostics import http_signatures
from diagnostics.catalog import CATALOG
from diagnostics.checks.picoclaw_request import check_completion
from diagnostics.facts import Facts
from diagnostics.http_signatures import HttpSignature, match_http_error
from diagnostics.options import DiagnoseOptions
from diagnostics.probes.http import HttpAnswer, StreamTiming
from picoclaw_vllm.finding_ids import FindingId

TOOL_CHOICE = (
    '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
)


def nested(message: str, type_: str, code: int, param: str | None = None) -> str:
    param_json = "null" if param is None else f'"{param}"'
    message = message.replace('"', '\\"')
    return (
        f'{{"error": {{"message": "{message}", "type": "{type_}", "param": {param_json}, '
        f'"code": {code}}}}}'
    )


ANSWERS = [
    pytest.param(400, nested(TOOL_CHOICE, "BadRequestError", 400),
                 FindingId.TOOL_CHOICE_REJECTED, id="tool-choice-0.32"),
    pytest.param(400, '{"object": "error", "message": "\\"auto\\" tool choice requires '
                 '--enable-auto-tool-choice and --tool-call-parser to be set", "type": '
                 '"BadRequestError", "param": null, "code": 400}',
                 FindingId.TOOL_CHOICE_REJECTED, id="tool-choice-flat-before-0.10.1"),
    pytest.param(500, nested("EngineCore encountered an issue. See stack trace (above) for the "
                             "root cause.", "InternalServerError", 500),
                 FindingId.ENGINE_DEAD, id="engine-dead"),
    pytest.param(401, '{"error": "Unauthorized"}', FindingId.AUTH_FAILED, id="unauthorized"),
    pytest.param(400, nested("As of transformers v4.44, default chat template is no longer "
                             "allowed, so you must provide a chat template if the tokenizer "
                             "does not define one. None", "BadRequestError", 400),
                 FindingId.CHAT_TEMPLATE_MISSING, id="no-chat-template"),
    pytest.param(404, nested("The model `custom-model` does not exist.", "NotFoundError", 404,
                             "model"), None, id="unknown-model-judged-by-the-model-list"),
    pytest.param(400, nested("max_tokens=600 cannot be greater than max_model_len=512. Please "
                             "request fewer output tokens.", "BadRequestError", 400,
                             "max_tokens"), None, id="max-tokens-judged-by-the-context-check"),
    pytest.param(500, nested(TOOL_CHOICE, "InternalServerError", 500), None,
                 id="status-must-match"),
    # vLLM 0.32, a template that raises on role "tool" (tests/test_tool_calling_scripted.py)
    pytest.param(400, nested("Conversation roles must alternate user/assistant/user/assistant/"
                             "...", "BadRequestError", 400),
                 FindingId.TOOL_RESULT_REJECTED, id="no-tool-role-template"),
    pytest.param(200, '{"choices": []}', None, id="success"),
    pytest.param(None, "", None, id="no-answer"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "kind"), ANSWERS)
def test_an_answer_means_its_kind(status: int | None, body: str, kind: FindingId | None) -> None:
    signature = match_http_error(status, body)
    assert (signature.finding_id if signature else None) is kind


CATALOG_REPORTED = [p for p in ANSWERS if p.values[2] and CATALOG[p.values[2]].remedy]


@pytest.mark.parametrize(("status", "body", "kind"), CATALOG_REPORTED)
def test_a_kind_with_a_catalog_remedy_is_reported_by_the_completion_check(
    status: int, body: str, kind: FindingId
) -> None:
    answer = HttpAnswer("POST", "http://h/v1/chat/completions", status, body)
    options = DiagnoseOptions(api_base="http://h/v1", config_path=None)
    facts = Facts.seeded(options, chat=answer, chat_stream=StreamTiming(answer))
    (finding,) = check_completion(facts).findings
    assert finding.id is kind and finding.remedy == CATALOG[kind].remedy
    assert f"-> {status}: " in finding.evidence


def test_a_row_with_a_param_matches_only_that_param(monkeypatch: pytest.MonkeyPatch) -> None:
    row = HttpSignature(404, re.compile("does not exist"), "model", FindingId.MODEL_NOT_FOUND)
    monkeypatch.setattr(http_signatures, "SIGNATURES", (row,))
    message = "The model `x` does not exist."
    assert match_http_error(404, nested(message, "NotFoundError", 404, "model")) is row
    assert match_http_error(404, nested(message, "NotFoundError", 404, "lora")) is None
    assert match_http_error(404, nested(message, "NotFoundError", 404)) is None
