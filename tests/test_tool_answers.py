"""Scoring an answer as PicoClaw takes it (picoclaw.tool_answers), in the doctor's words and
under load: the messages below are vLLM 0.32's real answers to PicoClaw's request with
tool_choice "auto" (tests/test_tool_calling_scripted.py records how they were produced), and
a forced call really cut at 16 tokens on the session server."""

from __future__ import annotations

import json

import pytest

from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.picoclaw.tool_answers import AnswerKind, score, valid_call_prefix
from picoclaw_vllm.vllm_api.measurement import StreamMeasurement, measure_complete
from reports.gates import Gates
from reports.steps import Step
from reports.verdict import explain, judge_step

TOOLS = picoclaw_request.default_tools()
CALL = {"name": "read_file", "arguments": '{"path": "notes/todo.md"}'}
PARSED = {"content": None, "tool_calls": [{"id": "chatcmpl-tool-b54064a85cfb4722",
                                           "type": "function", "function": CALL}]}  # fmt: skip


@pytest.mark.parametrize(
    ("message", "finish", "kind"),
    [
        (PARSED, "tool_calls", AnswerKind.TOOL_CALL),
        ({"content": '[TOOL_CALLS][{"name": "read_file", "arguments": {"path": "notes/todo.md"'
                     "}}]", "tool_calls": None}, "stop", AnswerKind.MARKUP),
        ({"content": '{"name": "read_file", "parameters": {"path": "notes/todo.md"}}',
          "tool_calls": None}, "stop", AnswerKind.MARKUP),
        ({"content": "I will not call a tool today.", "tool_calls": None}, "stop",
         AnswerKind.TEXT),
        # the forced call cut at 16 tokens (tests/test_tool_calling_server.py)
        ({"content": '<tool_call>{"name": "read_file", "arguments": {"pa', "tool_calls": []},
         "length", AnswerKind.CUT),
        ({"content": None, "tool_calls": [{"function": {"name": "read_file",
          "arguments": '{"path": 7}'}}]}, "tool_calls", AnswerKind.INVALID_ARGUMENTS),
        ({"content": None, "tool_calls": [{"function": {"name": "read_file",
          "arguments": "{}"}}]}, "tool_calls", AnswerKind.INVALID_ARGUMENTS),
        ({"content": None, "tool_calls": [{"function": {"name": "rm_rf",
          "arguments": "{}"}}]}, "tool_calls", AnswerKind.INVALID_ARGUMENTS),
        ({"content": None, "tool_calls": [{"function": {"name": "read_file",
          "arguments": '{"path": "a'}}]}, "length", AnswerKind.CUT),
    ],
    ids=["parsed", "mistral-markup", "bare-json", "text", "cut-markup", "wrong-type",
         "missing-required", "unknown-tool", "cut-arguments"],
)  # fmt: skip
def test_each_answer_has_its_kind(
    message: dict[str, object], finish: str, kind: AnswerKind
) -> None:
    assert score(message, finish, TOOLS).kind is kind


def test_harmony_tokens_are_named_beside_the_kind() -> None:
    content = ("<|channel|>commentary to=functions.read_file <|constrain|>json<|message|>"
               '{"path": "notes/todo.md"}<|call|>')  # fmt: skip
    scored = score({"content": content}, "stop", TOOLS)
    assert {"<|channel|>", "<|message|>"} <= set(scored.leaked)
    assert not score(PARSED, "tool_calls", TOOLS).leaked


def test_a_cut_is_a_valid_prefix_only_when_the_text_can_still_become_a_call() -> None:
    assert valid_call_prefix('<tool_call>{"name": "read_file", "arguments": {"pa')
    assert valid_call_prefix("<tool_call>")
    assert valid_call_prefix('[TOOL_CALLS][{"name": "re')
    assert not valid_call_prefix("<tool_call>}{ not json")
    assert not valid_call_prefix("hello there")


