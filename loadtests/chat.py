"""Locust load profile for a vLLM OpenAI-compatible server, as PicoClaw uses it.

    locust -f loadtests/chat.py --host http://localhost:8000                # web UI
    locust -f loadtests/chat.py --host http://localhost:8000 --headless -u 8 -r 8 -t 60s
    locust -f loadtests/chat.py --host http://localhost:8000 --workload agent -u 8 ...

`--workload agent`: each Locust user is a PicoClaw session (loadtests.agent_conversation):
PicoClaw's own requests (tools, system prompt, a history that grows call by call), one task
per user message (a turn of several calls), think time between turns; each call is a record
with its turn and call index, and a turn's last call carries the whole turn's latency.

Options (`--prompt-tokens`, `--output-tokens`, `--load-mode rate --rate 4`, `--warmup`,
`--records PATH`, `--workload agent`, ...) come from loadtests.options. Locust answers `--help`
before it loads this file, so `locust -f loadtests/chat.py --help` does not list them: run
`picoclaw-vllm load-options` (or `python -m loadtests.options`), read loadtests/README.md, or
open the web UI, where they are under "Custom parameters".
Each request is measured the way `vllm bench serve` measures it
(picoclaw_vllm.vllm_api.measurement, shared with the doctor); Locust shows TTFT, TPOT and
E2EL next to the HTTP request, whose own response time is the whole answer (until its last
byte, not Locust's default of its response headers), but the trusted numbers are the raw
records written to `--records` (one JSON line per request; distributed workers send theirs to
the master, which writes them all).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

try:
    import loadtests  # noqa: F401
except ImportError:  # run as `locust -f loadtests/chat.py` without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtests import options as load_options
from loadtests.agent_conversation import AgentCall, Conversation
from loadtests.http_stream import read_answer
from loadtests.load_session import LoadSession, LoadSetupError
from loadtests.record_sinks import (
    FLUSH_INTERVAL_S,
    FileSink,
    ForwardingSink,
    WorkerFinish,
    answer_finish,
    receive_on_master,
)
from loadtests.records import RecordWriter, RequestRecord
from loadtests.request_quota import RequestQuota, share
from picoclaw_vllm.redact import redact
from picoclaw_vllm.vllm_api.measurement import RequestOutcome

log = logging.getLogger("picoclaw_vllm.load")
logging.getLogger("httpx").setLevel(logging.WARNING)
WORKERS_OPTION = "picoclaw_vllm_workers"
METRIC_TYPE = "METRIC"

session: LoadSession | None = None
_master_writer: RecordWriter | None = None
_worker_finish: WorkerFinish | None = None


def _add_options(parser: Any, **_kw: Any) -> None:
    load_options.add_arguments(parser)


def _on_init(environment: Any, **_kw: Any) -> None:
    global session, _master_writer, _worker_finish
    opts = load_options.LoadOptions.from_namespace(environment.parsed_options)
    ChatUser.network_timeout = opts.request_timeout_s  # read when each user's client is made
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _master_writer = RecordWriter(opts.records_path())
        receive_on_master(runner, _master_writer)
        _worker_finish = WorkerFinish(runner)
        log.info("records: %s", _master_writer.path)
        return
    if isinstance(runner, WorkerRunner):
        sink: Any = ForwardingSink(runner)
        gevent.spawn(_flush_forever, sink)
        answer_finish(runner, sink)
    else:
        writer = RecordWriter(opts.records_path())
        sink = FileSink(writer)
        log.info("records: %s", writer.path)
    session = LoadSession(opts, sink)


def _flush_forever(sink: ForwardingSink) -> None:
    while True:
        gevent.sleep(FLUSH_INTERVAL_S)
        sink.flush()


def _on_test_start(environment: Any, **_kw: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        vars(environment.parsed_options)[WORKERS_OPTION] = max(1, runner.worker_count)
        return
    if session is None:
        return
    ns = environment.parsed_options
    # Options may have come from the master just now: read them again.
    session.options = load_options.LoadOptions.from_namespace(ns)
    workers = int(getattr(ns, WORKERS_OPTION, 1) or 1)
    session.rate_share = 1.0 / workers
    session.stopping = False
    total = session.options.num_prompts
    session.quota = RequestQuota(share(total, workers, runner.worker_index) if total else None)
    started = time.monotonic()
    try:
        session.prepare(environment.host or "", seed_offset=max(0, runner.worker_index))
        log.info("%s ready in %.1f s", session.worker, time.monotonic() - started)
    except LoadSetupError as e:
        log.error("load test cannot start: %s", redact(str(e)))
        environment.process_exit_code = 2
        gevent.spawn(runner.quit)


def _on_stopping(environment: Any, **_kw: Any) -> None:
    if session is not None:
        session.stopping = True
    if _worker_finish is not None:
        timeout_s = float(environment.stop_timeout or 0) + 30.0
        if not _worker_finish.finish(timeout_s):
            log.error("not every worker sent its last records within %.0f s", timeout_s)


def _on_test_stop(**_kw: Any) -> None:
    if session is None:
        return
    session.sink.flush()
    if isinstance(session.sink, ForwardingSink):
        log.info("worker %s sent %d records to the master", session.worker, session.sink.sent)


def _on_quitting(**_kw: Any) -> None:
    # Locust fires `quitting` before it stops the users: records may still come, so the
    # files are only flushed here (every write is flushed anyway) and close with the process.
    if session is not None:
        session.sink.flush()


def _wait(user: ChatUser) -> float:
    return session.wait_time() if session is not None else 0.0


def _listen(hook: Any, handler: Callable[..., None]) -> None:
    hook.add_listener(handler)


_listen(events.init_command_line_parser, _add_options)
_listen(events.init, _on_init)
_listen(events.test_start, _on_test_start)
_listen(events.test_stopping, _on_stopping)
_listen(events.test_stop, _on_test_stop)
_listen(events.quitting, _on_quitting)


class ChatUser(FastHttpUser):
    wait_time = _wait
    # Long answers must not time out in the client (--request-timeout); one connection each.
    network_timeout = 600.0
    connection_timeout = 60.0
    concurrency = 1

    def on_start(self) -> None:
        if session is not None and session.schedule is not None:
            gevent.sleep(session.wait_time())

    conversation: Conversation | None = None

    @task
    def send(self) -> None:
        if session is None or session.stopping:
            return
        if session.options.workload == "agent":
            self.agent_turn(session)
            return
        if not session.quota.take():  # --num-prompts reached: this user is done
            raise StopUser()
        try:
            req = session.next_request()
            self.measure(session, req.path, req.body, req.headers)
        finally:
            self.finished(session)

    def finished(self, s: LoadSession) -> None:
        """One request done; the last one of --num-prompts ends the run (records written)."""
        if s.quota.release():
            log.info(
                "%s: the %d requests of --num-prompts are done", s.worker, s.options.num_prompts
            )
            gevent.spawn(self.environment.runner.quit)

    def agent_turn(self, s: LoadSession) -> None:
        """One user message: PicoClaw's calls until a text answer (or the cap), in order."""
        if self.conversation is None or self.conversation.finished:
            self.conversation = s.new_conversation()
        conv = self.conversation
        conv.start_turn()
        turn_start = time.perf_counter()
        while True:
            if not s.quota.take():  # --num-prompts reached: the turn is cut, the user done
                raise StopUser()
            call: AgentCall = conv.next_call()
            req = s.agent_request(call.body)
            try:
                outcome, start_unix, start, end, status = self.exchange(
                    s, req.path, req.body, req.headers, " (agent)",
                    forced=call.forced_tool is not None,
                )  # fmt: skip
            finally:
                ended = s.quota.release()
            goes_on = outcome.ok and conv.after_answer(call, outcome.answer_kind)
            last = not goes_on or s.stopping
            turn: dict[str, object] = {}
            if last:
                latency = (end - turn_start) * 1000.0
                turn = {
                    "turn_latency_ms": latency if outcome.ok else None,
                    "turn_timed_out": latency > s.options.agent.turn_timeout_s * 1000.0,
                }
            record = s.record(
                outcome, start_unix=start_unix, start=start, end=end, status=status,
                session_id=call.session_id, turn_index=call.turn_index,
                call_index=call.call_index, **turn,
            )  # fmt: skip
            self.fire_metrics(record)
            if ended:
                log.info(
                    "%s: the %d calls of --num-prompts are done", s.worker, s.options.num_prompts
                )
                gevent.spawn(self.environment.runner.quit)
            if last or ended:
                return

    def exchange(
        self,
        s: LoadSession,
        path: str,
        body: str,
        headers: dict[str, str],
        label: str,
        *,
        forced: bool = False,
    ) -> tuple[RequestOutcome, float, float, float, int]:
        start_unix = time.time()
        start = time.perf_counter()
        with self.client.request(
            "POST", path, data=body, headers=headers, stream=True,
            catch_response=True, name=f"POST {path}{label}",
        ) as resp:  # fmt: skip
            outcome, end = read_answer(resp, start, stream=s.options.stream, forced=forced)
            # Locust timed a streamed request until its headers came; its table and charts
            # show the whole answer instead, as the record's E2EL does
            resp.request_meta["response_time"] = (end - start) * 1000.0
            if outcome.ok:
                resp.success()
            else:
                resp.failure(outcome.error)
        return outcome, start_unix, start, end, int(resp.status_code or 0)

    def measure(self, s: LoadSession, path: str, body: str, headers: dict[str, str]) -> None:
        outcome, start_unix, start, end, status = self.exchange(s, path, body, headers, "")
        record = s.record(outcome, start_unix=start_unix, start=start, end=end, status=status)
        self.fire_metrics(record)

    def fire_metrics(self, record: RequestRecord) -> None:
        if record.ok and not record.warmup:
            for metric, value in (
                ("TTFT", record.ttft_ms),
                ("TPOT", record.tpot_ms),
                ("E2EL", record.e2el_ms),
            ):
                if value is not None:
                    self.environment.events.request.fire(
                        request_type=METRIC_TYPE, name=metric, response_time=value,
                        response_length=record.output_tokens or 0, exception=None, context={},
                    )  # fmt: skip
