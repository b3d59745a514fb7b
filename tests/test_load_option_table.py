"""One declaration per load option: Locust's parser, the sweep's and acceptance's flags, the
Locust command line of a sweep step and acceptance's presets all come from
loadtests/option_table.py, and a value given to the sweep is the value Locust reads."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path

import pytest

from loadtests import option_table
from loadtests.options import LoadOptions, _Plain, parse_for_test
from picoclaw_vllm import acceptance_command
from sweeps import command as sweep_command
from sweeps.config import LoadStep, SweepConfig
from sweeps.locust_process import locust_command


def _sweep_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sweep_command.add_arguments(parser)
    return parser.parse_args(["--out", "runs/x", *argv])


def _locust_load_args(cmd: list[str]) -> list[str]:
    """The load profile's options of a Locust command line (Locust's own flags dropped)."""
    flags = {o.flag for o in option_table.OPTIONS}
    args: list[str] = []
    for i, token in enumerate(cmd):
        if token in flags:
            args += [token, cmd[i + 1]]
    return args


def test_every_parser_is_made_from_the_table() -> None:
    locust = _Plain(add_help=False)
    option_table.add_locust_arguments(locust)
    assert [a.option_strings[0] for a in locust._actions] == [o.flag for o in option_table.OPTIONS]
    sweep = argparse.ArgumentParser()
    sweep_command.add_arguments(sweep)
    sweep_flags = {s for a in sweep._actions for s in a.option_strings}
    for o in option_table.OPTIONS:
        taken = (o.sweep_switch or o.flag) in sweep_flags
        # Locust-only options the sweep sets per step (or serves: --model) are its own flags
        assert taken == o.sweep or o.flag in {"--model", "--api-key", "--rate"}, o.flag


def test_load_options_defaults_are_the_tables() -> None:
    parsed, default = parse_for_test([]), LoadOptions()
    assert dataclasses.replace(parsed, agent=default.agent) == default
    # an agent answer is --output-tokens long once parsed; AgentShape's own default is 64
    assert dataclasses.replace(parsed.agent, answer_tokens=64) == default.agent


def test_sweep_defaults_differ_from_locust_only_where_the_table_says() -> None:
    values = option_table.sweep_values(_sweep_args([]))
    locust_default = parse_for_test([])
    for o in option_table.SWEEP_OPTIONS:
        if o.flag == "--prompt-pool":
            assert (values["prompt_pool"], locust_default.prompt_pool) == (16, 32)
        elif o.sweep_switch:
            assert values[o.sweep_key] is True
        else:
            assert values[o.sweep_key] == (o.default if o.default != "" else None), o.flag


def test_a_sweep_value_reaches_locust_as_given() -> None:
    args = _sweep_args([
        "--prompt-tokens", "77", "--output-tokens", "9", "--no-stream", "--usage-stats",
        "continuous", "--endpoint", "completions", "--prompt-pool", "3", "--seed", "5",
        "--warmup", "1500ms", "--burstiness", "0.5", "--workload", "agent", "--agent-mode",
        "picoclaw", "--calls-per-turn", "2", "--turns-per-session", "3", "--think-time", "2s",
        "--tool-result-chars", "100", "--turn-timeout", "1m",
    ])  # fmt: skip
    config = sweep_command.config_from_args(args)
    cmd = locust_command(
        config, LoadStep("rate", 4, 2.0), step_id="st", host="http://h:1", model="m",
        records=Path("r.jsonl"),
    )  # fmt: skip
    seen = parse_for_test(_locust_load_args(cmd))
    assert (seen.prompt_tokens, seen.output_tokens, seen.stream) == (77, 9, False)
    assert (seen.usage_stats, seen.endpoint, seen.prompt_pool, seen.seed) == (
        "continuous", "completions", 3, 5,
    )  # fmt: skip
    assert (seen.warmup_s, seen.burstiness, seen.workload) == (1.5, 0.5, "agent")
    assert (seen.agent.mode, seen.agent.calls_per_turn, seen.agent.turns_per_session) == (
        "picoclaw", 2, 3,
    )  # fmt: skip
    assert (seen.agent.think_time_s, seen.agent.tool_result_chars) == (2.0, 100)
    assert seen.agent.turn_timeout_s == 60.0
    assert (seen.step_id, seen.load_mode, seen.rate, seen.model) == ("st", "rate", 2.0, "m")


def test_a_chat_step_gets_no_agent_options() -> None:
    config = sweep_command.config_from_args(_sweep_args(["--think-time", "3"]))
    cmd = locust_command(
        config, LoadStep("concurrency", 2), step_id="s", host="http://h:1", model="m",
        records=Path("r.jsonl"),
    )  # fmt: skip
    line = shlex.join(cmd)
    assert "--think-time" not in line and "--workload" not in line
    assert "--prompt-tokens 256" in line and "--prompt-pool 16" in line


def test_saved_config_keeps_its_keys_and_reads_back() -> None:
    config = sweep_command.config_from_args(_sweep_args(["--no-stream", "--think-time", "2"]))
    data = config.to_json()
    # the keys sweep.json always had (the report reads them)
    assert (data["stream"], data["think_time_s"], data["warmup_s"], data["prompt_pool"]) == (
        False, 2.0, 0.0, 16,
    )  # fmt: skip
    assert "load" not in data
    assert SweepConfig.from_json(data) == config
    older = {k: v for k, v in data.items() if k != "tool_result_chars"}  # a key it lacks
    assert SweepConfig.from_json(older).load["tool_result_chars"] == 2000


def test_sweep_defaults_refuses_an_unknown_key() -> None:
    with pytest.raises(TypeError, match="not a sweep load option: prompt_tokenz"):
        option_table.sweep_defaults(prompt_tokenz=3)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"prompt_tokens": 64, "output_tokens": 32, "warmup_s": 2.0, "think_time_s": 1.0}),
        (
            ["--model", "org/m"],
            {"prompt_tokens": 256, "output_tokens": 128, "warmup_s": 5.0, "think_time_s": 5.0},
        ),
        (
            ["--prompt-tokens", "99", "--think-time", "3"],
            {"prompt_tokens": 99, "think_time_s": 3.0},
        ),
    ],
)
def test_acceptance_presets_come_from_the_table(
    argv: list[str], expected: dict[str, object]
) -> None:
    parser = argparse.ArgumentParser()
    acceptance_command.add_arguments(parser)
    args = parser.parse_args([*argv, "--out", "runs/x"])
    acceptance_command._fill_defaults(args)
    load = sweep_command.config_from_args(args).load
    assert load["workload"] == "agent"
    assert {k: load[k] for k in expected} == expected
