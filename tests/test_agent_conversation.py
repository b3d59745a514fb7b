"""The agent workload's sessions, without a server: what each call sends and how the history
grows; and the per-turn figures a step gets from its records."""

from __future__ import annotations

import json

import orjson

from loadtests.agent_conversation import AgentShape, Conversation
from loadtests.records import RequestRecord
from picoclaw_vllm.picoclaw import request as picoclaw_request
from sweeps.step_figures import summarize

PICO = picoclaw_request.RequestShape(model="tiny-llama", api_key="k")


def play_turn(conv: Conversation, kinds: list[str]) -> list[dict[str, object]]:
    conv.start_turn()
    bodies = []
    for kind in kinds:
        call = conv.next_call()
        bodies.append(orjson.loads(call.body))
        if not conv.after_answer(call, kind):
            break
    return bodies


def test_forced_turn_calls_tools_then_answers_in_text() -> None:
    conv = Conversation(AgentShape(calls_per_turn=3), PICO, "s1", seed=0)
    bodies = play_turn(conv, ["tool_call", "tool_call", "text"])
    assert len(bodies) == 3
    for body in bodies[:2]:
        assert body["tool_choice"]["type"] == "function"
        assert body["tools"] == picoclaw_request.default_tools()
        assert body["max_tokens"] == 256 and "ignore_eos" not in body
    last = bodies[2]
    assert last["tool_choice"] == "auto" and last["ignore_eos"] is True
    assert last["max_tokens"] == AgentShape().answer_tokens
    assert all(b["stream"] is True and b["temperature"] == 0.7 for b in bodies)
    # the history grows by a tool call and its result each call, after one shared prefix
    sizes = [len(json.dumps(b["messages"])) for b in bodies]
    assert sizes[0] < sizes[1] < sizes[2]
    assert all(b["messages"][0] == bodies[0]["messages"][0] for b in bodies)
    roles = [m["role"] for m in bodies[2]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool"]


def test_history_carries_over_turns_and_a_session_ends() -> None:
    conv = Conversation(AgentShape(calls_per_turn=2, turns_per_session=2), PICO, "s", seed=1)
    first = play_turn(conv, ["tool_call", "text"])
    second = play_turn(conv, ["tool_call", "text"])
    assert len(second[0]["messages"]) > len(first[-1]["messages"])
    users = [m for m in second[0]["messages"] if m["role"] == "user"]
    assert len(users) == 2 and users[0] != users[1]
    assert conv.finished


def test_picoclaw_mode_follows_the_model_up_to_the_cap() -> None:
    shape = AgentShape(mode="picoclaw", calls_per_turn=5)
    conv = Conversation(shape, PICO, "s", seed=0)
    bodies = play_turn(conv, ["tool_call", "text", "tool_call"])
    assert len(bodies) == 2  # the text answer ended the turn
    assert all(b["tool_choice"] == "auto" and b["max_tokens"] == 32768 for b in bodies)
    capped = Conversation(AgentShape(mode="picoclaw", calls_per_turn=2), PICO, "c", seed=0)
    assert len(play_turn(capped, ["tool_call"] * 5)) == 2


def rec(i: int, **kw: object) -> RequestRecord:
    base: dict[str, object] = dict(
        ok=True, step_id="a", request_id=str(i), worker="w", start_unix=100.0 + i,
        end_unix=100.5 + i, prompt_tokens=1000 + 100 * i, output_tokens=10, ttft_ms=5.0,
        e2el_ms=500.0, session_id="s1", turn_index=1, call_index=i, answer_kind="tool_call",
    )  # fmt: skip
    base.update(kw)
    return RequestRecord(**base)  # type: ignore[arg-type]


def test_turn_figures_from_records() -> None:
    records = [
        rec(1),
        rec(2, answer_kind="text", turn_latency_ms=1500.0, turn_timed_out=False),
        rec(3, turn_index=2, call_index=1, ok=False, error="HTTP 500",
            turn_latency_ms=None, turn_timed_out=False),
        rec(4, turn_index=3, call_index=1, answer_kind="text", turn_latency_ms=130_000.0,
            turn_timed_out=True),
    ]  # fmt: skip
    row = summarize(records)
    assert row["turns"] == 2 and row["turns_failed"] == 1 and row["turns_timed_out"] == 1
    assert row["turn_latency_ms_max"] == 130_000.0
    assert row["tool_call_answers"] == 1 and row["text_answers"] == 2
    assert row["prompt_tokens_max"] == 1400
    assert "turns" not in summarize([rec(1, session_id=None)])
