"""Tool calling as PicoClaw uses it: its tools with tool_choice "auto", and parsed tool calls."""

from __future__ import annotations

import json
from typing import Any

from diagnostics.checks.base import Check
from diagnostics.facts import TOOL_TASK_MESSAGE, Facts
from diagnostics.findings import Finding, Outcome, Severity
from diagnostics.http_signatures import kind_of
from diagnostics.probes.http import HttpAnswer
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.picoclaw import tool_answers
from picoclaw_vllm.picoclaw.tool_answers import AnswerKind
from picoclaw_vllm.vllm_api import tool_parsers


def model_for_parser(facts: Facts) -> str | None:
    """The name that tells the model's family: the served root (a repo id) or the name sent."""
    t = facts.target()
    served = {m.id: m for m in facts.served()}
    root = served[t.model].root if t.model in served else None
    return root or t.model


def rejects_tools(answer: HttpAnswer) -> bool:
    return kind_of(answer) is FindingId.TOOL_CHOICE_REJECTED


def _sent(facts: Facts, answer: HttpAnswer, choice: str = '"auto"') -> str:
    n = len(picoclaw_request.default_tools())
    return f"{answer.method} {answer.url} with PicoClaw's {n} tools and tool_choice {choice}"


def _fix(facts: Facts, written: str | None = None) -> str:
    """The parser flags for the model's family (or, for a name that says nothing, the parser
    of the markup it wrote)."""
    model = model_for_parser(facts)
    served = facts.target().model
    return (
        f"restart vLLM with {' '.join(tool_parsers.tool_flags(model, written))} "
        f"({tool_parsers.parser_advice(model, written)}): "
        f"{tool_parsers.launch_commands(model, served, written)}"
    )


def check_tools(facts: Facts) -> Outcome:
    answer = facts.chat()
    if rejects_tools(answer):
        return Outcome.of(
            Finding(
                FindingId.TOOL_CHOICE_REJECTED,
                Severity.FAIL,
                'vLLM rejects PicoClaw\'s tools: every request with tool_choice "auto" fails '
                "with 400, so PicoClaw's agent gets no answer",
                evidence=f"{_sent(facts, answer)} -> 400: {answer.error_message()}",
                remedy=_fix(facts),
            )
        )
    if not answer.ok:
        return Outcome.ok(f"not judged here: {answer.describe()} (see the next check)")
    n = len(picoclaw_request.default_tools())
    return Outcome.ok(f'{n} tools with tool_choice "auto" accepted ({answer.elapsed_s:.2f} s)')


