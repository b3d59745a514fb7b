"""The facts of one diagnosis: each probe runs at most once, lazily, and is shared.

Thread-safe: the runner warms independent probes concurrently; checks then read them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from diagnostics.deadline import Deadline, DeadlineExceeded, NotJudged, default_budget
from diagnostics.options import DiagnoseOptions
from diagnostics.probes import host_load, kernel_log, processes
from diagnostics.probes.http import HttpAnswer, ServerClient, StreamTiming
from diagnostics.server_runs import ServerLog, read_server_log
from picoclaw_vllm import hub, jsonfile, urls
from picoclaw_vllm.errors import UsageError
from picoclaw_vllm.leftovers import Leftover, find_leftovers
from picoclaw_vllm.nvml import GpuSnapshot, NvmlReader
from picoclaw_vllm.picoclaw import config as picoclaw_config
from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.picoclaw.config import ConfigProblem, PicoclawConfig
from picoclaw_vllm.picoclaw.request import RequestShape
from picoclaw_vllm.redact import register_secret
from picoclaw_vllm.vllm_api import metrics

T = TypeVar("T")
# /metrics whole: 55 KB on the one-engine CPU vLLM, its queue-time histogram past 35 KB
METRICS_MAX_CHARS = 4_000_000
# PicoClaw's probes lower its max_tokens to this (the context check judges the real one).
PROBE_MAX_TOKENS = 1
# /tokenize answers every token id: about 6 characters each
TOKENIZE_MAX_CHARS = 2_000_000
FORCED_CALL_TOOLS = ("read_file", "list_dir", "exec")
# The user message of the tool_choice "auto" probe: a working agent model answers it with a call.
TOOL_TASK_MESSAGE = (
    "Use the read_file tool to read notes/todo.md in my workspace, then tell me what is on it."
)
# a model list is small, but a server with many adapters can list megabytes of valid JSON
MODELS_MAX_CHARS = 32_000_000
# A busy API server on 2 CPU cores took up to 10 s to answer /metrics: evidence scrapes are
# bounded by the deadline, not by --timeout.
METRICS_TIMEOUT_S = 30.0
# A probe that waits on another thread's probe gives up this long after the deadline.
GRACE_S = 0.5
# failures that mean "no answer in time" (see probes.http): nothing about the server's
# answer can be judged from them, only its speed (the latency check, slow_responses)
UNANSWERED = frozenset({"no_answer", "deadline", "stream_timeout", "connect_timeout"})


# A local probe (process scan, kernel log, NVML, the Hub) gets at most this share of the
# budget: a starved host once spent 20 s of it scanning processes for leftovers.
LOCAL_PROBE_SHARE = 0.15


def unanswered(answer: HttpAnswer) -> bool:
    return answer.failure is not None and answer.failure.kind in UNANSWERED


@dataclass(frozen=True)
class Target:
    api_base: str
    model: str | None  # the name PicoClaw sends, after its provider-prefix handling
    model_configured: str | None
    provider: str | None
    api_key: str | None = field(repr=False)
    key_source: str  # --api-key, VLLM_API_KEY, config or none
    max_tokens: int
    request_timeout_s: float
    config: PicoclawConfig

    def request_shape(self) -> RequestShape:
        """PicoClaw's request settings for this target (the config's, the key in use)."""
        c = self.config
        return RequestShape(
            model=self.model or "",
            max_tokens=self.max_tokens,
            max_tokens_field=c.max_tokens_field,
            temperature=c.temperature,
            extra_body=c.extra_body,
            custom_headers=c.custom_headers,
            user_agent=c.user_agent,
            api_key=self.api_key,
            streaming=bool(c.streaming),
        )


@dataclass(frozen=True)
class ServedModel:
    id: str
    root: str | None
    max_model_len: int | None


@dataclass(frozen=True)
class PromptSize:
    """PicoClaw's first request measured with the server's tokenizer (POST /tokenize)."""

    tokens: int | None  # system prompt + tool schemas + one user message, as templated
    iteration_tokens: int | None  # what one agent iteration (tool call + result) adds
    max_model_len: int | None
    source: str  # "/tokenize" or why it could not be measured
    answer: HttpAnswer | None = None


@dataclass
class LatencySample:
    streams: list[StreamTiming]
    metrics_samples: list[metrics.Metrics]
    rtt_s: float | None
    not_sent: int = 0  # probes the deadline left no time for


def build_target(options: DiagnoseOptions, config: PicoclawConfig) -> Target:
    key, source = picoclaw_config.api_key(options.api_key, config)
    register_secret(key)
    model, provider, sent = config.model_configured, config.provider, config.model_sent
    if options.model:
        model = options.model
        provider, sent = picoclaw_config.split_provider(options.model)
        provider = provider or "vllm"
    return Target(
        api_base=(options.api_base or config.api_base).rstrip("/"),
        model=sent,
        model_configured=model,
        provider=provider,
        api_key=key,
        key_source=source,
        max_tokens=config.max_tokens,
        request_timeout_s=config.request_timeout_s,
        config=config,
    )


def _missing_reason(path: Path) -> str:
    try:
        path.stat()
    except OSError as e:
        return jsonfile.os_reason(e)
    return "no such file"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _length(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class Facts:
    def __init__(self, options: DiagnoseOptions) -> None:
        self.options = options
        self._values: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._client: ServerClient | None = None
        self._local_runs: dict[str, tuple[threading.Thread, list[Any], float]] = {}
        budget = options.deadline_s or default_budget(options.timeout_s)
        self.deadline = Deadline(budget, start=options.started_at)

    @classmethod
    def seeded(cls, options: DiagnoseOptions, **known: Any) -> Facts:
        """Facts whose named probes are already answered (models=HttpAnswer(...),
        latency=LatencySample(...), ...): those are never run. For tests and replays."""
        unknown = sorted(name for name in known if not callable(getattr(cls, name, None)))
        if unknown:
            raise ValueError(f"Facts has no probe named {', '.join(unknown)}")
        facts = cls(options)
        facts._values.update(known)
        return facts

    def _once(self, name: str, compute: Callable[[], T]) -> T:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        # another thread computing it is itself bounded by the deadline; never wait past it
        if not lock.acquire(timeout=max(0.0, self.deadline.remaining() + GRACE_S)):
            raise DeadlineExceeded(f"{name} did not finish before the deadline")
        try:
            if name not in self._values:
                self._values[name] = compute()
            value: T = self._values[name]
            return value
        finally:
            lock.release()

    def _local(self, name: str, what: str, compute: Callable[[], T]) -> T:
        """A local probe, run once in its own daemon thread and waited for at most
        LOCAL_PROBE_SHARE of the budget from its start; past that, NotJudged."""
        if name in self._values:
            value: T = self._values[name]
            return value
        with self._guard:
            if name not in self._local_runs:
                box: list[Any] = []

                def work() -> None:
                    try:
                        box.append((True, compute()))
                    except Exception as e:  # handed to the caller below
                        box.append((False, e))

                thread = threading.Thread(target=work, daemon=True)
                self._local_runs[name] = (thread, box, time.monotonic())
                thread.start()
            thread, box, started = self._local_runs[name]
        cap = LOCAL_PROBE_SHARE * self.deadline.budget_s
        wait = min(started + cap - time.monotonic(), self.deadline.remaining())
        thread.join(timeout=max(0.0, wait))
        if not box:
            raise NotJudged(
                f"not judged: {what} took more than {cap:.1f} s ({LOCAL_PROBE_SHARE:.0%} of the "
                f"{self.deadline.budget_s:g} s budget; see host_starved)"
            )
        ok, result = box[0]
        if not ok:
            raise result
        self._values[name] = result
        return result  # type: ignore[no-any-return]

    def maybe(self, probe: Callable[[], T]) -> T | None:
        """A probe's value, or None when it was cut off (for checks it only adds to)."""
        try:
            return probe()
        except (NotJudged, DeadlineExceeded):
            return None

    def answered(self, answer: HttpAnswer, what: str = "the request") -> HttpAnswer:
        """`answer`, when one came; else raises NotJudged, which the runner reports as
        "not judged: no answer within N s (see slow_responses)" for the check that asked."""
        if unanswered(answer):
            waited = max(answer.elapsed_s, 0.0)
            raise NotJudged(
                f"not judged: no answer to {what} within {waited:.1f} s "
                f"(--timeout {self.options.timeout_s:g}; see slow_responses)"
            )
        return answer

    def close(self) -> None:
        """Stop every request still in flight and the client; waits for nothing."""
        self.deadline.cancel()
        if self._client is not None:
            self._client.close()

    # --- configuration -------------------------------------------------------------------
    def config(self) -> PicoclawConfig | ConfigProblem:
        def load() -> PicoclawConfig | ConfigProblem:
            path = self.options.config_path
            if path is not None and not path.exists():
                raise UsageError(f"--config {path}: {_missing_reason(path)}")
            return picoclaw_config.load(path)

        return self._once("config", load)

    def target(self) -> Target:
        def build() -> Target:
            config = self.config()
            if isinstance(config, ConfigProblem):
                config = picoclaw_config.PicoclawConfig(path=None, format="none")
            return build_target(self.options, config)

        return self._once("target", build)

    @property
    def client(self) -> ServerClient:
        def make() -> ServerClient:
            t = self.target()
            return ServerClient(
                t.api_base, t.api_key, self.options.timeout_s, self.options.transport,
                self.deadline,
            )  # fmt: skip

        self._client = self._once("client", make)
        return self._client

    # --- server answers ------------------------------------------------------------------
    def health(self) -> HttpAnswer:
        return self._once("health", lambda: self.client.get("/health", root=True))

    def version(self) -> HttpAnswer:
        return self._once("version", lambda: self.client.get("/version", root=True))

    def models(self) -> HttpAnswer:
        """GET {api_base}/models, as PicoClaw's base would reach it."""
        return self._once("models", lambda: self.client.get("/models", max_chars=MODELS_MAX_CHARS))

    def models_v1(self) -> HttpAnswer:
        """GET {root}/v1/models: where the models are when api_base lacks /v1."""
        if urls.ends_in_v1(self.client.api_base):
            return self.models()
        return self._once(
            "models_v1",
            lambda: self.client.request(
                "GET", urls.join(self.client.root, "/v1/models"), max_chars=MODELS_MAX_CHARS
            ),
        )

    def served(self) -> list[ServedModel]:
        def parse() -> list[ServedModel]:
            for answer in (self.models(), self.models_v1()):
                data = answer.json() if answer.ok else None
                if isinstance(data, dict) and isinstance(data.get("data"), list):
                    return [
                        ServedModel(m["id"], _text(m.get("root")), _length(m.get("max_model_len")))
                        for m in data["data"]
                        if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]
                    ]
            return []

        return self._once("served", parse)

    def metrics_before(self) -> metrics.Metrics | None:
        return self._once("metrics_before", self._scrape)

    def metrics_after(self) -> metrics.Metrics | None:
        """/metrics once the first probes are done: the queue they met, seen a second time."""
        return self._once("metrics_after", self._scrape)

    def _scrape(self) -> metrics.Metrics | None:
        answer = self.client.request(
            "GET", self.client.url("/metrics", root=True), max_chars=METRICS_MAX_CHARS,
            timeout_s=max(self.options.timeout_s, METRICS_TIMEOUT_S),
        )  # fmt: skip
        return metrics.parse(answer.body) if answer.ok else None

    def picoclaw_request(
        self,
        *,
        stream: bool,
        max_tokens: int | None = PROBE_MAX_TOKENS,
        messages: list[dict[str, Any]] | None = None,
        **kw: Any,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Body and headers of PicoClaw's first request of a session (its builder, its config),
        or of the call with the `messages` given."""
        shape = self.target().request_shape()
        messages = picoclaw_request.first_messages() if messages is None else messages
        body = picoclaw_request.body(shape, messages, stream=stream, max_tokens=max_tokens, **kw)
        return body, picoclaw_request.headers(shape, stream=stream)

    def chat(self) -> HttpAnswer:
        """PicoClaw's request, non-streaming: the one full-size prefill of the diagnosis."""
        return self._once("chat", lambda: self.client.chat(*self.picoclaw_request(stream=False)))

    def chat_again(self) -> HttpAnswer:
        """PicoClaw's request a second time, after the first two: on a server with prefix
        caching, its whole system prompt and tool schemas come from the cache."""
        return self._once(
            "chat_again", lambda: self.client.chat(*self.picoclaw_request(stream=False))
        )

    def metrics_prefix(self) -> metrics.Metrics | None:
        """/metrics right after chat_again: the prefix-cache counters that request moved."""
        return self._once("metrics_prefix", self._scrape)

    def chat_stream(self) -> StreamTiming:
        return self._once(
            "chat_stream", lambda: self.client.chat_stream(*self.picoclaw_request(stream=True))
        )

    def context_probe(self) -> HttpAnswer:
        """PicoClaw's request with its real max_tokens (only sent when it must fail), without
        tools so that vLLM's answer is about the length even where tools are rejected too."""
        return self._once(
            "context_probe",
            lambda: self.client.chat(
                *self.picoclaw_request(stream=False, max_tokens=None, tools=[])
            ),
        )

    def forced_tool(self) -> str:
        names = picoclaw_request.tool_names()
        return next((n for n in FORCED_CALL_TOOLS if n in names), names[0])

    def tool_call(self) -> HttpAnswer:
        """PicoClaw's request with one tool forced: the answer must be a parsed tool call."""
        choice = {"type": "function", "function": {"name": self.forced_tool()}}
        return self._once(
            "tool_call",
            lambda: self.client.chat(
                *self.picoclaw_request(
                    stream=False,
                    max_tokens=self.options.forced_call_max_tokens,
                    tool_choice=choice,
                )
            ),
        )

    def auto_call(self) -> HttpAnswer:
        """PicoClaw's request as it sends it (tool_choice "auto"), asking for a file read: the
        model's own call format meets the server's parser."""
        messages = picoclaw_request.first_messages(TOOL_TASK_MESSAGE)
        return self._once(
            "auto_call",
            lambda: self.client.chat(
                *self.picoclaw_request(
                    stream=False, max_tokens=self.options.auto_call_max_tokens, messages=messages
                )
            ),
        )

    def tool_result_turn(self) -> HttpAnswer:
        """PicoClaw's second call of a turn: its history with the assistant's tool call and the
        role "tool" result, by PicoClaw's rules (picoclaw.request.one_iteration)."""
        messages = picoclaw_request.first_messages()
        messages += picoclaw_request.one_iteration(self.forced_tool())
        return self._once(
            "tool_result_turn",
            lambda: self.client.chat(*self.picoclaw_request(stream=False, messages=messages)),
        )

    def prompt_size(self) -> PromptSize:
        return self._once("prompt_size", self._measure_prompt)

    def _tokenize(self, messages: list[dict[str, Any]]) -> HttpAnswer:
        body = {
            "model": self.target().model or "",
            "messages": messages,
            "tools": picoclaw_request.default_tools(),
            "add_generation_prompt": True,
        }
        return self.client.request(
            "POST", self.client.url("/tokenize", root=True), body=body, max_chars=TOKENIZE_MAX_CHARS
        )

    def _measure_prompt(self) -> PromptSize:
        messages = picoclaw_request.first_messages()
        first = self._tokenize(messages)
        data = first.json() if first.ok else None
        if not isinstance(data, dict) or not isinstance(data.get("count"), int):
            return PromptSize(None, None, None, f"/tokenize: {first.describe()}", first)
        longer = self._tokenize(messages + picoclaw_request.one_iteration(self.forced_tool()))
        more = longer.json() if longer.ok else None
        grown = more.get("count") if isinstance(more, dict) else None
        limit = data.get("max_model_len")
        return PromptSize(
            data["count"],
            grown - data["count"] if isinstance(grown, int) else None,
            limit if isinstance(limit, int) else None,
            "/tokenize",
            first,
        )

    def latency(self) -> LatencySample:
        return self._once("latency", self._measure_latency)

    def _measure_latency(self) -> LatencySample:
        samples: list[metrics.Metrics] = []
        before = self.metrics_before()
        if before is not None:
            samples.append(before)
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.25):
                scraped = self._scrape()
                if scraped is not None:
                    samples.append(scraped)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        streams, not_sent = [], 0
        try:
            body, headers = self.picoclaw_request(
                stream=True, max_tokens=self.options.probe_max_tokens, extra={"ignore_eos": True}
            )
            for _ in range(self.options.probe_requests):
                stream = self.client.chat_stream(body, headers)
                if _unsent(stream):
                    not_sent += 1
                else:
                    streams.append(stream)
        finally:
            stop.set()
        after = self._scrape()
        if after is not None:
            samples.append(after)
        rtts = []
        for _ in range(3):
            start = time.monotonic()
            if self.client.get("/health", root=True).status is not None:
                rtts.append(time.monotonic() - start)
        # the sampler may still be inside a scrape: its late sample is dropped, not awaited
        return LatencySample(streams, list(samples), min(rtts) if rtts else None, not_sent)

    # --- this machine --------------------------------------------------------------------
    def processes(self) -> list[processes.VllmProcess]:
        return self._local("processes", "the scan for local vLLM processes",
                           processes.local_vllm_processes)  # fmt: skip

    def leftovers(self) -> list[Leftover]:
        return self._local("leftovers", "the scan for leftover servers", find_leftovers)

    def gpus(self) -> GpuSnapshot:
        reader = self.options.gpu_reader or NvmlReader()
        return self._local("gpus", "reading the GPUs (NVML)", reader.read)

    def host_load(self) -> host_load.HostLoad:
        """This host's starvation, with the CPU share of the local vLLM serving api_base."""

        def measure() -> host_load.HostLoad:
            port = urlsplit(self.target().api_base).port or processes.DEFAULT_PORT
            local = self.maybe(self.processes) or []
            return host_load.measure([p.pid for p in local if p.port == port])

        return self._local("host_load", "measuring this host's load", measure)

    def hub_repo(self) -> str | None:
        """The Hugging Face repo the model comes from, when it names one."""
        served = {m.id: m for m in self.served()}
        model = self.target().model
        candidates = [served[model].root] if model in served else []
        configured = self.target().model_configured or ""
        candidates += [model, configured.removeprefix("vllm/")]
        for c in candidates:
            if c and hub.looks_like_repo_id(c):
                return c
        return None

    def hub(self) -> hub.HubAnswer | None:
        def ask() -> hub.HubAnswer | None:
            repo = self.hub_repo()
            return hub.check_repo(repo, min(self.options.timeout_s, 5.0)) if repo else None

        return self._local("hub", "asking the Hugging Face Hub", ask)

    def server_log(self) -> ServerLog | None:
        """The log given (--log/--docker/--journal, or log_text), read once."""

        def read() -> ServerLog | None:
            if self.options.server_log is not None:
                return self.options.server_log
            if self.options.log_text is None:
                return None
            source = self.options.log_source or "log"
            return read_server_log(text=self.options.log_text, source=source)

        return self._once("server_log", read)

    def kernel_log(self) -> kernel_log.KernelLog:
        commands = self.options.kernel_log_commands or kernel_log.COMMANDS
        return self._local(
            "kernel_log", "reading the kernel log", lambda: kernel_log.read_kernel_log(commands)
        )

    def model_dir(self) -> Path | None:
        if self.options.model_path is not None:
            return self.options.model_path
        served = {m.id: m for m in self.served()}
        model = self.target().model
        root = served[model].root if model in served else None
        return Path(root) if root and Path(root, "config.json").exists() else None


def _unsent(stream: StreamTiming) -> bool:
    failure = stream.answer.failure
    return failure is not None and failure.kind == "deadline" and stream.answer.elapsed_s == 0
