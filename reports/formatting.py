"""Number formatting and the sweep table, shared by the HTML and Markdown renderers so both show
exactly the same figures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reports.document_types import GateResultEntry, ReportDocument, StepEntry

MISSING = "–"


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[StepEntry], str]
    numeric: bool = True


def number(value: object, digits: int = 1) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    return f"{value:,.{digits}f}"


def integer(value: object) -> str:
    return MISSING if not isinstance(value, int | float) else f"{value:,.0f}"


def _field(key: str, digits: int = 1, scale: float = 1.0) -> Callable[[StepEntry], str]:
    def cell(step: StepEntry) -> str:
        value = step.get(key)
        return number(value * scale if isinstance(value, int | float) else value, digits)

    return cell


def _load(step: StepEntry) -> str:
    load = step.get("load")
    if load is None:
        return MISSING
    return load_text(load, step.get("load_mode"), step.get("workload"))


def load_text(load: float, mode: object, workload: object = None) -> str:
    if mode == "rate":
        return f"{load:g} req/s"
    if workload == "agent":
        return f"{load:g} PicoClaw session" + ("" if load == 1 else "s")
    return f"{load:g} user" if load == 1 else f"{load:g} users"


def _requests(step: StepEntry) -> str:
    return integer(step["requests_measured"]) if step["status"] == "ok" else MISSING


def _status(step: StepEntry) -> str:
    if step["status"] != "ok":
        return failure_text(step)
    missed = step.get("gates_missed") or []
    return "meets gates" if not missed else "misses " + ", ".join(missed)


_SETTING = [
    Column("setting", lambda s: str(s["setting_id"]), numeric=False),
    Column("max-num-seqs", lambda s: integer(s.get("max_num_seqs"))),
    Column("TP", lambda s: integer(s.get("tensor_parallel_size"))),
    Column("load", _load),
]
SWEEP_TABLES = {
    "throughput": [
        *_SETTING,
        Column(
            "requests", lambda s: integer(s["requests_measured"] if s["status"] == "ok" else None)
        ),
        Column("failed", lambda s: integer(s.get("failed"))),
        Column("error %", _field("error_rate_pct", 2)),
        Column("req/s", _field("request_throughput", 2)),
        Column("output tok/s", _field("output_throughput", 1)),
        Column("goodput req/s", _field("goodput", 2)),
        Column("waiting max", _field("server_waiting_max", 0)),
        Column("queue ms mean", _field("server_queue_ms_mean", 1)),
        Column("KV cache max %", _field("server_kv_cache_max", 1, 100.0)),
        Column("verdict", _status, numeric=False),
    ],
    "latency": [
        *_SETTING,
        Column("TTFT p50 ms", _field("ttft_ms_p50")),
        Column("TTFT p95 ms", _field("ttft_ms_p95")),
        Column("TTFT p99 ms", _field("ttft_ms_p99")),
        Column("ITL p50 ms", _field("itl_ms_p50")),
        Column("ITL p95 ms", _field("itl_ms_p95")),
        Column("ITL p99 ms", _field("itl_ms_p99")),
        Column("TPOT p95 ms", _field("tpot_ms_p95")),
        Column("E2EL p95 ms", _field("e2el_ms_p95")),
    ],
}
SWEEP_TABLES["agent"] = [
    *_SETTING[:3],
    Column("sessions", _load),
    Column("turns", lambda s: integer(s.get("turns"))),
    Column("turn p50 ms", _field("turn_latency_ms_p50", 0)),
    Column("turn p95 ms", _field("turn_latency_ms_p95", 0)),
    Column("timed out", lambda s: integer(s.get("turns_timed_out"))),
    Column("tool-call answers", lambda s: integer(s.get("tool_call_answers"))),
    Column("text answers", lambda s: integer(s.get("text_answers"))),
    Column("prompt tokens mean", _field("prompt_tokens_mean", 0)),
    Column("prefix-cache hit %", _field("server_prefix_cache_hit_rate", 1, 100.0)),
    Column("prompt tok/s", _field("prompt_tokens_per_s", 1)),
    Column("preemptions", lambda s: integer(s.get("server_preemptions"))),
]
SWEEP_TITLES = {
    "throughput": "Throughput, errors and server state",
    "latency": "Latency (ms)",
}
AGENT_TITLE = "PicoClaw sessions: turns, answers and prefix cache"


def sweep_titles(document: ReportDocument) -> dict[str, str]:
    """The sweep tables this report shows: the agent one only for agent-workload runs."""
    if any(s.get("workload") == "agent" for s in document["steps"]):
        return {**SWEEP_TITLES, "agent": AGENT_TITLE}
    return dict(SWEEP_TITLES)


def sweep_table(document: ReportDocument, name: str) -> tuple[list[str], list[list[str]]]:
    titles = {g["gate_id"]: g["title"] for g in document["gates"]["results"]}
    columns = SWEEP_TABLES[name]
    headers = [c.header for c in columns]
    rows = []
    for step in document["steps"]:
        shown: StepEntry = {
            **step,
            "gates_missed": [titles.get(g, g) for g in step.get("gates_missed") or []],
        }
        rows.append([c.cell(shown) for c in columns])
    return headers, rows


def failure_text(step: Mapping[str, object]) -> str:
    cause = step.get("failure_id") or "unknown cause"
    measured = any(step.get(k) is not None for k in ("load", "concurrency", "request_rate"))
    return f"failed ({cause})" if measured else f"did not start ({cause})"


def gate_value(result: GateResultEntry) -> str:
    """`399.2 ms [381.0–463.8] (n = 400)`; `not enough requests for a p95 (n = 20, needs ≥ 72)`
    when the figure's interval has an unbounded side: never a bare number for it."""
    measured = result.get("measured")
    if measured is None:
        return MISSING
    unit = result.get("unit", "")
    digits = 2 if unit == "%" else (0 if unit in ("failures", "turns") else 1)
    value = f"{number(measured, digits)} {unit}".strip()
    interval = result.get("interval")
    if not interval or interval["method"] == "exact":
        return value
    low, high, n = interval["low"], interval["high"], interval["n"]
    if low is not None and high is not None:
        return f"{value} [{number(low, digits)}–{number(high, digits)}] (n = {n:,})"
    what = "turns" if result["gate_id"].startswith("turn_latency") else "requests"
    stat = result["gate_id"].removesuffix("_ms").rsplit("_", 1)[-1]
    figure = f" for a {stat}" if stat in ("p50", "p90", "p95", "p99") else " for an interval"
    needs = f", needs ≥ {interval['needs']:,}" if interval["needs"] else ""
    known = ""
    if low is not None:
        known = f"; at least {number(low, digits)} {unit}"
    elif high is not None:
        known = f"; at most {number(high, digits)} {unit}"
    return f"not enough {what}{figure} (n = {n:,}{needs}){known}"


