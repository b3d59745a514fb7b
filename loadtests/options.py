"""The load test's own options, added to Locust's parser (each also read from an env var).

    locust -f loadtests/chat.py --host http://localhost:8000 --headless -u 8 -r 8 -t 60s \\
        --prompt-tokens 256 --output-tokens 128 --records runs/my.jsonl

Locust answers `--help` before it imports the locustfile, so `locust -f loadtests/chat.py
--help` does not list these. They are listed by `picoclaw-vllm load-options` (or
`python -m loadtests.options`), in loadtests/README.md, and in Locust's web UI under "Custom
parameters" (every option is added with Locust's default include_in_web_ui=True).

The API key option is masked in the web UI and never printed; without it the key comes from
VLLM_API_KEY or PicoClaw's config (see loadtests.api_key).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests import option_table
from loadtests.agent_conversation import AGENT_MODES, AgentMode, AgentShape
from loadtests.arrivals import LoadMode
from loadtests.option_table import WORKLOADS as WORKLOADS
from loadtests.option_table import Workload as Workload
from loadtests.request_builder import Endpoint, UsageStats

_AGENT = AgentShape()
_TABLE = {o.dest: o for o in option_table.OPTIONS}


def _default(dest: str) -> Any:
    return _TABLE[dest].default


@dataclass(frozen=True)
class LoadOptions:
    """The load profile's options as Locust parsed them (declared in loadtests.option_table,
    whose defaults these are; test_load_option_table checks the ones written out here)."""

    model: str | None = None
    api_key: str | None = None
    prompt_tokens: int = _default("prompt_tokens")
    output_tokens: int = _default("output_tokens")
    stream: bool = True
    usage_stats: UsageStats = "final"
    endpoint: Endpoint = "chat"
    prompt_file: Path | None = None
    prompt_pool: int = _default("prompt_pool")
    seed: int = _default("seed")
    records: Path | None = None
    warmup_s: float = _default("warmup")
    load_mode: LoadMode = "concurrency"
    rate: float | None = None
    burstiness: float = _default("burstiness")
    step_id: str = _default("step_id")
    request_timeout_s: float = _default("request_timeout")
    num_prompts: int = _default("num_prompts")  # > 0: the whole run stops after this many requests
    workload: Workload = "chat"
    agent: AgentShape = _AGENT

    @classmethod
    def from_namespace(cls, ns: Any) -> LoadOptions:
        mode: LoadMode = ns.load_mode
        if mode == "rate" and not ns.rate:
            raise ValueError("--load-mode rate needs --rate (requests per second)")
        return cls(
            model=ns.model or None,
            api_key=ns.api_key or None,
            prompt_tokens=int(ns.prompt_tokens),
            output_tokens=int(ns.output_tokens),
            stream=ns.stream == "on",
            usage_stats=ns.usage_stats,
            endpoint=ns.endpoint,
            prompt_file=Path(ns.prompt_file) if ns.prompt_file else None,
            prompt_pool=int(ns.prompt_pool),
            seed=int(ns.seed),
            records=Path(ns.records) if ns.records else None,
            warmup_s=float(ns.warmup),
            load_mode=mode,
            rate=float(ns.rate) if ns.rate else None,
            burstiness=float(ns.burstiness),
            step_id=ns.step_id,
            request_timeout_s=float(ns.request_timeout),
            num_prompts=_non_negative("--num-prompts", int(ns.num_prompts)),
            workload=ns.workload,
            agent=AgentShape(
                mode=_agent_mode(ns.agent_mode),
                calls_per_turn=int(ns.calls_per_turn),
                turns_per_session=int(ns.turns_per_session),
                think_time_s=float(ns.think_time),
                tool_result_chars=int(ns.tool_result_chars),
                user_message_chars=int(ns.user_message_chars),
                answer_tokens=int(ns.output_tokens),
                turn_timeout_s=float(ns.turn_timeout),
            ),
        )

    def records_path(self) -> Path:
        return (
            self.records or Path("runs") / f"locust-records-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
        )


def _non_negative(flag: str, value: int) -> int:
    if value < 0:
        raise ValueError(f"{flag} must be 0 (no limit) or more, not {value}")
    return value


def _agent_mode(value: str) -> AgentMode:
    for mode in AGENT_MODES:
        if value == mode:
            return mode
    raise ValueError(f"--agent-mode {value!r}: one of {', '.join(AGENT_MODES)}")


def add_arguments(parser: Any) -> None:
    """Add the options to a Locust (configargparse) parser; env vars are PICOCLAW_LOAD_*."""
    option_table.add_locust_arguments(parser)


class _Plain(argparse.ArgumentParser):
    """A plain argparse parser that takes Locust's extra keywords and remembers the env vars."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.env_vars: dict[str, str] = {}

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        env = kwargs.pop("env_var", None)
        kwargs.pop("is_secret", None)
        kwargs.pop("include_in_web_ui", None)
        action = super().add_argument(*args, **kwargs)
        if env:
            self.env_vars[action.dest] = env
        return action


def parse_for_test(argv: list[str]) -> LoadOptions:
    """Parse only these options (a plain argparse parser): for tests and tools."""
    parser = _Plain()
    add_arguments(parser)
    return LoadOptions.from_namespace(parser.parse_args(argv))


LOCUSTFILE = "loadtests/chat.py"


def describe_options() -> str:
    """Every option of the load profile with its default and env var, as a Locust user needs
    them (`locust -f loadtests/chat.py --help` cannot show them)."""
    lines = [
        f"Options of {LOCUSTFILE}, given to locust after Locust's own (-u, -r, -t, --host, "
        "--headless, ...).",
        "Locust's --help does not list them: it answers before it loads the locustfile. In the "
        "web UI they are under 'Custom parameters'. Each is also read from the environment "
        "variable shown.",
        "",
    ]
    for o in option_table.OPTIONS:
        kind = {int: "N", float: "X"}.get(type(o.default), "TEXT")
        value = "{" + ",".join(o.choices) + "}" if o.choices else kind
        shown = o.default != "" and not o.secret
        lines.append(f"  {o.flag} {value}")
        lines.append(f"      {o.help} [{f'default {o.default}; ' if shown else ''}env {o.env}]")
    lines += [
        "",
        "example:",
        f"  locust -f {LOCUSTFILE} --host http://localhost:8000 --headless -u 8 -r 8 -t 60s \\",
        "      --workload agent --calls-per-turn 4 --think-time 5 --records runs/agent.jsonl",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(describe_options(), end="")