def _message(answer: HttpAnswer) -> tuple[dict[str, Any], str | None]:
    data = answer.json()
    choices = data.get("choices") if isinstance(data, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else {}
    first = first if isinstance(first, dict) else {}
    message = first.get("message")
    return (message if isinstance(message, dict) else {}), first.get("finish_reason")


def _leak(facts: Facts, sent: str, scored: tool_answers.ScoredAnswer, content: str) -> Finding:
    return Finding(
        FindingId.CONTROL_TOKENS_LEAKED,
        Severity.FAIL,
        f"Harmony control tokens ({', '.join(scored.leaked)}) leak into the answer: PicoClaw "
        "shows them as text and runs no tool",
        evidence=f"{sent} -> content {content[:200]!r}",
        remedy="gpt-oss models need vLLM's Harmony parsers: restart with "
        "--enable-auto-tool-choice --tool-call-parser openai --reasoning-parser openai_gptoss "
        "(and a vLLM release that supports the model); other models: use the model's own chat "
        "template (--chat-template), not a Harmony one",
    )


def check_tool_call(facts: Facts) -> Outcome:
    """The forced call: vLLM 0.32 constrains a named tool choice with structured output (the
    tool's schema, or the parser's own format for a parser with a structural tag), so a pass
    proves that structured output and the parser's own format work, not that the parser fits
    the model's own calls (the tool_call_auto check judges those)."""
    answer = facts.answered(facts.tool_call(), "the forced tool call")
    tool = facts.forced_tool()
    choice = f'{{"type": "function", "function": {{"name": "{tool}"}}}}'
    if not answer.ok:
        return Outcome.of(
            Finding(
                FindingId.TOOL_CALL_UNPARSED,
                Severity.FAIL,
                f"a forced call of PicoClaw's {tool!r} tool fails",
                evidence=f"{_sent(facts, answer, choice)} -> {answer.status}: "
                f"{answer.error_message()}"[:600],
                remedy=_fix(facts),
            )
        )
    message, finish = _message(answer)
    content = message.get("content") if isinstance(message.get("content"), str) else ""
    limit = facts.options.forced_call_max_tokens
    sent = _sent(facts, answer, choice) + f", max_tokens {limit}"
    # its form only: vLLM 0.32's hermes structural tag let the tiny model write arguments
    # `null`, the model's choice, not the parser's (the auto probe judges the schema)
    tools = picoclaw_request.default_tools()
    scored = tool_answers.score(message, finish, tools, schema=False)
    if scored.leaked:
        return Outcome.of(_leak(facts, sent, scored, content or ""))
    if scored.kind is AnswerKind.CUT:
        shape = "a valid prefix of the call format" if scored.prefix_ok else "not a call prefix"
        return Outcome.skip(
            f"not judged: the forced call was cut at max_tokens {limit} ({shape}: "
            f"{(content or '')[:80]!r}); a cut call is no parser fault"
        )
    if scored.kind in (AnswerKind.MARKUP, AnswerKind.TEXT):
        why = (
            f"the call stayed as raw {scored.markup!r} markup in content"
            if scored.markup
            else "the answer has no tool_calls"
        )
        return Outcome.of(
            Finding(
                FindingId.TOOL_CALL_UNPARSED,
                Severity.FAIL,
                f"tool calls come back as text ({why}): PicoClaw would never run the tool",
                evidence=f"{sent} -> finish_reason {finish!r}, tool_calls none, content "
                f"{(content or '')[:200]!r}",
                remedy=_fix(facts),
            )
        )
    if scored.kind is AnswerKind.INVALID_ARGUMENTS:
        return Outcome.of(
            Finding(
                FindingId.TOOL_CALL_UNPARSED,
                Severity.FAIL,
                f"the forced tool call comes back malformed: {scored.detail}",
                evidence=f"{sent} -> tool_calls {json.dumps(message.get('tool_calls'))[:300]}",
                remedy=_fix(facts),
            )
        )
    off_schema = tool_answers.call_problems(message.get("tool_calls") or [], tools)
    return Outcome.ok(
        f"forced call parsed: {scored.detail}, finish_reason {finish!r} "
        f"({answer.elapsed_s:.2f} s); this proves structured output and the parser's own "
        "format work, not that the parser fits the model's own calls",
        *(f"the model's arguments do not fit the schema: {p}" for p in off_schema),
    )


def check_tool_call_auto(facts: Facts) -> Outcome:
    """PicoClaw's request as it sends it (tool_choice "auto"), asking for a file read: what
    the model writes by itself meets the server's parser."""
    answer = facts.answered(facts.auto_call(), "PicoClaw's tool_choice auto request")
    if not answer.ok:
        return Outcome.skip(f"not judged: {answer.describe()}"[:300])
    message, finish = _message(answer)
    content = message.get("content") if isinstance(message.get("content"), str) else ""
    limit = facts.options.auto_call_max_tokens
    sent = f"{_sent(facts, answer)}, max_tokens {limit}, user message {TOOL_TASK_MESSAGE!r}"
    scored = tool_answers.score(message, finish, picoclaw_request.default_tools())
    if scored.leaked:
        return Outcome.of(_leak(facts, sent, scored, content or ""))
    evidence = (
        f"{sent} -> finish_reason {finish!r}, tool_calls "
        f"{json.dumps(message.get('tool_calls'))[:200]}, content {(content or '')[:200]!r}"
    )
    if scored.kind is AnswerKind.MARKUP:
        written = tool_parsers.markup_parser(scored.markup)
        hint = f" ({scored.markup!r} is the {written} parser's format)" if written else ""
        return Outcome.of(
            Finding(
                FindingId.TOOL_CALL_UNPARSED,
                Severity.FAIL,
                f"the model's own tool call stayed as raw {scored.markup!r} markup in content"
                f"{hint}: the --tool-call-parser does not fit the model, and PicoClaw never "
                "runs the tool",
                evidence=evidence,
                remedy=_fix(facts, written),
            )
        )
    if scored.kind is AnswerKind.INVALID_ARGUMENTS:
        return Outcome.of(
            Finding(
                FindingId.TOOL_CALL_UNPARSED,
                Severity.FAIL,
                f"the model's tool call cannot be run: {scored.detail}",
                evidence=evidence,
                remedy=_fix(facts),
            )
        )
    if scored.kind is AnswerKind.CUT:
        return Outcome.skip(
            f"not judged: the answer was cut at max_tokens {limit} ({scored.detail}), "
            "so the call it began is not known"
        )
    if scored.kind is AnswerKind.TEXT:
        return Outcome.skip(
            "not judged: the model chose not to call a tool (it answered text: "
            f"{(content or '')[:80]!r}), so the parser was not exercised"
        )
    return Outcome.ok(
        f"the model's own call parsed: {scored.detail}, valid for the tools' schemas, "
        f"finish_reason {finish!r} ({answer.elapsed_s:.2f} s)"
    )


def _template_fix(facts: Facts) -> str:
    found = tool_parsers.fit(model_for_parser(facts))
    family = f" ({found.family})" if found else ""
    return (
        "restart vLLM with --chat-template set to a tool-capable template for the model's "
        f"family{family}: vLLM ships them as examples/tool_chat_template_*.jinja (e.g. "
        "tool_chat_template_llama3.1_json.jinja, tool_chat_template_mistral_parallel.jinja, "
        "tool_chat_template_hermes.jinja), or use the model's own current tokenizer_config.json "
        'template if it renders role "tool" messages'
    )


def check_tool_result(facts: Facts) -> Outcome:
    """PicoClaw's second call of a turn: the assistant's tool_calls and the tool's result."""
    answer = facts.answered(facts.tool_result_turn(), "the turn after a tool result")
    n = len(picoclaw_request.default_tools())
    sent = (
        f"{answer.method} {answer.url} with PicoClaw's {n} tools, its history + an assistant "
        f'{facts.forced_tool()!r} tool call + a role "tool" result'
    )
    if answer.ok:
        return Outcome.ok(f"the call after a tool result is accepted ({answer.elapsed_s:.2f} s)")
    if answer.status == 400 or kind_of(answer) is FindingId.TOOL_RESULT_REJECTED:
        return Outcome.of(
            Finding(
                FindingId.TOOL_RESULT_REJECTED,
                Severity.FAIL,
                "vLLM rejects PicoClaw's call after a tool result, though its first call "
                "works: every agent turn stops after its first tool call",
                evidence=f"{sent} -> {answer.status}: {answer.error_message()}"[:600],
                remedy=_template_fix(facts),
            )
        )
    return Outcome.skip(f"not judged: {answer.describe()}"[:300])


CHECKS = (
    Check("tools", "PicoClaw's tools accepted", "Requests", check_tools, ("model",),
          (FindingId.TOOL_CHOICE_REJECTED,)),
    Check("tool_call", "Forced tool call (structured output)", "Requests", check_tool_call,
          ("tools", "completion"), (FindingId.TOOL_CALL_UNPARSED, FindingId.CONTROL_TOKENS_LEAKED)),
    Check("tool_call_auto", "Model's own tool call parsed", "Requests", check_tool_call_auto,
          ("tools", "completion"), (FindingId.TOOL_CALL_UNPARSED, FindingId.CONTROL_TOKENS_LEAKED)),
    Check("tool_result", "Turn after a tool result", "Requests", check_tool_result,
          ("tools", "completion"), (FindingId.TOOL_RESULT_REJECTED,)),
)  # fmt: skip
