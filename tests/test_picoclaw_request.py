"""PicoClaw's request builder against PicoClaw's own rules (pkg/providers/openai_compat/
provider.go and the agent loop, sipeed/picoclaw at the commit in data/tools.json), field by
field; and the tool-call parser table against the installed vLLM's own registry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from picoclaw_vllm.paths import cpu_env_dir
from picoclaw_vllm.picoclaw import request as r
from picoclaw_vllm.picoclaw.config import PicoclawConfig, load
from picoclaw_vllm.vllm_api import tool_parsers

SHAPE = r.RequestShape(model="Qwen/Qwen3-8B")


def test_tools_are_picoclaws_defaults_with_their_source() -> None:
    source = r.tools_source()
    assert source["repo"] == "sipeed/picoclaw" and re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    names = r.tool_names()
    # on the wire PicoClaw sorts its tools by name (pkg/tools/registry.go sortedToolNames)
    assert names == sorted(names) and len(names) == len(set(names)) >= 15
    assert {"read_file", "write_file", "edit_file", "exec", "web_fetch", "message"} <= set(names)
    for tool in r.default_tools():
        assert tool["type"] == "function"
        fn = tool["function"]
        assert fn["description"] and fn["parameters"]["type"] == "object"


def test_tools_and_auto_tool_choice_travel_together() -> None:
    body = r.body(SHAPE, r.first_messages())
    assert body["tool_choice"] == "auto" and body["tools"] == r.default_tools()
    bare = r.body(SHAPE, r.first_messages(), tools=[])
    assert "tools" not in bare and "tool_choice" not in bare
    forced = {"type": "function", "function": {"name": "read_file"}}
    assert r.body(SHAPE, r.first_messages(), tool_choice=forced)["tool_choice"] == forced


@pytest.mark.parametrize(
    ("model", "field", "configured"),
    [
        ("Qwen/Qwen3-8B", "max_tokens", None),
        ("zai-org/GLM-4.5-Air", "max_completion_tokens", None),
        ("my-o1-mini", "max_completion_tokens", None),
        ("gpt-5-nano", "max_completion_tokens", None),
        ("Qwen/Qwen3-8B", "max_completion_tokens", "max_completion_tokens"),
        ("zai-org/GLM-4.5-Air", "max_tokens", "max_tokens"),
    ],
)
def test_max_tokens_field_follows_picoclaws_rule(
    model: str, field: str, configured: str | None
) -> None:
    body = r.body(SHAPE.with_(model=model, max_tokens_field=configured), [])
    assert body[field] == 32768
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert not other & body.keys()


def test_temperature_is_the_agents_unless_configured_and_kimi_k2_gets_one() -> None:
    assert r.body(SHAPE, [])["temperature"] == 0.7
    assert r.body(SHAPE.with_(temperature=0.2), [])["temperature"] == 0.2
    assert "temperature" not in r.body(SHAPE.with_(temperature=None), [])
    assert r.body(SHAPE.with_(model="moonshotai/Kimi-K2-Instruct"), [])["temperature"] == 1.0


def test_extra_body_is_merged_last_and_stream_after_it() -> None:
    shape = SHAPE.with_(extra_body={"max_tokens": 7, "tool_choice": "none", "stream": False})
    body = r.body(shape, [], stream=True, extra={"ignore_eos": True})
    assert body["max_tokens"] == 7 and body["tool_choice"] == "none" and body["ignore_eos"]
    assert body["stream"] is True  # PicoClaw sets stream after the merge
    assert "stream_options" not in body


def test_headers_user_agent_key_and_custom_headers_last() -> None:
    h = r.headers(SHAPE, stream=False)
    assert h == {"Content-Type": "application/json", "User-Agent": r.DEFAULT_USER_AGENT}
    shape = SHAPE.with_(api_key="k-1", custom_headers={"X-Team": "a", "User-Agent": "mine/1"})
    h = r.headers(shape, stream=True)
    assert h["Authorization"] == "Bearer k-1" and h["Accept"] == "text/event-stream"
    assert h["X-Team"] == "a" and h["User-Agent"] == "mine/1"


def test_system_prompt_has_picoclaws_shape_and_no_placeholders() -> None:
    prompt = r.system_prompt()
    assert prompt.startswith("# picoclaw") and "## Workspace" in prompt
    assert "## Current Time" in prompt and "<skills>" in prompt
    assert not re.search(r"\{(now|workspace|version|goos|channel)\}", prompt)
    assert len(prompt) > 5000
    messages = r.first_messages("hi")
    assert [m["role"] for m in messages] == ["system", "user"]


def test_one_iteration_is_a_tool_call_and_its_result() -> None:
    call, result = r.one_iteration("read_file", call_id="call_7", result_chars=500)
    assert call["role"] == "assistant" and call["content"] == ""
    fn = call["tool_calls"][0]["function"]
    assert fn["name"] == "read_file" and isinstance(json.loads(fn["arguments"]), dict)
    assert result == {"role": "tool", "content": result["content"], "tool_call_id": "call_7"}
    assert len(result["content"]) == 500


def test_config_fields_reach_the_request(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "version": 3,
                "model_list": [
                    {
                        "model_name": "m",
                        "model": "vllm/zai-org/GLM-4.5-Air",
                        "extra_body": {"top_k": 20},
                        "custom_headers": {"X-Team": "a"},
                        "streaming": {"enabled": True},
                        "user_agent": "PicoClaw/9.9",
                    }
                ],
                "agents": {"defaults": {"model_name": "m", "max_tokens": 4096,
                                        "temperature": 0.1}},
            }
        )
    )  # fmt: skip
    config = load(path)
    assert isinstance(config, PicoclawConfig)
    assert config.streaming is True and config.temperature == 0.1
    assert config.extra_body == {"top_k": 20} and config.custom_headers == {"X-Team": "a"}
    assert config.user_agent == "PicoClaw/9.9"
    assert PicoclawConfig(path=None, format="none").temperature == 0.7


def test_parser_table_fits_the_families_the_issue_names() -> None:
    assert tool_parsers.tool_flags("meta-llama/Llama-3.1-8B-Instruct")[-1] == "llama3_json"
    assert tool_parsers.tool_flags("Qwen/Qwen2.5-7B-Instruct")[-1] == "hermes"
    assert tool_parsers.tool_flags("Qwen/Qwen3-8B")[-1] == "hermes"
    assert tool_parsers.tool_flags("NousResearch/Hermes-3-Llama-3.1-8B")[-1] == "hermes"
    assert tool_parsers.tool_flags("mistralai/Mistral-7B-Instruct-v0.3")[-1] == "mistral"
    assert tool_parsers.fit("tiny-llama") is None
    commands = tool_parsers.launch_commands("Qwen/Qwen3-8B")
    assert commands.count("--enable-auto-tool-choice --tool-call-parser hermes") == 3
    assert "docker run" in commands and "api_server" in commands and "ExecStart" in commands


def test_every_parser_in_the_table_is_registered_in_the_installed_vllm() -> None:
    registry = cpu_env_dir() / "lib"
    found = list(registry.glob("python3*/site-packages/vllm/tool_parsers/__init__.py"))
    if not found:
        pytest.skip("the CPU vLLM environment is not installed (make setup-cpu)")
    names = set(re.findall(r'^\s*"([\w-]+)": \(', found[0].read_text(), re.MULTILINE))
    assert {p.parser for p in tool_parsers.PARSERS} <= names
