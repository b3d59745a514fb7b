"""Tool calling as PicoClaw uses it: its tools with tool_choice "auto", and parsed tool calls."""

from __future__ import annotations

import json
import re
from typing import Any

from diagnostics import tool_parsers
from diagnostics.checks.base import Check
from diagnostics.facts import Facts
from diagnostics.finding_ids import FindingId
from diagnostics.findings import Finding, Outcome, Severity
from diagnostics.http_signatures import kind_of
from diagnostics.probes.http import HttpAnswer
from picoclaw_vllm.picoclaw import request as picoclaw_request

# What a model writes for a tool call when no fitting parser turns it into tool_calls.
RAW_MARKUP = re.compile(
    r"<tool_call>|\[TOOL_CALLS\]|<\|python_tag\|>|<function=|<\|tool_call|<tool_calls>"
    r"|^\s*\{\s*\"name\"\s*:",
)


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


def _fix(facts: Facts) -> str:
    model = model_for_parser(facts)
    served = facts.target().model
    return (
        f"restart vLLM with {' '.join(tool_parsers.tool_flags(model))} "
        f"({tool_parsers.parser_advice(model)}): "
        f"{tool_parsers.launch_commands(model, served)}"
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


def _bad_calls(calls: list[Any], names: set[str]) -> list[str]:
    problems = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            problems.append(f"not a function call: {str(call)[:80]}")
            continue
        if fn.get("name") not in names:
            problems.append(f"calls {fn.get('name')!r}, not one of PicoClaw's tools")
        try:
            json.loads(str(fn.get("arguments")))
        except ValueError:
            problems.append(f"arguments are not JSON: {str(fn.get('arguments'))[:80]}")
    return problems


def check_tool_call(facts: Facts) -> Outcome:
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
    calls = message.get("tool_calls") or []
    content = message.get("content") if isinstance(message.get("content"), str) else ""
    limit = facts.options.forced_call_max_tokens
    sent = _sent(facts, answer, choice) + f", max_tokens {limit}"
    if not calls:
        markup = RAW_MARKUP.search(content or "")
        if finish == "length":
            why = f"the call was cut at {limit} tokens and left as text"
        elif markup:
            why = f"the call stayed as raw {markup.group(0).strip()!r} markup in content"
        else:
            why = "the answer has no tool_calls"
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
    problems = _bad_calls(calls, set(picoclaw_request.tool_names()))
    if problems:
        return Outcome.of(
            Finding(
                FindingId.TOOL_CALL_UNPARSED,
                Severity.FAIL,
                f"the forced tool call comes back malformed: {problems[0]}",
                evidence=f"{sent} -> tool_calls {json.dumps(calls)[:300]}",
                remedy=_fix(facts),
            )
        )
    names = ", ".join(str(c["function"]["name"]) for c in calls)
    return Outcome.ok(
        f"forced call parsed: tool_calls [{names}], finish_reason {finish!r} "
        f"({answer.elapsed_s:.2f} s)"
    )


CHECKS = (
    Check("tools", "PicoClaw's tools accepted", "Requests", check_tools, ("model",),
          (FindingId.TOOL_CHOICE_REJECTED,)),
    Check("tool_call", "Tool calls parsed", "Requests", check_tool_call, ("tools", "completion"),
          (FindingId.TOOL_CALL_UNPARSED,)),
)  # fmt: skip
