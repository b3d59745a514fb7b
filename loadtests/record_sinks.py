"""Where a Locust process's raw records go, standalone or distributed.

Standalone, records are appended to the records file as each request ends. With
`--master`/`--worker` (or `--processes`), workers batch their records and send them to the
master over Locust's own connection (`send_message`), at least every second and once more
when they stop; the master writes every record to the one records file. This also works for
workers on other hosts, unlike files in a shared directory.

Ending a run: Locust's master quits without waiting for its workers (`--run-time` calls
`quit()`, which sends no "stop" and sleeps 0.5 s), so the last batches of every worker would
be lost. When the master begins stopping it therefore asks each worker to finish
(FINISH_MESSAGE): the worker stops its users (in-flight requests end and are recorded, within
`--stop-timeout`), sends its last batch, then DONE_MESSAGE. Messages from one worker arrive in
order, so when the master has every DONE it has every record.
"""

from __future__ import annotations

from typing import Any, Protocol

import gevent
import gevent.event

from loadtests.records import RecordWriter, RequestRecord

RECORDS_MESSAGE = "picoclaw_vllm_records"
FINISH_MESSAGE = "picoclaw_vllm_finish"
DONE_MESSAGE = "picoclaw_vllm_done"
FLUSH_INTERVAL_S = 1.0


class RecordSink(Protocol):
    def add(self, record: RequestRecord) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class FileSink:
    def __init__(self, writer: RecordWriter) -> None:
        self.writer = writer

    def add(self, record: RequestRecord) -> None:
        self.writer.write(record)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.writer.close()


class ForwardingSink:
    """On a worker: batches records and sends them to the master."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self._batch: list[dict[str, Any]] = []
        self.sent = 0

    def add(self, record: RequestRecord) -> None:
        self._batch.append(record.to_dict())

    def flush(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self.runner.send_message(RECORDS_MESSAGE, batch)
            self.sent += len(batch)

    def close(self) -> None:
        self.flush()


def receive_on_master(runner: Any, writer: RecordWriter) -> None:
    """Register the master's handler that writes the records workers send."""

    def on_records(environment: Any, msg: Any, **_kw: Any) -> None:
        writer.write_many(msg.data)

    runner.register_message(RECORDS_MESSAGE, on_records)


class WorkerFinish:
    """The master's side of ending a run: ask every worker to finish, wait for their DONE."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.done: set[str] = set()
        self.expected: set[str] = set()
        self.all_done = gevent.event.Event()
        runner.register_message(DONE_MESSAGE, self._on_done)

    def _on_done(self, environment: Any, msg: Any, **_kw: Any) -> None:
        self.done.add(str(msg.node_id))
        if self.expected <= self.done:
            self.all_done.set()

    def finish(self, timeout_s: float) -> bool:
        """True when every connected worker sent its last records within timeout_s."""
        self.expected = {str(c.id) for c in self.runner.clients.all if c.state != "missing"}
        if not self.expected:
            return True
        self.done = set()
        self.all_done.clear()
        self.runner.send_message(FINISH_MESSAGE, None)
        return bool(self.all_done.wait(timeout=timeout_s))


def answer_finish(runner: Any, sink: ForwardingSink) -> None:
    """The worker's side: on FINISH stop the users, send the last batch, then DONE."""

    def finish() -> None:
        runner.stop()
        sink.flush()
        runner.send_message(DONE_MESSAGE, sink.sent)

    def on_finish(environment: Any, msg: Any, **_kw: Any) -> None:
        gevent.spawn(finish)

    runner.register_message(FINISH_MESSAGE, on_finish)
