"""Where a Locust process's raw records go, standalone or distributed.

Standalone, records are appended to the records file as each request ends. With
`--master`/`--worker` (or `--processes`), workers batch their records and send them to the
master over Locust's own connection (`send_message`), at least every second and once more
when they stop; the master writes every record to the one records file. Messages from a
worker arrive in order and a worker sends its last batch before it reports that it stopped,
which the master waits for before its own `test_stop`: no record is lost when a run ends.
This also works for workers on other hosts, unlike files in a shared directory.
"""

from __future__ import annotations

from typing import Any, Protocol

from loadtests.records import RecordWriter, RequestRecord

RECORDS_MESSAGE = "picoclaw_vllm_records"
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
