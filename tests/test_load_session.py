"""The per-process load session and record sinks, without Locust or a server."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from loadtests.load_session import LoadSession
from loadtests.options import LoadOptions
from loadtests.record_sinks import RECORDS_MESSAGE, ForwardingSink, receive_on_master
from loadtests.records import RecordWriter, RequestRecord, read_records
from picoclaw_vllm.vllm_api.measurement import RequestOutcome


class ListSink:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        self.records.append(record)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class FakeRunner:
    """Delivers messages to the registered handler, as Locust does between nodes."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def register_message(self, msg_type: str, handler: Any) -> None:
        self.handlers[msg_type] = handler

    def send_message(self, msg_type: str, data: Any) -> None:
        self.handlers[msg_type](environment=None, msg=SimpleNamespace(data=data))


def test_records_carry_outcome_ids_and_warmup_flag() -> None:
    sink = ListSink()
    session = LoadSession(LoadOptions(step_id="s1-c2", warmup_s=3600.0), sink)
    session.warmup.start()
    ok = RequestOutcome(
        True, prompt_tokens=5, output_tokens=3, ttft_ms=10.0, e2el_ms=30.0, tpot_ms=10.0
    )
    first = session.record(ok, start_unix=1000.0, start=5.0, end=5.03, status=200)
    second = session.record(
        RequestOutcome(False, error="HTTP 500: x"),
        start_unix=1001.0,
        start=6.0,
        end=6.1,
        status=500,
    )
    assert sink.records == [first, second]
    assert first.step_id == "s1-c2" and first.warmup and first.ok
    assert first.end_unix == 1000.03 and first.output_tokens == 3
    assert second.error == "HTTP 500: x" and second.status_code == 500
    assert first.request_id != second.request_id and first.worker == second.worker


def test_no_warmup_means_nothing_flagged() -> None:
    sink = ListSink()
    session = LoadSession(LoadOptions(), sink)
    session.warmup.start()
    assert not session.record(
        RequestOutcome(True), start_unix=1.0, start=0.0, end=0.1, status=200
    ).warmup


def test_worker_records_reach_the_master_file(tmp_path: Path) -> None:
    runner = FakeRunner()
    writer = RecordWriter(tmp_path / "records.jsonl")
    receive_on_master(runner, writer)
    assert RECORDS_MESSAGE in runner.handlers
    sink = ForwardingSink(runner)
    for i in range(3):
        sink.add(
            RequestRecord(
                step_id="s",
                request_id=str(i),
                worker="w1",
                start_unix=float(i),
                ok=True,
                itl_ms=[1.0, 2.0],
            )
        )
    assert read_records(writer.path) == []  # batched until flushed
    sink.flush()
    sink.flush()  # nothing new: nothing sent
    sink.add(
        RequestRecord(
            step_id="s", request_id="3", worker="w1", start_unix=3.0, ok=False, error="boom"
        )
    )
    sink.close()
    writer.close()
    got = read_records(writer.path)
    assert [r.request_id for r in got] == ["0", "1", "2", "3"] and sink.sent == 4
    assert got[0].itl_ms == [1.0, 2.0] and got[3].error == "boom"


def test_workers_take_disjoint_shares_of_a_prompt_file(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(f'{{"prompt": "p{i}"}}\n' for i in range(6)))
    seen = []
    for index in (0, 1):
        session = LoadSession(
            LoadOptions(prompt_file=prompts, model="m"), ListSink(), rate_share=0.5
        )
        session.prepare("http://127.0.0.1:9", seed_offset=index)  # nothing to reach: model given
        seen.append({session.next_request().body for _ in range(3)})
    assert len(seen[0]) == 3 and len(seen[1]) == 3 and not seen[0] & seen[1]
