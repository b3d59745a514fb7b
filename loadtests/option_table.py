"""Every option of the load profile, declared once.

Each entry says how Locust takes it (`locust -f loadtests/chat.py --FLAG`, env var
PICOCLAW_LOAD_*, the web UI's "Custom parameters") and whether `picoclaw-vllm sweep` (and
`acceptance`, which takes the sweep's options) takes it too and passes it on to every Locust
step. From this table come: Locust's `add_argument`s (loadtests.options), the sweep's
argparse groups and the values it keeps (`SweepConfig.load`, sweep.json's config), the Locust
command line of a step, and acceptance's presets. Adding a load option is one entry here plus
its use (a `LoadOptions` field).

Options the sweep sets per step (`--model`, `--records`, `--step-id`, `--load-mode`,
`--rate`) are Locust-only here: the sweep has its own flags for what it sweeps.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from loadtests.agent_conversation import AGENT_MODES, AgentShape
from loadtests.arrivals import LOAD_MODES
from loadtests.request_builder import ENDPOINTS, USAGE_STATS
from picoclaw_vllm import argtypes

ENV_PREFIX = "PICOCLAW_LOAD_"
Workload = Literal["chat", "agent"]
WORKLOADS: tuple[Workload, ...] = ("chat", "agent")
LoadValue = str | int | float | bool | None
Section = Literal["load", "agent"]
Target = Literal["embedded", "general"]
_AGENT = AgentShape()


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


@dataclass(frozen=True)
class LoadOption:
    """One option. `default` is Locust's (a str, int or float: the web UI converts what is
    typed with the default's type); `parse` checks a value given on a command line or in the
    environment (None: text). The sweep's side: `sweep` (it takes the option and passes it to
    Locust), `sweep_default` where the sweep deliberately differs, `sweep_switch` where the
    sweep has a switch for the second choice instead (its value is then a bool: the first
    choice), `key` (the name in SweepConfig.load and sweep.json), `section` (its help group),
    `forward` (False: the sweep passes its own value per step), and acceptance's presets for
    the embedded tiny model and for any other target (`embedded`, `general`)."""

    flag: str
    help: str
    default: str | int | float
    parse: Callable[[str], int | float | str] | None = None
    choices: tuple[str, ...] | None = None
    secret: bool = False
    sweep: bool = True
    sweep_default: LoadValue | _Unset = UNSET
    sweep_switch: str | None = None
    sweep_help: str | None = None
    key: str | None = None
    section: Section = "load"
    forward: bool = True
    embedded: LoadValue | _Unset = UNSET
    general: LoadValue | _Unset = UNSET

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()

    @property
    def sweep_key(self) -> str:
        return self.key or self.dest

    @property
    def sweep_dest(self) -> str:
        return (self.sweep_switch or self.flag).lstrip("-").replace("-", "_")

    def sweep_value_default(self) -> LoadValue:
        if not isinstance(self.sweep_default, _Unset):
            return self.sweep_default
        if self.sweep_switch:
            return True
        return self.default if self.default != "" else None

    def preset(self, target: Target) -> LoadValue | _Unset:
        return self.embedded if target == "embedded" else self.general

    def locust_arg(self, value: LoadValue) -> str:
        """The sweep's value as Locust's command line takes it."""
        if self.sweep_switch and self.choices:
            return self.choices[0] if value else self.choices[1]
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)


OPTIONS: tuple[LoadOption, ...] = (
    LoadOption("--model", "served model name (default: first in /v1/models)", "", sweep=False),
    LoadOption(
        "--api-key",
        "API key (default: VLLM_API_KEY, else PicoClaw's config); never printed",
        "",
        secret=True,
        sweep=False,
    ),
    LoadOption(
        "--prompt-tokens",
        "synthetic prompt length in tokens",
        256,
        argtypes.integer(1, 10_000_000),
        embedded=64,
    ),
    LoadOption(
        "--output-tokens",
        "tokens per answer (ignore_eos)",
        128,
        argtypes.integer(1, 10_000_000),
        embedded=32,
    ),
    LoadOption(
        "--stream",
        "stream answers (SSE)",
        "on",
        choices=("on", "off"),
        sweep_switch="--no-stream",
        sweep_help="non-streamed requests (no TTFT)",
    ),
    LoadOption(
        "--usage-stats",
        "streamed usage: final (like vllm bench serve) or continuous (every event)",
        "final",
        choices=USAGE_STATS,
    ),
    LoadOption("--endpoint", "chat or completions", "chat", choices=ENDPOINTS),
    LoadOption(
        "--prompt-file",
        "JSONL / ShareGPT file instead of synthetic prompts",
        "",
        forward=False,  # the sweep passes its prompts file (made once per sweep) to each step
    ),
    LoadOption(
        "--prompt-pool",
        "distinct synthetic prompts per process",
        32,
        argtypes.integer(1, 100_000),
        # the sweep tokenizes its pool once per sweep (pool x workers prompts): a smaller one
        sweep_default=16,
    ),
    LoadOption("--seed", "seed for prompts and arrivals", 0, argtypes.NON_NEGATIVE_INT),
    LoadOption("--records", "raw per-request records (JSONL) path", "", sweep=False),
    LoadOption(
        "--warmup",
        "seconds at the start not counted",
        0.0,
        argtypes.duration,
        sweep_help="not counted, before each step",
        key="warmup_s",
        embedded=2.0,
        general=5.0,
    ),
    LoadOption("--load-mode", "closed/open loop", "concurrency", choices=LOAD_MODES, sweep=False),
    LoadOption("--rate", "open loop: requests/s (Poisson)", 0.0, float, sweep=False),
    LoadOption(
        "--burstiness",
        "open loop: gamma shape (1 = Poisson)",
        1.0,
        argtypes.number(0, 1000, low_open=True),
    ),
    LoadOption("--step-id", "step id written into each record", "locust", sweep=False),
    LoadOption("--request-timeout", "seconds before a request fails", 600.0, float, sweep=False),
    LoadOption(
        "--num-prompts",
        "stop the whole run after this many requests, all users (and workers) together, "
        "then end once they have finished, as vllm bench serve --num-prompts does "
        "(0: run for -t); keep -t as a safety limit",
        0,
        int,
        sweep=False,
    ),
    LoadOption(
        "--workload",
        "chat: independent prompts (as vllm bench serve); agent: PicoClaw sessions "
        "(its tools, system prompt and a growing history; loadtests/agent_conversation.py)",
        "chat",
        choices=WORKLOADS,
        section="agent",
        embedded="agent",
        general="agent",
    ),
    LoadOption(
        "--agent-mode",
        "agent: forced (a named tool call on all but the last call of a turn) or "
        "picoclaw (tool_choice auto, following the model)",
        _AGENT.mode,
        choices=AGENT_MODES,
        section="agent",
    ),
    LoadOption(
        "--calls-per-turn",
        "agent: LLM calls per user message (PicoClaw allows up to 50)",
        _AGENT.calls_per_turn,
        argtypes.integer(0, 1000),
        section="agent",
    ),
    LoadOption(
        "--turns-per-session",
        "agent: user messages before a session starts afresh",
        _AGENT.turns_per_session,
        argtypes.integer(1, 100_000),
        section="agent",
    ),
    LoadOption(
        "--think-time",
        "agent: seconds a user waits between turns",
        _AGENT.think_time_s,
        argtypes.duration,
        key="think_time_s",
        section="agent",
        embedded=1.0,
    ),
    LoadOption(
        "--tool-result-chars",
        "agent: size of each synthetic tool result fed back",
        _AGENT.tool_result_chars,
        argtypes.integer(0, 10_000_000),
        section="agent",
    ),
    LoadOption(
        "--user-message-chars",
        "agent: size of each user message",
        _AGENT.user_message_chars,
        int,
        sweep=False,
    ),
    LoadOption(
        "--turn-timeout",
        "agent: a turn longer than this counts as timed out (PicoClaw's "
        "request_timeout, 120 s by default)",
        _AGENT.turn_timeout_s,
        argtypes.duration,
        key="turn_timeout_s",
        section="agent",
    ),
)

SWEEP_OPTIONS: tuple[LoadOption, ...] = tuple(o for o in OPTIONS if o.sweep)
BY_KEY: dict[str, LoadOption] = {o.sweep_key: o for o in SWEEP_OPTIONS}


def add_locust_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option on a Locust (configargparse) parser, each also read from its env var."""
    for o in OPTIONS:
        kw: dict[str, object] = {"default": o.default, "help": o.help, "env_var": o.env}
        if o.parse is not None:
            kw["type"] = o.parse
        if o.choices is not None:
            kw["choices"] = list(o.choices)
        if o.secret:
            kw["is_secret"] = True
        parser.add_argument(o.flag, **kw)  # type: ignore[arg-type]


