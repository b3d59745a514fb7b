"""What PicoClaw needs of the context: its first request (system prompt, 17 tool schemas, one
user message), what each agent iteration adds, how many iterations, its max_tokens.

Counted with the model's own tokenizer (tokenizer.json through the `tokenizers` package, the
prompt rendered by the model's chat template with tools, as vLLM renders it) when the model's
files are local; else estimated from the characters, and the plan says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.plan.model_source import ModelSource

# Llama 3's tokenizer took about 5,400 tokens for PicoClaw's first request (README: the
# doctor's context check, measured with vLLM's /tokenize), whose text is 18,731 characters.
ESTIMATE_CHARS_PER_TOKEN = 3.5
ITERATION_TOOL = "read_file"  # the doctor's forced tool call (diagnostics/facts.py)


@dataclass(frozen=True)
class PicoclawNeeds:
    prompt_tokens: int
    iteration_tokens: int
    iterations: int
    max_tokens: int
    sessions: int
    counted_with: str  # the tokenizer, or "estimate: ..."
    exact: bool

    @property
    def context(self) -> int:
        return self.prompt_tokens + self.iterations * self.iteration_tokens + self.max_tokens


def _tojson(value: Any, indent: int | None = None) -> str:
    # transformers' own filter: no HTML escaping and no key sorting (jinja2's tojson does both)
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _raise(message: str) -> None:
    raise ValueError(message)


def _chat_template(source: ModelSource) -> str | None:
    path = source.file("chat_template.jinja")
    if path is not None:
        return path.read_text(encoding="utf-8")
    config = source.file("tokenizer_config.json")
    if config is None:
        return None
    template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    if isinstance(template, list):  # named templates: the one called "tool_use", else default
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("tool_use") or named.get("default")
    return template if isinstance(template, str) else None


def _render(template: str, messages: list[dict[str, Any]], source: ModelSource) -> str:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    specials = {}
    config = source.file("tokenizer_config.json")
    if config is not None:
        data = json.loads(config.read_text(encoding="utf-8"))
        for key in ("bos_token", "eos_token"):
            value = data.get(key)
            specials[key] = value.get("content", "") if isinstance(value, dict) else value or ""
    return env.from_string(template).render(
        messages=messages,
        tools=picoclaw_request.default_tools(),
        add_generation_prompt=True,
        **specials,
    )


def _plain(messages: list[dict[str, Any]]) -> str:
    """The request's text without a template: the tool schemas and every message."""
    tools = "".join(_tojson(t) for t in picoclaw_request.default_tools())
    parts = [tools]
    for m in messages:
        parts.append(str(m.get("content") or ""))
        parts += [_tojson(c["function"]) for c in m.get("tool_calls") or []]
    return "\n".join(parts)


def _conversations() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    first = picoclaw_request.first_messages()
    return first, first + picoclaw_request.one_iteration(ITERATION_TOOL)


def count(source: ModelSource, iterations: int, max_tokens: int, sessions: int) -> PicoclawNeeds:
    first, longer = _conversations()
    tokenizer_file = source.file("tokenizer.json")
    template = _chat_template(source) if tokenizer_file is not None else None
    if tokenizer_file is not None and template is not None:
        try:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            a, b = (
                len(tokenizer.encode(_render(template, m, source), add_special_tokens=False).ids)
                for m in (first, longer)
            )
        except Exception as e:  # a template this renderer cannot run: fall back, and say so
            return _estimate(
                first,
                longer,
                iterations,
                max_tokens,
                sessions,
                f"{type(e).__name__} rendering the chat template",
            )
        return PicoclawNeeds(
            a,
            b - a,
            iterations,
            max_tokens,
            sessions,
            f"the model's tokenizer ({tokenizer_file}) and chat template, with tools",
            True,
        )
    why = "no tokenizer.json beside config.json" if tokenizer_file is None else "no chat template"
    return _estimate(first, longer, iterations, max_tokens, sessions, why)


def _estimate(
    first: list[dict[str, Any]],
    longer: list[dict[str, Any]],
    iterations: int,
    max_tokens: int,
    sessions: int,
    why: str,
) -> PicoclawNeeds:
    a = round(len(_plain(first)) / ESTIMATE_CHARS_PER_TOKEN)
    b = round(len(_plain(longer)) / ESTIMATE_CHARS_PER_TOKEN)
    return PicoclawNeeds(
        a,
        b - a,
        iterations,
        max_tokens,
        sessions,
        f"estimate: {ESTIMATE_CHARS_PER_TOKEN:g} characters a token ({why}); the real count "
        "may differ by a third either way",
        False,
    )
