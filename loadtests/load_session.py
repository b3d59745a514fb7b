"""Everything one Locust process needs to send requests and record them (no Locust in here).

`chat.py` makes one `LoadSession` per process, calls `prepare` when the test starts, and for
each request `next_request`, then `record` with the measured outcome.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from dataclasses import dataclass

import httpx

from loadtests.agent_conversation import Conversation
from loadtests.api_key import resolve_api_key
from loadtests.arrivals import ArrivalSchedule, WarmupClock
from loadtests.options import LoadOptions
from loadtests.prompts import (
    PromptPool,
    ServerTokenizer,
    load_prompt_file,
    synthetic_prompts,
)
from loadtests.record_sinks import RecordSink
from loadtests.records import RequestRecord
from loadtests.request_builder import RequestSpec, api_path, encoded_body, headers
from loadtests.request_quota import RequestQuota
from picoclaw_vllm import urls
from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.redact import register_secret
from picoclaw_vllm.vllm_api.measurement import RequestOutcome


class LoadSetupError(RuntimeError):
    """The load test cannot start (no server, no model, bad prompt source)."""


def first_model(client: httpx.Client, root: str, api_key: str | None) -> str:
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        r = client.get(f"{root}/v1/models", headers=auth)
    except httpx.HTTPError as e:
        raise LoadSetupError(f"cannot reach {root}/v1/models: {type(e).__name__}: {e}") from e
    if r.status_code != 200:
        raise LoadSetupError(f"{root}/v1/models answered HTTP {r.status_code}: {r.text[:200]}")
    models = r.json().get("data") or []
    if not models:
        raise LoadSetupError(f"{root}/v1/models lists no model")
    return str(models[0]["id"])


@dataclass(frozen=True)
class PreparedRequest:
    path: str
    body: str
    headers: dict[str, str]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LoadSession:
    def __init__(self, options: LoadOptions, sink: RecordSink, *, rate_share: float = 1.0) -> None:
        self.options = options
        self.sink = sink
        self.rate_share = rate_share
        self.worker = worker_id()
        self.warmup = WarmupClock(options.warmup_s)
        self.seed_offset = 0
        self.schedule: ArrivalSchedule | None = None
        self.stopping = False
        self.quota = RequestQuota()
        self._ids = itertools.count(1)
        self._pool: PromptPool | None = None
        self._spec: RequestSpec | None = None
        self._path = ""
        self._headers: dict[str, str] = {}
        self._picoclaw: picoclaw_request.RequestShape | None = None
        self._sessions = itertools.count(1)

    @property
    def spec(self) -> RequestSpec:
        if self._spec is None:
            raise LoadSetupError("the load session was not prepared")
        return self._spec

    def prepare(self, host: str, *, seed_offset: int = 0) -> None:
        """Start the warm-up, find the model and key, make the prompts, set up arrivals.

        The warm-up starts first so that it absorbs this preparation (a few /tokenize calls
        per prompt), which Locust's run time (-t) counts too.
        """
        self.warmup.start()
        o = self.options
        api_key = resolve_api_key(o.api_key)
        register_secret(api_key)
        root = urls.without_v1(host)
        with httpx.Client(timeout=30.0) as client:
            model = o.model or first_model(client, root, api_key)
            self._spec = RequestSpec(
                model=model,
                endpoint=o.endpoint,
                stream=o.stream,
                output_tokens=o.output_tokens,
                usage_stats=o.usage_stats,
            )
            try:
                if o.workload == "agent":
                    prompts = []
                elif o.prompt_file:
                    prompts = load_prompt_file(o.prompt_file)
                    workers = round(1 / self.rate_share)
                    if 1 < workers <= len(prompts):  # each worker its own share of the file
                        prompts = prompts[seed_offset % workers :: workers]
                else:
                    tokenizer = ServerTokenizer(root, model, o.endpoint, client)
                    prompts = list(
                        synthetic_prompts(
                            tokenizer, o.prompt_tokens, o.prompt_pool, o.seed + seed_offset
                        )
                    )
            except (httpx.HTTPError, ValueError, OSError) as e:
                raise LoadSetupError(f"cannot make prompts: {type(e).__name__}: {e}") from e
        if o.workload == "agent":
            self._picoclaw = picoclaw_request.RequestShape(
                model=model, api_key=api_key, max_tokens=o.agent.max_tokens
            )
            self._path = api_path(host, "chat")
            self._headers = picoclaw_request.headers(self._picoclaw, stream=o.stream)
            self._headers["Accept-Encoding"] = "identity"
            self.seed_offset = seed_offset
            return
        self._pool = PromptPool(prompts, o.seed + seed_offset)
        self._path = api_path(host, o.endpoint)
        self._headers = headers(api_key, stream=o.stream)
        if o.load_mode == "rate" and o.rate:
            self.schedule = ArrivalSchedule(
                o.rate * self.rate_share, burstiness=o.burstiness, seed=o.seed + seed_offset
            )

    def wait_time(self) -> float:
        if self.options.workload == "agent":
            return self.options.agent.think_time_s
        return self.schedule.wait_for_next() if self.schedule else 0.0

    def new_conversation(self) -> Conversation:
        """A fresh PicoClaw session: the shared system prompt and tools, an empty history."""
        if self._picoclaw is None:
            raise LoadSetupError("the agent session was not prepared")
        n = next(self._sessions)
        return Conversation(
            self.options.agent,
            self._picoclaw,
            session_id=f"{self.worker}-s{n}",
            seed=self.options.seed + 1000 * self.seed_offset + n,
            stream=self.options.stream,
        )

    def agent_request(self, body: bytes) -> PreparedRequest:
        return PreparedRequest(self._path, body.decode(), self._headers)

    def next_request(self) -> PreparedRequest:
        if self._pool is None:
            raise LoadSetupError("the load session was not prepared")
        return PreparedRequest(
            self._path, encoded_body(self.spec, self._pool.take()), self._headers
        )

    def record(
        self,
        outcome: RequestOutcome,
        *,
        start_unix: float,
        start: float,
        end: float,
        status: int,
        **agent: object,
    ) -> RequestRecord:
        """The record of one request, handed to the sink; `agent` carries the agent
        workload's fields (session_id, turn_index, call_index, turn_latency_ms, ...)."""
        record = RequestRecord(
            **vars(outcome),
            **agent,  # type: ignore[arg-type]
            step_id=self.options.step_id,
            request_id=f"{self.worker}-{next(self._ids)}",
            worker=self.worker,
            start_unix=start_unix,
            status_code=status or None,
            warmup=self.warmup.in_warmup(at=time.monotonic() - (end - start)),
            end_unix=start_unix + (end - start),
        )
        self.sink.add(record)
        return record
