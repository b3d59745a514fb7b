"""One PicoClaw session as a load test plays it: turns of agent calls over a growing history.

PicoClaw's agent loop (pkg/agent, sipeed/picoclaw) answers one user message with up to
`max_tool_iterations` (50) LLM calls. Every call resends the same system prompt and tool
schemas (identical bytes for every session, so vLLM's prefix cache decides what the prefill
costs), then the whole history: earlier user messages, assistant text, assistant tool calls
and `tool` results. A `Conversation` holds that history and builds each call's body with
PicoClaw's own request builder (picoclaw_vllm.picoclaw.request); no Locust in here.

Two modes, because a random-weight model decides nothing:
- "forced" (default): every call but the last of a turn forces one of PicoClaw's tools by
  name, the tool's result (synthetic text of `tool_result_chars`) is fed back, and the last
  call answers in text (`answer_tokens`, ignore_eos). The shape is the same on any model.
- "picoclaw": every call sends `tool_choice: "auto"` as PicoClaw does; the turn goes on while
  the model answers with tool calls, up to `calls_per_turn` calls (PicoClaw's cap is 50).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.picoclaw.request import Message, RequestShape

AgentMode = Literal["forced", "picoclaw"]
AGENT_MODES: tuple[AgentMode, ...] = ("forced", "picoclaw")
AnswerKind = Literal["tool_call", "text"]
# Tools with small argument schemas, forced in turn: a junk call of the tiny model stays short.
FORCED_TOOLS = ("read_file", "list_dir")
USER_REQUESTS = (
    "Read README.md in my workspace and tell me in two lines what it is about.",
    "List the files in my workspace and tell me which ones changed today.",
    "Check the notes in memory/MEMORY.md and remind me what I wanted to do this week.",
    "Look at the server logs in logs/ and tell me whether anything failed overnight.",
    "Find my shopping list in notes/ and add milk and coffee to it.",
)


@dataclass(frozen=True)
class AgentShape:
    """What one simulated PicoClaw session does. Defaults drawn from PicoClaw's own where it
    has one: request_timeout 120 s (model_list[].request_timeout), max_tokens 32768
    (agents.defaults.max_tokens, sent in "picoclaw" mode); the others are a small realistic
    turn (a few tool calls, a 2 KB file read each) chosen here."""

    mode: AgentMode = "forced"
    calls_per_turn: int = 4
    turns_per_session: int = 5
    think_time_s: float = 5.0
    tool_result_chars: int = picoclaw_request.TOOL_RESULT_CHARS
    user_message_chars: int = 200
    answer_tokens: int = 64
    tool_call_tokens: int = 256
    turn_timeout_s: float = picoclaw_request.DEFAULT_REQUEST_TIMEOUT_S
    max_tokens: int = picoclaw_request.DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class AgentCall:
    """One LLM call of a turn: its body, and where it stands in the session."""

    body: bytes
    session_id: str
    turn_index: int  # 1-based, within the session
    call_index: int  # 1-based, within the turn
    forced_tool: str | None


def user_text(session_seed: int, turn: int, chars: int) -> str:
    base = USER_REQUESTS[(session_seed + turn) % len(USER_REQUESTS)]
    filler = f" (session {session_seed}, message {turn})"
    text = base + filler
    while len(text) < chars:
        text += " Please be precise and use the workspace files." + filler
    return text[: max(chars, len(base))]


@dataclass
class Conversation:
    shape: AgentShape
    request: RequestShape  # model, key, PicoClaw's max_tokens field and temperature rules
    session_id: str
    seed: int
    stream: bool = True
    messages: list[Message] = field(default_factory=list)
    turn_index: int = 0
    call_index: int = 0

    def __post_init__(self) -> None:
        self.messages = [{"role": "system", "content": picoclaw_request.system_prompt()}]

    @property
    def finished(self) -> bool:
        return self.turn_index >= self.shape.turns_per_session

    def start_turn(self) -> None:
        self.turn_index += 1
        self.call_index = 0
        text = user_text(self.seed, self.turn_index, self.shape.user_message_chars)
        self.messages.append({"role": "user", "content": text})

    def next_call(self) -> AgentCall:
        self.call_index += 1
        forced = None
        extra: dict[str, Any] = {}
        if self.stream:
            extra["stream_options"] = {"include_usage": True}  # measurement only
        if self.shape.mode == "forced":
            last = self.call_index >= self.shape.calls_per_turn
            if last:
                choice: Any = "auto"
                max_tokens = self.shape.answer_tokens
                extra["ignore_eos"] = True
            else:
                forced = FORCED_TOOLS[(self.turn_index + self.call_index) % len(FORCED_TOOLS)]
                choice = {"type": "function", "function": {"name": forced}}
                max_tokens = self.shape.tool_call_tokens
        else:
            choice, max_tokens = "auto", self.shape.max_tokens
        body = picoclaw_request.body(
            self.request,
            self.messages,
            stream=self.stream,
            max_tokens=max_tokens,
            tool_choice=choice,
            extra=extra,
        )
        return AgentCall(
            orjson.dumps(body), self.session_id, self.turn_index, self.call_index, forced
        )

    def after_answer(self, call: AgentCall, kind: str | None) -> bool:
        """Extend the history with what PicoClaw would append; True when the turn goes on.

        A tool call (forced or chosen) adds the assistant's call and the tool's result; a text
        answer ends the turn. The call's arguments are PicoClaw's re-encoded JSON of a fixed
        path, not the model's (a random model's arguments are noise of random length).
        """
        tool = call.forced_tool or (FORCED_TOOLS[0] if kind == "tool_call" else None)
        goes_on = tool is not None and self.call_index < self.shape.calls_per_turn
        if tool is not None and goes_on:
            self.messages += picoclaw_request.one_iteration(
                tool,
                call_id=f"call_{self.turn_index}_{self.call_index}",
                result_chars=self.shape.tool_result_chars,
            )
            return True
        self.messages.append({"role": "assistant", "content": "Done: here is what I found."})
        return False
