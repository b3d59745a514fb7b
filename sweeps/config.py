"""What a sweep is asked to do: server settings x load steps, and how to run them.

A setting is one (max-num-seqs, tensor-parallel-size) pair; a load step one concurrency
(closed loop) or one (request rate, concurrency cap) pair (open loop). Ids follow run_layout:
setting `s8-tp1` (`sdefault-tp1` when vLLM's default max-num-seqs is kept, `external` for a
server the sweep does not start), step `s8-tp1-c32` or `s8-tp1-r4-c32`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loadtests.agent_conversation import AgentMode, AgentShape
from loadtests.arrivals import LoadMode
from loadtests.options import Workload
from loadtests.request_builder import Endpoint, UsageStats
from picoclaw_vllm.redact import redact
from sweeps.step_figures import GoodputSlo

LaunchKind = Literal["local", "docker", "external"]
LAUNCH_KINDS: tuple[LaunchKind, ...] = ("local", "docker", "external")


def _num(value: float) -> str:
    return f"{value:g}"


_AGENT = AgentShape()


@dataclass(frozen=True)
class LoadStep:
    mode: LoadMode
    concurrency: int
    rate: float | None = None

    @property
    def id_part(self) -> str:
        if self.mode == "rate" and self.rate is not None:
            return f"r{_num(self.rate)}-c{self.concurrency}"
        return f"c{self.concurrency}"


@dataclass(frozen=True)
class SettingPlan:
    setting_id: str
    max_num_seqs: int | None
    tensor_parallel_size: int
    steps: tuple[tuple[str, LoadStep], ...]  # (step_id, step)


@dataclass(frozen=True)
class SweepConfig:
    """Everything `run_sweep` needs. Only `out` is required.

    Server side: `launch` ("local": `python -m vllm.entrypoints.openai.api_server` from
    `python`, by default the embedded CPU vLLM with the tiny model when `model` is None;
    "docker"; "external": the server at `api_base`, only load steps run),
    `max_num_seqs` x `tensor_parallel_sizes` (None = vLLM's default), `max_model_len`,
    `gpu_memory_utilization`, `dtype`, `extra_vllm_args`, `ready_timeout_s`.
    Load: `concurrency` (closed loop) or `rates` (open loop, Poisson with `burstiness`; each
    concurrency is then a cap), `duration_s` measured after `warmup_s`, `prompt_tokens`,
    `output_tokens` (ignore_eos), `endpoint`, `stream`, `usage_stats` (request_builder),
    `workload` "chat" (independent prompts) or "agent" (PicoClaw sessions: `agent_mode`,
    `calls_per_turn`, `turns_per_session`, `think_time_s`, `tool_result_chars`,
    `turn_timeout_s`; loadtests.agent_conversation; each concurrency is a number of sessions),
    `prompt_file` (else `prompt_pool`
    synthetic prompts per worker, made once per sweep), `seed`, `workers` (0 = one Locust
    process, N = a master and N local workers), `slo` (goodput), `stop_timeout_s` (how long
    Locust lets requests in flight finish when a step ends), `metrics_interval_s` (how often
    vLLM's /metrics gauges are sampled during a step).
    `api_key` travels to vLLM and Locust in VLLM_API_KEY only and is never written.
    """

    out: Path
    model: str | None = None
    served_model_name: str | None = None
    launch: LaunchKind = "local"
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    python: str | None = None
    docker_image: str = "vllm/vllm-openai:latest"
    max_num_seqs: tuple[int | None, ...] = (None,)
    tensor_parallel_sizes: tuple[int, ...] = (1,)
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    dtype: str | None = None
    extra_vllm_args: tuple[str, ...] = ()
    ready_timeout_s: float = 600.0
    concurrency: tuple[int, ...] = (1,)
    rates: tuple[float, ...] = ()
    burstiness: float = 1.0
    duration_s: float = 30.0
    warmup_s: float = 0.0
    prompt_tokens: int = 256
    output_tokens: int = 128
    endpoint: Endpoint = "chat"
    stream: bool = True
    usage_stats: UsageStats = "final"
    prompt_file: Path | None = None
    prompt_pool: int = 16
    seed: int = 0
    workers: int = 0
    slo: GoodputSlo = field(default_factory=GoodputSlo)
    stop_timeout_s: float = 120.0
    metrics_interval_s: float = 0.5
    workload: Workload = "chat"
    agent_mode: AgentMode = _AGENT.mode
    calls_per_turn: int = _AGENT.calls_per_turn
    turns_per_session: int = _AGENT.turns_per_session
    think_time_s: float = _AGENT.think_time_s
    tool_result_chars: int = _AGENT.tool_result_chars
    turn_timeout_s: float = _AGENT.turn_timeout_s

    def loads(self) -> list[LoadStep]:
        if self.rates:
            return [LoadStep("rate", c, r) for r in self.rates for c in self.concurrency]
        return [LoadStep("concurrency", c) for c in self.concurrency]

    def settings(self) -> list[SettingPlan]:
        pairs: list[tuple[int | None, int]] = (
            [(None, 1)]
            if self.launch == "external"
            else [(s, tp) for tp in self.tensor_parallel_sizes for s in self.max_num_seqs]
        )
        plans = []
        for seqs, tp in pairs:
            sid = "external" if self.launch == "external" else f"s{seqs or 'default'}-tp{tp}"
            steps = tuple((f"{sid}-{load.id_part}", load) for load in self.loads())
            plans.append(SettingPlan(sid, seqs, tp, steps))
        return plans

    def to_json(self) -> dict[str, Any]:
        """The config as JSON, without the API key."""
        data = dataclasses.asdict(self)
        data.pop("api_key")
        if self.api_base:  # credentials in the URL are never written (given again on --resume)
            data["api_base"] = redact(self.api_base)
        data["out"] = str(self.out)
        data["prompt_file"] = str(self.prompt_file) if self.prompt_file else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, api_key: str | None = None) -> SweepConfig:
        d = dict(data)
        d["out"] = Path(d["out"])
        d["prompt_file"] = Path(d["prompt_file"]) if d.get("prompt_file") else None
        d["slo"] = GoodputSlo(**d.get("slo", {}))
        for key in (
            "max_num_seqs",
            "tensor_parallel_sizes",
            "extra_vllm_args",
            "concurrency",
            "rates",
        ):
            d[key] = tuple(d.get(key, ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known}, api_key=api_key)
