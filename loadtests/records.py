"""Raw per-request records: the trusted numbers of a load step, one JSON object per line.

Locust's own statistics round response times; these records keep every measured value
(fields: `RECORD_FIELDS`, plus `end_unix`). A step's records may come from several
Locust processes; `read_records` merges every `*.jsonl` file it is given or finds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from picoclaw_vllm.vllm_api.measurement import RequestOutcome

RECORD_FIELDS = [
    "step_id",
    "request_id",
    "worker",  # locust worker id / pid, so distributed runs can be told apart
    "start_unix",  # wall-clock start (for ordering across processes)
    "ok",
    "status_code",
    "error",  # reason when not ok: "HTTP 400: ...", "stream ended without [DONE]", ...
    "prompt_tokens",
    "output_tokens",
    "ttft_ms",
    "e2el_ms",
    "tpot_ms",
    "itl_ms",  # list of gaps between consecutive choices-bearing events
    "warmup",  # True for requests started during the warm-up (not counted)
    "answer_kind",  # "tool_call" or "text"
    "answer_score",  # tool_call, text, markup_in_content, invalid_arguments, cut_by_length
    "cached_tokens",  # prompt tokens vLLM took from its prefix cache, when it reports them
    # agent workload only: where the call stands, and on a turn's last call the whole turn
    "session_id",
    "turn_index",
    "call_index",
    "turn_latency_ms",
    "turn_timed_out",
]


@dataclass(kw_only=True)
class RequestRecord(RequestOutcome):
    """One request as the records file keeps it: its measurement and where it came from."""

    step_id: str
    request_id: str
    worker: str
    start_unix: float
    status_code: int | None = None
    warmup: bool = False
    end_unix: float | None = None
    # the agent workload (loadtests.agent_conversation); None for independent requests
    session_id: str | None = None
    turn_index: int | None = None
    call_index: int | None = None
    turn_latency_ms: float | None = None  # on the last call of a turn: all its calls
    turn_timed_out: bool | None = None  # that turn took longer than PicoClaw's request_timeout

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        known = {k: data[k] for k in (*RECORD_FIELDS, "end_unix") if k in data}
        return cls(**known)


def dumps(record: RequestRecord | dict[str, Any]) -> bytes:
    """One JSON line's bytes (orjson serializes the dataclass directly: a record of a long
    answer holds hundreds of ITL floats, and this runs inside the load generator)."""
    return orjson.dumps(record)


class RecordWriter:
    """Appends records to a JSONL file, flushing each write so a reader sees whole lines."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[bytes] | None = path.open("ab")

    def write(self, record: RequestRecord | dict[str, Any]) -> None:
        self.write_many([record])

    def write_many(self, records: Iterable[RequestRecord | dict[str, Any]]) -> None:
        if self._file is None:
            raise ValueError(f"record writer for {self.path} is closed")
        lines = b"".join(dumps(r) + b"\n" for r in records)
        if lines:
            self._file.write(lines)
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def iter_record_dicts(path: Path) -> Iterator[dict[str, Any]]:
    """Whole lines only: a line still being written (no newline yet) is left for later."""
    with path.open("rb") as f:
        for line in f:
            if line.endswith(b"\n") and line.strip():
                yield orjson.loads(line)


def record_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.glob("*.jsonl"))
    return [path] if path.exists() else []


def read_records(*paths: Path) -> list[RequestRecord]:
    """Every record in the given files or directories of `*.jsonl` files, in start order."""
    records = [
        RequestRecord.from_dict(d)
        for p in paths
        for f in record_files(p)
        for d in iter_record_dicts(f)
    ]
    records.sort(key=lambda r: r.start_unix)
    return records