def add_sweep_arguments(
    group: argparse._ArgumentGroup, section: Section, *, presets: bool = False
) -> None:
    """The options the sweep takes, of one help section. With `presets` (acceptance) an
    option that has a preset defaults to None, filled by `fill_presets` for the target."""
    for o in SWEEP_OPTIONS:
        if o.section != section:
            continue
        help_text = o.sweep_help or o.help
        if o.sweep_switch:
            group.add_argument(o.sweep_switch, action="store_true", help=help_text)
            continue
        has_preset = not (isinstance(o.embedded, _Unset) and isinstance(o.general, _Unset))
        default = None if presets and has_preset else o.sweep_value_default()
        if o.choices is not None:
            group.add_argument(o.flag, choices=o.choices, default=default, help=help_text)
        elif o.parse is not None:
            group.add_argument(o.flag, type=o.parse, default=default, help=help_text)
        else:
            group.add_argument(o.flag, default=default, help=help_text)


def fill_presets(args: argparse.Namespace, target: Target) -> None:
    """Acceptance: each preset option the user left out takes the target's preset (else the
    sweep's default)."""
    for o in SWEEP_OPTIONS:
        if o.sweep_switch or getattr(args, o.sweep_dest, None) is not None:
            continue
        preset = o.preset(target)
        setattr(
            args, o.sweep_dest, o.sweep_value_default() if isinstance(preset, _Unset) else preset
        )


