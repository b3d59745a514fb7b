"""The load profile's options are discoverable where a Locust user looks: a command prints
them all (Locust's own --help cannot: it answers before it loads the locustfile), Locust's
web UI lists them as custom parameters (the API key masked), and the docs claim nothing false."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests import options
from picoclaw_vllm.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _flags() -> list[str]:
    parser = options._Plain(add_help=False)
    options.add_arguments(parser)
    return [a.option_strings[0] for a in parser._actions]


def test_load_options_command_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load-options"]) == 0
    out = capsys.readouterr().out
    flags = _flags()
    assert len(flags) >= 25
    for flag in flags:
        assert f"\n  {flag} " in out, flag
        env = "PICOCLAW_LOAD_" + flag.lstrip("-").replace("-", "_").upper()
        assert env in out, env
    assert "--workload {chat,agent}" in out
    assert "default 120.0" in out  # --turn-timeout: PicoClaw's request_timeout
    assert "Custom parameters" in out


def test_python_m_loadtests_options_prints_the_same() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtests.options"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout == options.describe_options()


WEB_UI_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
import loadtests.chat  # registers the init_command_line_parser listener, as `locust -f` does
from locust.argument_parser import ui_extra_args_dict
print(json.dumps(ui_extra_args_dict(["-f", "loadtests/chat.py"])))
"""


def test_web_ui_lists_every_option_with_the_key_masked() -> None:
    env = {**os.environ, "PICOCLAW_LOAD_API_KEY": "pcv-ui-secret-123"}
    result = subprocess.run(
        [sys.executable, "-c", WEB_UI_PROBE.format(root=str(ROOT))],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True, env=env,
    )  # fmt: skip
    extra = json.loads(result.stdout.strip().splitlines()[-1])
    dests = {flag.lstrip("-").replace("-", "_") for flag in _flags()}
    assert dests <= set(extra), dests - set(extra)
    assert extra["api_key"]["is_secret"] is True
    assert all(not extra[d]["is_secret"] for d in dests - {"api_key"})
    assert extra["workload"]["choices"] == ["chat", "agent"]


def test_docs_say_where_the_options_are() -> None:
    chat = (ROOT / "loadtests" / "chat.py").read_text()
    assert "see `locust -f loadtests/chat.py --help`" not in chat
    assert "picoclaw-vllm load-options" in chat
    readme = (ROOT / "loadtests" / "README.md").read_text()
    assert "picoclaw-vllm load-options" in readme
    for flag in _flags():
        assert f"`{flag}" in readme, flag  # every option in the README's table
