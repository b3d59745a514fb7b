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

from loadtests import option_table
from loadtests.arrivals import LoadMode
from loadtests.option_table import LoadValue, Workload
from loadtests.request_builder import Endpoint
from picoclaw_vllm.redact import redact
from sweeps.step_figures import GoodputSlo

LaunchKind = Literal["local", "docker", "external"]
LAUNCH_KINDS: tuple[LaunchKind, ...] = ("local", "docker", "external")


def _num(value: float) -> str:
    return f"{value:g}"


def repeat_id(step_id: str, repeat: int) -> str:
    """Repeat k >= 2 of a step is `<step_id>-x<k>` (the report relies on this)."""
    return step_id if repeat <= 1 else f"{step_id}-x{repeat}"


@dataclass(frozen=True)
class LoadStep:
    mode: LoadMode
    concurrency: int
    rate: float | None = None
    repeat: int = 1  # 1-based: the k-th run of the same step (--repeats)

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
    Load: `concurrency` (closed loop) or `rates` (open loop; each concurrency is then a
    cap), `duration_s` measured per step, `workers` (0 = one Locust process, N = a master and
    N local workers), `slo` (goodput), `stop_timeout_s` (how long Locust lets requests in
    flight finish when a step ends), `metrics_interval_s` (how often vLLM's /metrics gauges
    are sampled during a step). `load`: the load profile's options (loadtests.option_table:
    `warmup_s`, `prompt_tokens`, `output_tokens`, `workload` "chat" or "agent", the agent
    session's shape, ...; `option_table.sweep_defaults(**given)` makes one), passed to every
    Locust step; those the sweep itself reads have a property of that name.
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
    duration_s: float = 30.0
    workers: int = 0
    slo: GoodputSlo = field(default_factory=GoodputSlo)
    stop_timeout_s: float = 120.0
    metrics_interval_s: float = 0.5
    # step size and search (sweeps.sampling_options): a step in budget mode (precision or
    # min_requests/min_turns given) runs until sweeps.sample_budget says it has enough, for at
    # most max_step_time_s; `gated`: the (metric, quantile) pairs the gates judge
    repeats: int = 1
    precision: str | None = None
    min_requests: int = 0
    min_turns: int = 0
    max_step_time_s: float = 120.0
    gated: tuple[tuple[str, float], ...] = ()
    search: bool = False
    search_start: int = 1
    search_max: int = 64
    search_resolution: int = 1
    search_budget_s: float = 600.0
    # the load profile's options (loadtests.option_table), keyed as in sweep.json
    load: dict[str, LoadValue] = field(default_factory=option_table.sweep_defaults)

    def _value(self, key: str) -> LoadValue:
        return self.load[key]

    @property
    def warmup_s(self) -> float:
        return float(self._number("warmup_s"))

    @property
    def prompt_tokens(self) -> int:
        return int(self._number("prompt_tokens"))

    @property
    def output_tokens(self) -> int:
        return int(self._number("output_tokens"))

    @property
    def prompt_pool(self) -> int:
        return int(self._number("prompt_pool"))

    @property
    def seed(self) -> int:
        return int(self._number("seed"))

    @property
    def prompt_file(self) -> Path | None:
        value = self._value("prompt_file")
        return Path(str(value)) if value else None

    @property
    def endpoint(self) -> Endpoint:
        value = self._value("endpoint")
        return "completions" if value == "completions" else "chat"

    @property
    def workload(self) -> Workload:
        return "agent" if self._value("workload") == "agent" else "chat"

    def _number(self, key: str) -> float:
        value = self._value(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"sweep load option {key} is not a number: {value!r}")
        return value

    @property
    def budget_mode(self) -> bool:
        return self.precision is not None or self.min_requests > 0 or self.min_turns > 0

    @property
    def step_time_s(self) -> float:
        """The longest a step's measured part runs: its duration, or its maximum in budget mode."""
        return self.max_step_time_s if self.budget_mode else self.duration_s

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
            steps = (
                ()
                if self.search
                else tuple(
                    (repeat_id(f"{sid}-{load.id_part}", k), dataclasses.replace(load, repeat=k))
                    for load in self.loads()
                    for k in range(1, self.repeats + 1)
                )
            )
            plans.append(SettingPlan(sid, seqs, tp, steps))
        return plans

    def to_json(self) -> dict[str, Any]:
        """The config as JSON, without the API key."""
        data = dataclasses.asdict(self)
        data.pop("api_key")
        if self.api_base:  # credentials in the URL are never written (given again on --resume)
            data["api_base"] = redact(self.api_base)
        data["out"] = str(self.out)
        data.update(data.pop("load"))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, api_key: str | None = None) -> SweepConfig:
        d = dict(data)
        d["out"] = Path(d["out"])
        d["load"] = option_table.from_saved(d)
        d["slo"] = GoodputSlo(**d.get("slo", {}))
        for key in (
            "max_num_seqs",
            "tensor_parallel_sizes",
            "extra_vllm_args",
            "concurrency",
            "rates",
        ):
            d[key] = tuple(d.get(key, ()))
        d["gated"] = tuple((str(m), float(q)) for m, q in d.get("gated", ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known}, api_key=api_key)