def _sse(*events: dict[str, object]) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def _delta(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_a_streamed_call_is_assembled_from_its_pieces_before_it_is_scored() -> None:
    stream = _sse(
        _delta({"role": "assistant", "content": ""}),
        _delta({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                "function": {"name": "read_file", "arguments": ""}}]}),
        _delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"path": '}}]}),
        _delta({"tool_calls": [{"index": 0, "function": {"arguments": '"README.md"}'}}]}),
        _delta({}, "tool_calls"),
    )  # fmt: skip
    m = StreamMeasurement(0.0)
    m.feed(stream, 1.0)
    assert m.finish().answer_score == "tool_call"


def test_scripted_markup_and_a_cut_are_scored_under_load_too() -> None:
    markup = _sse(_delta({"content": "<tool_call>\n"}),
                  _delta({"content": '{"name": "read_file", "arguments": {}}\n</tool_call>'},
                         "stop"))  # fmt: skip
    m = StreamMeasurement(0.0)
    m.feed(markup, 1.0)
    assert m.finish().answer_score == "markup_in_content"
    cut = {"choices": [{"index": 0, "finish_reason": "length",
                        "message": {"content": "ju pu", "tool_calls": []}}]}  # fmt: skip
    assert measure_complete(0.0, 1.0, json.dumps(cut).encode()).answer_score == "cut_by_length"


def _step(**values: object) -> Step:
    base = {"step_id": "s1", "setting_id": "a", "load_mode": "concurrency", "load": 1}
    return Step({**base, **values})


def test_the_invalid_tool_calls_gate_allows_none_by_default() -> None:
    bad = _step(scored_answers=20, invalid_tool_calls_pct=5.0, answers_markup_in_content_pct=5.0)
    (check,) = [c for c in judge_step(bad, Gates()) if c.gate_id == "invalid_tool_calls_pct"]
    assert not check.passed and check.rests_on == 20
    assert "5.0 % call markup left in content" in explain(check, bad)
    clean = _step(scored_answers=20, invalid_tool_calls_pct=0.0)
    (check,) = [c for c in judge_step(clean, Gates()) if c.gate_id == "invalid_tool_calls_pct"]
    assert check.passed
    allowed = Gates.from_values({"invalid_tool_calls_pct": "10"})
    assert all(c.passed for c in judge_step(bad, allowed) if c.gate_id == "invalid_tool_calls_pct")
    # a step with no scored answers (the chat workload) is not judged by it
    assert not [c for c in judge_step(_step(), Gates()) if c.gate_id == "invalid_tool_calls_pct"]


def _forced(message: dict[str, object], finish: str) -> tuple[str, list[str], list[str]]:
    from diagnostics.checks.tool_calling import check_tool_call
    from diagnostics.facts import Facts
    from diagnostics.options import DiagnoseOptions
    from diagnostics.probes.http import HttpAnswer

    body = json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": finish}]})
    answer = HttpAnswer("POST", "http://h/v1/chat/completions", 200, body)
    facts = Facts.seeded(DiagnoseOptions(api_base="http://h/v1", model="m"), tool_call=answer)
    outcome = check_tool_call(facts)
    return str(outcome.status), [f.id for f in outcome.findings], outcome.notes


def test_the_forced_call_judges_its_form_and_names_what_was_cut() -> None:
    # the session server's real forced answer (2026-12-07): hermes's structural tag let the
    # random model write arguments null; a form the parser produced, not a parser fault
    null_args = {
        "content": None,
        "tool_calls": [
            {
                "id": "chatcmpl-tool-8da2099cf75872af",
                "type": "function",
                "function": {"name": "read_file", "arguments": "null"},
            }
        ],
    }
    status, ids, notes = _forced(null_args, "tool_calls")  # fmt: skip
    assert status == "pass" and not ids and "do not fit the schema" in " ".join(notes)
    cut = {"content": '<tool_call>{"name": "read_file", "arguments": {"pa', "tool_calls": []}
    assert _forced(cut, "length")[:2] == ("skip", [])
    broken = {
        "content": None,
        "tool_calls": [{"function": {"name": "read_file", "arguments": "{oops"}}],
    }
    assert _forced(broken, "tool_calls")[:2] == ("fail", ["tool_call_unparsed"])  # fmt: skip
