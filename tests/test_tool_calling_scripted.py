"""The model's own tool calls through the REAL server's parser, and the turn after a tool result.

The tiny random model writes noise, so a test-only logits processor (tests/scripted_logits.py,
loaded by vLLM with --logits-processors, PYTHONPATH set for that server only) makes it answer
the doctor's tool_choice "auto" probe with a scripted text. Two real CPU vLLM servers:
- `fitting`: --tool-call-parser hermes, the tiny model's own template;
- `wrong`: --tool-call-parser pythonic and a chat template without tool-role support
  (tests/data/chat_template_no_tool_role.jinja, raises on role "tool").

What vLLM 0.32 answered (2026-12-07, PicoClaw's request, tool_choice "auto"):
- hermes parser, model writes `<tool_call>\n{"name": "read_file", "arguments": {"path":
  "notes/todo.md"}}\n</tool_call>`: content null, tool_calls [read_file {"path":
  "notes/todo.md"}], finish_reason "tool_calls";
- hermes parser, model writes `[TOOL_CALLS][{...}]`, a bare `{"name": ..., "parameters": ...}`,
  Harmony `<|channel|>commentary ...<|message|>{...}<|call|>` or plain text: all left whole in
  content, tool_calls null, finish_reason "stop";
- pythonic parser, model writes the Hermes call: left whole in content, finish_reason "stop";
- the tool-less template, PicoClaw's second call (assistant tool_calls + role "tool"):
  400 {"message": "Conversation roles must alternate user/assistant/user/assistant/...",
  "type": "BadRequestError"}; the first call: 200.
- llama3_json cannot be served here: its parser needs `<|python_tag|>` as one token, and the
  tiny byte-level tokenizer has none (vLLM raises "could not locate the bot token").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FAST_START_ARGS, TEST_API_KEY

from diagnostics.facts import TOOL_TASK_MESSAGE
from diagnostics.options import DiagnoseOptions
from diagnostics.runner import Diagnosis, diagnose
from picoclaw_vllm.paths import cpu_python
from picoclaw_vllm.server.backends import LocalBackend
from picoclaw_vllm.server.embedded import embedded_settings
from picoclaw_vllm.server.launcher import ServerHandle, start_server

pytestmark = pytest.mark.vllm

TESTS = Path(__file__).resolve().parent
NO_TOOL_ROLE = TESTS / "data" / "chat_template_no_tool_role.jinja"
HERMES_CALL = (
    '<tool_call>\n{"name": "read_file", "arguments": {"path": "notes/todo.md"}}\n</tool_call>'
)
MISTRAL_CALL = '[TOOL_CALLS][{"name": "read_file", "arguments": {"path": "notes/todo.md"}}]'
HARMONY_CALL = (
    "<|channel|>commentary to=functions.read_file <|constrain|>json<|message|>"
    '{"path": "notes/todo.md"}<|call|>'
)


class Scripted:
    def __init__(self, handle: ServerHandle, script: Path) -> None:
        self.handle, self.script = handle, script

    def answer_with(self, text: str) -> None:
        self.script.write_text(json.dumps([{"trigger": TOOL_TASK_MESSAGE, "text": text}]))

    def diagnose(self, *checks: str) -> Diagnosis:
        return diagnose(
            DiagnoseOptions(
                api_base=self.handle.api_base, model="vllm/tiny-llama", api_key=TEST_API_KEY,
                checks=checks, check_hub=False, timeout_s=60,
            )
        )  # fmt: skip


def _serve(tmp: Path, parser: str, *extra: str) -> ServerHandle:
    args = ("--enable-auto-tool-choice", "--tool-call-parser", parser,
            "--logits-processors", "scripted_logits:ScriptedAnswer",
            *FAST_START_ARGS, *extra)  # fmt: skip
    backend = LocalBackend(
        python=str(cpu_python()), cpu=True,
        extra_env={"PYTHONPATH": str(TESTS), "SCRIPTED_LOGITS_FILE": str(tmp / "script.json")},
    )  # fmt: skip
    settings = embedded_settings(extra_args=args, max_num_seqs=2, api_key=TEST_API_KEY)
    return start_server(settings, backend, log_path=tmp / f"{parser}.log")


@pytest.fixture(scope="module")
def fitting(cpu_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    tmp = tmp_path_factory.mktemp("fitting")
    handle = _serve(tmp, "hermes")
    try:
        yield Scripted(handle, tmp / "script.json")
    finally:
        assert handle.stop(), "the scripted vLLM server left processes behind"


@pytest.fixture(scope="module")
def wrong(cpu_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scripted]:
    tmp = tmp_path_factory.mktemp("wrong")
    handle = _serve(tmp, "pythonic", "--chat-template", str(NO_TOOL_ROLE))
    try:
        yield Scripted(handle, tmp / "script.json")
    finally:
        assert handle.stop(), "the scripted vLLM server left processes behind"


def _result(d: Diagnosis, check: str) -> tuple[str, str, list[dict[str, str]]]:
    doc = d.to_json_dict()
    row = next(c for c in doc["checks"] if c["name"] == check)
    return row["status"], json.dumps(row), doc["findings"]


def test_fitting_parser_passes_the_models_own_call_and_the_turn_after_it(
    fitting: Scripted,
) -> None:
    fitting.answer_with(HERMES_CALL)
    d = fitting.diagnose("tool_call_auto", "tool_result")
    for check in ("tool_call_auto", "tool_result"):
        status, row, findings = _result(d, check)
        assert status == "pass", row + json.dumps(findings)
    assert "read_file" in _result(d, "tool_call_auto")[1]
    assert d.exit_code() == 0


@pytest.mark.parametrize(
    ("text", "status", "finding", "words"),
    [
        (MISTRAL_CALL, "fail", "tool_call_unparsed", "--tool-call-parser mistral"),
        (HARMONY_CALL, "fail", "control_tokens_leaked", "--tool-call-parser openai"),
        ("I will look at it later.", "skip", None, "the model chose not to call a tool"),
    ],
    ids=["mistral-markup", "harmony-leak", "plain-text"],
)
def test_what_the_model_writes_decides_the_auto_probe(
    fitting: Scripted, text: str, status: str, finding: str | None, words: str
) -> None:
    fitting.answer_with(text)
    d = fitting.diagnose("tool_call_auto")
    got, row, findings = _result(d, "tool_call_auto")
    assert got == status, row + json.dumps(findings)
    if finding is None:
        assert words in row and not findings
    else:
        (f,) = [f for f in findings if f["id"] == finding]
        assert words in f["remedy"] and text[:12] in f["evidence"]


def test_wrong_parser_fails_with_the_parser_remedy_and_no_tool_role_fails_the_second_call(
    wrong: Scripted,
) -> None:
    wrong.answer_with(HERMES_CALL)
    d = wrong.diagnose("tool_call_auto", "tool_result")
    findings = {f["id"]: f for f in d.to_json_dict()["findings"]}
    # the first call works: PicoClaw's tools accepted, its completion answered
    assert _result(d, "tools")[0] == "pass" and _result(d, "completion")[0] == "pass"
    unparsed = findings["tool_call_unparsed"]
    assert "<tool_call>" in unparsed["message"] and "<tool_call>" in unparsed["evidence"]
    assert "--tool-call-parser hermes" in unparsed["remedy"]
    rejected = findings["tool_result_rejected"]
    assert "Conversation roles must alternate" in rejected["evidence"]
    assert "--chat-template" in rejected["remedy"]
    assert d.exit_code() == 1
