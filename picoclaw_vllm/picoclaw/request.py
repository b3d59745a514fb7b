"""PicoClaw's chat request, built by its own rules (pkg/providers/openai_compat/provider.go).

Every probe or load profile that claims to be "PicoClaw-shaped" builds its body and headers
here. The rules, with the Go they come from (sipeed/picoclaw at `PICOCLAW_COMMIT`):
- `tools` and `tool_choice: "auto"` whenever the agent has tools (`buildRequestBody`);
- `max_tokens`, or `max_completion_tokens` when `max_tokens_field` says so or the model name
  contains `glm`, `o1` or `gpt-5`;
- `temperature` whenever the caller passes one, 1.0 for Kimi K2 models; the agent loop always
  passes `agents.defaults.temperature`, 0.7 when unset (pkg/agent/instance.go), so it is sent;
- `extra_body` merged last, over everything else;
- streaming adds `"stream": true` and `Accept: text/event-stream` (no `stream_options`);
- headers: `Content-Type`, `User-Agent: PicoClaw/<version>` (or the entry's `user_agent`),
  `Authorization: Bearer <key>` only with a key, then `custom_headers`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

Message = dict[str, Any]
ToolDef = dict[str, Any]

DEFAULT_MAX_TOKENS = 32768  # pkg/config/defaults.go: MaxTokens
AGENT_TEMPERATURE = 0.7  # pkg/agent/instance.go: used when agents.defaults.temperature is unset
DEFAULT_MAX_TOOL_ITERATIONS = 50  # pkg/config/defaults.go: MaxToolIterations
DEFAULT_REQUEST_TIMEOUT_S = 120.0  # openai_compat: defaultRequestTimeout
# config.Version is "dev" unless set at build time; releases send e.g. PicoClaw/0.2.4.
DEFAULT_USER_AGENT = "PicoClaw/0.2.4"
MAX_COMPLETION_TOKENS_MARKERS = ("glm", "o1", "gpt-5")
FIRST_USER_MESSAGE = "Read README.md in my workspace and tell me in two lines what it is about."


@dataclass(frozen=True)
class RequestShape:
    """The parts of one PicoClaw model entry that shape its requests."""

    model: str  # the name sent, after PicoClaw's provider-prefix handling
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_tokens_field: str | None = None
    temperature: float | None = AGENT_TEMPERATURE  # None: left out, as the provider does
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    custom_headers: Mapping[str, str] = field(default_factory=dict)
    user_agent: str | None = None
    api_key: str | None = field(default=None, repr=False)
    streaming: bool = False

    def with_(self, **changes: Any) -> RequestShape:
        return replace(self, **changes)


def max_tokens_field(shape: RequestShape) -> str:
    if shape.max_tokens_field:
        return shape.max_tokens_field
    lower = shape.model.lower()
    if any(marker in lower for marker in MAX_COMPLETION_TOKENS_MARKERS):
        return "max_completion_tokens"
    return "max_tokens"


def body(
    shape: RequestShape,
    messages: Sequence[Message],
    tools: Sequence[ToolDef] | None = None,
    *,
    stream: bool | None = None,
    max_tokens: int | None = None,
    tool_choice: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body PicoClaw sends. `tools=None` means PicoClaw's default tools.

    `max_tokens` lowers the configured value for a probe (the context check judges the
    configured one); `tool_choice` replaces "auto" for a forced call; `extra` adds probe-only
    fields (e.g. vLLM's `ignore_eos`) before `extra_body`, which PicoClaw merges last.
    """
    tools = default_tools() if tools is None else tools
    data: dict[str, Any] = {"model": shape.model, "messages": list(messages)}
    if tools:
        data["tools"] = list(tools)
        data["tool_choice"] = "auto" if tool_choice is None else tool_choice
    data[max_tokens_field(shape)] = shape.max_tokens if max_tokens is None else max_tokens
    if shape.temperature is not None:
        lower = shape.model.lower()
        data["temperature"] = 1.0 if "kimi" in lower and "k2" in lower else shape.temperature
    if extra:
        data.update(extra)
    data.update(shape.extra_body)
    if shape.streaming if stream is None else stream:
        data["stream"] = True
    return data


def headers(shape: RequestShape, *, stream: bool | None = None) -> dict[str, str]:
    h = {"Content-Type": "application/json"}
    if shape.streaming if stream is None else stream:
        h["Accept"] = "text/event-stream"
    h["User-Agent"] = shape.user_agent or DEFAULT_USER_AGENT
    if shape.api_key:
        h["Authorization"] = f"Bearer {shape.api_key}"
    h.update(shape.custom_headers)
    return h


@cache
def _data(name: str) -> str:
    return resources.files("picoclaw_vllm.picoclaw").joinpath("data", name).read_text("utf-8")


@cache
def _tools_document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_data("tools.json"))
    return doc


def default_tools() -> list[ToolDef]:
    """PicoClaw's default tool definitions, as its agent sends them."""
    return list(_tools_document()["tools"])


def tools_source() -> dict[str, Any]:
    """Where the tool definitions were read: repository, commit, files."""
    source: dict[str, Any] = _tools_document()["source"]
    return source


def tool_names() -> list[str]:
    return [t["function"]["name"] for t in default_tools()]


PROMPT_VALUES = {
    "version": DEFAULT_USER_AGENT.removeprefix("PicoClaw/"),
    "workspace": "/home/user/.picoclaw/workspace",
    "goos": "linux",
    "goarch": "amd64",
    "go_version": "go1.25.1",
    "channel": "telegram",
    "chat_id": "123456789",
    "sender_line": "Current sender: Alex (ID: 123456789)",
    "now": "2026-12-04 09:30 (Friday)",
}


def system_prompt(**values: str) -> str:
    """PicoClaw's system prompt for a fresh workspace (data/system_prompt.md, read from
    pkg/agent/context.go; see data/SYSTEM_PROMPT_NOTES.md), its runtime lines filled in."""
    text = _data("system_prompt.md")
    for key, value in {**PROMPT_VALUES, **values}.items():
        text = text.replace("{" + key + "}", value)
    return text


def first_messages(user_text: str = FIRST_USER_MESSAGE) -> list[Message]:
    """The messages of the first call of a PicoClaw session: system prompt and one user turn."""
    return [
        {"role": "system", "content": system_prompt()},
        {"role": "user", "content": user_text},
    ]


# What one agent iteration adds to the history: the assistant's tool call and the tool's result
# (PicoClaw appends both and resends everything on the next call).
TOOL_RESULT_CHARS = 2000
_RESULT_LINE = "Line {n}: the quick brown fox jumps over the lazy dog while vLLM streams tokens.\n"


def tool_result_text(chars: int = TOOL_RESULT_CHARS, seed: int = 0) -> str:
    text, n = "", seed
    while len(text) < chars:
        text += _RESULT_LINE.format(n=n)
        n += 1
    return text[:chars]


def one_iteration(
    tool_name: str,
    *,
    call_id: str = "call_0",
    arguments: Mapping[str, Any] | None = None,
    result_chars: int = TOOL_RESULT_CHARS,
) -> list[Message]:
    """The assistant tool call and the `tool` result message PicoClaw appends for it."""
    args = json.dumps(dict(arguments or {"path": "README.md"}), separators=(",", ":"))
    return [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": tool_name, "arguments": args},
                }
            ],
        },
        {
            "role": "tool",
            "content": tool_result_text(result_chars, seed=len(call_id)),
            "tool_call_id": call_id,
        },
    ]
