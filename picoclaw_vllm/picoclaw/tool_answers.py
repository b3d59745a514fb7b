"""What an answer to PicoClaw's tool-carrying request is, as PicoClaw's agent would take it.

    score(message, finish_reason, tools) -> ScoredAnswer

One of five kinds (the doctor's tool-call checks and the agent workload's records use the same):
- `tool_call`: message.tool_calls, each naming one of the tools, its arguments a JSON object
  valid against that tool's parameter schema: PicoClaw runs it;
- `text`: a plain answer, no call (the model chose not to call a tool);
- `markup_in_content`: no tool_calls, but call markup (`<tool_call>`, `[TOOL_CALLS]`,
  `<|python_tag|>`, a bare `{"name": ...}`) in content: the parser did not turn it into a call;
- `invalid_arguments`: tool_calls whose name or arguments PicoClaw cannot run;
- `cut_by_length`: finish_reason "length" without a valid call: the answer was cut at
  max_tokens, so what it would have been is not known (a cut call is no parser fault).
Leaked Harmony control tokens (gpt-oss's format) are reported beside the kind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jsonschema
import partial_json_parser

# What a model writes for a tool call when no fitting parser turns it into tool_calls.
RAW_MARKUP = re.compile(
    r"<tool_call>|\[TOOL_CALLS\]|<\|python_tag\|>|<function=|<\|tool_call|<tool_calls>"
    r"|^\s*\{\s*\"name\"\s*:",
)
# gpt-oss's Harmony format: these belong to the parser, never to content or a tool name.
HARMONY_TOKENS = ("<|channel|>", "<|message|>", "<|start|>", "<|end|>", "<|call|>",
                  "<|constrain|>", "<|return|>")  # fmt: skip


class AnswerKind(StrEnum):
    TOOL_CALL = "tool_call"
    TEXT = "text"
    MARKUP = "markup_in_content"
    INVALID_ARGUMENTS = "invalid_arguments"
    CUT = "cut_by_length"


@dataclass(frozen=True)
class ScoredAnswer:
    kind: AnswerKind
    detail: str  # what decided it: the markup, the schema error, the cut
    markup: str | None = None  # the call markup found in content
    leaked: tuple[str, ...] = ()  # Harmony control tokens in content or tool names
    prefix_ok: bool | None = None  # for a cut: whether the text is a valid prefix of a call

    @property
    def calls_ok(self) -> bool:
        return self.kind is AnswerKind.TOOL_CALL


def _parameters(tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t in tools:
        fn = t.get("function")
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            out[fn["name"]] = fn.get("parameters") or {"type": "object"}
    return out


def call_problems(
    calls: Sequence[Any], tools: Sequence[Mapping[str, Any]], *, schema: bool = True
) -> list[str]:
    """Why PicoClaw could not run these tool_calls (empty: every call is runnable); without
    `schema`, only the call's form: a known tool, arguments JSON."""
    schemas = _parameters(tools)
    problems = []
    for call in calls:
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping):
            problems.append(f"not a function call: {str(call)[:80]}")
            continue
        name, raw = fn.get("name"), fn.get("arguments")
        if name not in schemas:
            problems.append(f"calls {name!r}, not one of the request's tools")
            continue
        try:
            args = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            problems.append(f"{name}: arguments are not JSON: {str(raw)[:80]}")
            continue
        if not schema:
            continue
        if not isinstance(args, dict):
            problems.append(f"{name}: arguments are not a JSON object: {str(raw)[:80]}")
            continue
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(schemas[name]).iter_errors(args)
        )
        if error is not None:
            problems.append(f"{name}: arguments do not fit its schema: {error.message[:120]}")
    return problems


def valid_call_prefix(text: str) -> bool:
    """Whether text is the start of a call in a known format, cut inside its JSON
    (`<tool_call>{"name": "read_file", "argum`)."""
    rest = text.strip()
    for opening in ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>"):
        if rest.startswith(opening):
            rest = rest.removeprefix(opening).strip()
            break
    else:
        if not rest.startswith("{"):
            return False
    if not rest:
        return True
    try:
        partial_json_parser.loads(rest)
    except Exception:  # the library raises its own and json's errors for malformed text
        return False
    return True


def _leaked(content: str, calls: Sequence[Any]) -> tuple[str, ...]:
    names = " ".join(
        str(c["function"].get("name"))
        for c in calls
        if isinstance(c, Mapping) and isinstance(c.get("function"), Mapping)
    )
    return tuple(t for t in HARMONY_TOKENS if t in content or t in names)


def score(
    message: Mapping[str, Any],
    finish_reason: str | None,
    tools: Sequence[Mapping[str, Any]],
    *,
    schema: bool = True,
) -> ScoredAnswer:
    raw_content = message.get("content")
    content = raw_content if isinstance(raw_content, str) else ""
    raw_calls = message.get("tool_calls")
    calls: list[Any] = list(raw_calls) if isinstance(raw_calls, list) else []
    leaked = _leaked(content, calls)
    cut = finish_reason == "length"
    if calls:
        problems = call_problems(calls, tools, schema=schema)
        if not problems:
            names = ", ".join(str(c["function"]["name"]) for c in calls)
            return ScoredAnswer(AnswerKind.TOOL_CALL, f"tool_calls [{names}]", leaked=leaked)
        if cut:
            return ScoredAnswer(AnswerKind.CUT, f"cut at max_tokens: {problems[0]}",
                                leaked=leaked)  # fmt: skip
        return ScoredAnswer(AnswerKind.INVALID_ARGUMENTS, problems[0], leaked=leaked)
    found = RAW_MARKUP.search(content)
    markup = found.group(0).strip() if found else None
    if cut:
        start = content[found.start() :] if found else content
        prefix = valid_call_prefix(start) if (found or not content.strip()) else False
        what = f"{markup!r} markup" if markup else "text"
        return ScoredAnswer(AnswerKind.CUT, f"{what} cut at max_tokens", markup, leaked, prefix)
    if markup:
        return ScoredAnswer(AnswerKind.MARKUP, f"raw {markup!r} markup in content", markup, leaked)
    return ScoredAnswer(AnswerKind.TEXT, "plain text, no tool call", None, leaked)