def sweep_values(args: argparse.Namespace) -> dict[str, LoadValue]:
    """The sweep's load values from its parsed flags, keyed as in sweep.json."""
    values: dict[str, LoadValue] = {}
    for o in SWEEP_OPTIONS:
        given = getattr(args, o.sweep_dest)
        if o.sweep_switch:
            values[o.sweep_key] = not given
        else:
            values[o.sweep_key] = o.sweep_value_default() if given is None else given
    return values


def sweep_defaults(**given: LoadValue) -> dict[str, LoadValue]:
    """The sweep's load values: its defaults, with `given` (keys as in sweep.json) instead."""
    unknown = set(given) - set(BY_KEY)
    if unknown:
        raise TypeError(f"not a sweep load option: {', '.join(sorted(unknown))}")
    return {o.sweep_key: given.get(o.sweep_key, o.sweep_value_default()) for o in SWEEP_OPTIONS}


def from_saved(data: Mapping[str, object]) -> dict[str, LoadValue]:
    """The load values of a saved sweep.json config (a key it lacks takes the default)."""
    values = sweep_defaults()
    for key in values:
        value = data.get(key, values[key])
        if value is None or isinstance(value, str | int | float | bool):
            values[key] = value
    return values


def locust_args(values: Mapping[str, LoadValue]) -> list[str]:
    """The Locust command line's load options for the sweep's values (the agent section's
    only for the agent workload: Locust's defaults are the chat workload's)."""
    agent = values.get("workload") == "agent"
    args: list[str] = []
    for o in SWEEP_OPTIONS:
        value = values[o.sweep_key]
        if o.forward and value is not None and (agent or o.section != "agent"):
            args += [o.flag, o.locust_arg(value)]
    return args