def status_mark(status: str) -> str:
    marks = {
        "pass": "✔ pass",
        "fail": "✘ FAIL",
        "inconclusive": "? INCONCLUSIVE",
        "skip": "– not run",
    }
    return marks.get(status, status)


def unknown(value: object) -> str:
    if value is None or value == "" or value == []:
        return "unknown"
    if isinstance(value, list):
        return ", ".join(unknown(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {unknown(v)}" for k, v in value.items())
    return str(value)


def fingerprint_rows(document: ReportDocument) -> list[tuple[str, object]]:
    fp = document["fingerprint"]
    rows: list[tuple[str, object]] = [
        ("vLLM version", fp["vllm_version"]),
        ("model", fp["model"]),
        ("served model name", fp["served_model_name"]),
        ("max_model_len", fp["max_model_len"]),
        ("API base", fp["api_base"]),
        ("server launched", fp["launch"]),
        ("GPUs", fp["gpus"]),
        ("GPU driver", fp["gpu_driver"]),
        ("platform", fp["platform"]),
        ("Python", fp["python"]),
        ("Locust version", fp["locust_version"]),
        ("sweep tool version", fp["sweep_tool_version"]),
        ("report tool version", document["tool"]["version"]),
        ("sweep date", fp["date"]),
        ("workload", fp["workload"]),
        ("goodput SLOs (ms)", fp["goodput_slo_ms"]),
        ("Locust command", fp["locust_command"]),
        ("vLLM flags added (--vllm-arg)", fp.get("vllm_args")),
    ]
    rows += [(f"server flags, {s['label']}", s["vllm_command"]) for s in fp["settings"]]
    return rows
