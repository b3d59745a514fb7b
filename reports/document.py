"""The report as one JSON-ready document (schema `picoclaw-vllm/report/v1`).

Every renderer (HTML, Markdown, JUnit) reads this document and nothing else, so every number a
reader sees is also in the JSON. Manifest and doctor keys are read defensively: what is absent
shows as None ("unknown"), never as an error. Its types: reports/document_types.py.

    schema, generated_at, tool {name, version}, platform {python, system, machine}
    run                 name, load modes, steps measured/total, measured window and warm-up per
                        step, requests measured, whether raw records were there
    fingerprint         vLLM/Locust/tool versions, model, served name, max_model_len, API base,
                        GPUs and driver, platform, date, workload, the sweep's goodput SLOs,
                        Locust command, settings [{setting_id, label, max_num_seqs,
                        tensor_parallel_size, status, vllm_command}]
    metric_definitions  which definition each number follows (vllm bench serve's)
    verdict             passed, headline, target, failed_gates, skipped_gates
    gates               config (as given), results [{gate_id, title, status, explanation,
                        measured, threshold, unit, step_id, setting_id, load, rests_on, warnings}]
    recommendation      found, summary, details, the setting and step, goodput, throughputs,
                        next_step {step_id, load, output_throughput(_gain_pct), broken_gates},
                        first_failing_gates, workload; for the agent workload also sessions
                        (served by the recommended setting) and capacity [{setting_id, label,
                        sessions, highest_measured, limit_measured, step_id,
                        first_failing_step_id, first_failing_load, broken_gates,
                        runs_out_first [{resource, load, evidence}], summary}]
    doctor              present, status, versions, target, checks, counts, findings
    steps               every results column of every row, plus load, error_rate_pct,
                        requests_measured, itl_gaps, tpot_requests, error_reasons,
                        prompt_tokens_per_s, ttft_by_call_index / ttft_by_turn_index
                        {index: {ttft_ms_p50, ttft_ms_p95, calls}} (agent records),
                        gates_missed, warnings
    failed_settings     step_id, label, cause, failure_id, failure_message, log_excerpt
    warnings            numbers that rest on too few requests, unreadable inputs
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from picoclaw_vllm import __version__
from picoclaw_vllm.run_layout import DoctorJson, ManifestJson
from reports.document_types import (
    DoctorCheck,
    DoctorFinding,
    DoctorSection,
    FailedSetting,
    Fingerprint,
    ReportDocument,
    RunInfo,
    SettingEntry,
    StepEntry,
)
from reports.formatting import failure_text
from reports.gates import Gates
from reports.recommend import recommend
from reports.run_data import RunData
from reports.steps import Step, steps_from_results
from reports.verdict import FAIL, INCONCLUSIVE, PASS, SKIP, GateResult, evaluate, judge_step

REPORT_SCHEMA = "picoclaw-vllm/report/v1"

METRIC_DEFINITIONS = {
    "source": "vllm bench serve (vllm/benchmarks/serve.py), as recorded by the sweep",
    "ttft": "time to first token: first SSE event with non-empty choices, minus request start",
    "itl": "inter-token latency: gaps between consecutive choices-bearing events, per event "
    "(not per token), pooled over all successful requests (GuideLLM calls this TPOT)",
    "tpot": "time per output token, per request: (E2EL - TTFT) / (output tokens - 1); "
    "requests weigh equally",
    "e2el": "end-to-end latency: last choices-bearing event minus request start",
    "percentiles": "linear interpolation; mean, p50, p90, p95, p99",
    "duration": "measured window, first dispatch to last completion, warm-up excluded",
    "request_throughput": "completed requests / duration",
    "output_throughput": "sum of usage.completion_tokens / duration",
    "total_token_throughput": "(prompt + output tokens) / duration",
    "goodput": "requests/s meeting every SLO given to the sweep (vLLM's definition)",
    "error_rate_pct": "failed / (completed + failed) requests in the measured window, in %",
    "server_waiting": "vllm:num_requests_waiting gauge sampled during the step",
    "server_kv_cache": "vllm:kv_cache_usage_perc gauge (0..1) sampled during the step",
    "turn_latency": "agent workload: all LLM calls of one user message, first request start "
    "to last answer; timed out when longer than PicoClaw's request_timeout (120 s default)",
    "prefix_cache_hit_rate": "vllm:prefix_cache_hits / vllm:prefix_cache_queries over the step",
    "prompt_tokens_per_s": "vllm:prompt_tokens over the step / measured duration (prefill load)",
    "sessions_served": "agent workload: the most concurrent PicoClaw sessions at which this and "
    "every lighter measured level meet every gate; never a level that was not measured",
    "runs_out_first": "the lightest measured step showing KV cache >= 90 % or preemptions, "
    "requests waiting beyond --max-num-seqs, the prefix-cache hit rate >= 10 points below a "
    "lighter step's, or prompt tokens/s growing by less than half as much as the sessions",
    "intervals": "every gate figure carries a confidence interval (default 95 %): "
    "percentiles an order-statistic interval over the step's requests (turns), means a t "
    "interval, the error rate Wilson's, output tokens/s a t interval over 5 time windows of the "
    "step (over the repeats when repeated); a gate passes when its interval lies within the "
    "limit, fails beyond it, and is inconclusive when it straddles it",
}


def build_document(run: RunData, gates: Gates, *, now: datetime | None = None) -> ReportDocument:
    steps = steps_from_results(run.results, run.samples)
    data_problems = run.invalid + (
        [f"{len(run.missing_steps)} planned step(s) have no result"] if run.missing_steps else []
    )
    gate_results = evaluate(
        steps, gates, run.doctor, data_problems=data_problems, doctor_error=run.doctor_error
    )
    rec = recommend(steps, gates, _searches(run.manifest))
    failing = [g for g in gate_results if g.status == FAIL]
    unsure = [g for g in gate_results if g.status == INCONCLUSIVE]
    outcome = FAIL if failing else INCONCLUSIVE if unsure else PASS
    ok_steps = [s for s in steps if s.ok]
    return {
        "schema": REPORT_SCHEMA,
        "generated_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "tool": {"name": "picoclaw-vllm", "version": __version__},
        "platform": {
            "python": sys.version.split()[0],
            "system": platform.platform(),
            "machine": platform.machine(),
        },
        "run": _run_info(run, ok_steps),
        "fingerprint": fingerprint(run.manifest, run.doctor, steps),
        "metric_definitions": METRIC_DEFINITIONS,
        "verdict": {
            "passed": outcome == PASS,
            "outcome": outcome,
            "headline": _headline(outcome, failing, unsure, gates),
            "target": gates.target_label,
            "failed_gates": [g.gate_id for g in failing],
            "inconclusive_gates": [g.gate_id for g in unsure],
            "skipped_gates": [g.gate_id for g in gate_results if g.status == SKIP],
            "confidence": gates.confidence,
        },
        "gates": {
            "config": gates.as_dict(),
            "results": [g.as_json() for g in gate_results],
        },
        "recommendation": rec.as_json(),
        "doctor": doctor_section(run.doctor),
        "steps": [_step_json(s, gates) for s in steps],
        "failed_settings": _failed_settings(steps, run.log_excerpts),
        "warnings": run.problems + _step_warnings(steps),
    }


def fingerprint(
    manifest: ManifestJson, doctor: DoctorJson | None, steps: Sequence[Step]
) -> Fingerprint:
    doc = doctor or {}
    config = _dict(manifest.get("config"))
    settings = _settings(manifest, steps)
    commands = " ".join(s["vllm_command"] or "" for s in settings)
    locust = manifest.get("locust_commands")
    return {
        "vllm_version": _pick(manifest, "vllm_version")
        or _pick(doc, "vllm_version", "vllm.version"),
        "model": _pick(manifest, "model")
        or _flag(commands, "--model")
        or _pick(doc, "target.model"),
        "served_model_name": _pick(config, "served_model_name")
        or _flag(commands, "--served-model-name"),
        "max_model_len": _pick(manifest, "max_model_len")
        or _pick(config, "max_model_len")
        or _flag(commands, "--max-model-len"),
        "api_base": _pick(config, "api_base") or _pick(doc, "target.api_base"),
        "launch": _pick(config, "launch"),
        "gpus": _pick(manifest, "gpus", "platform.gpus") or _pick(doc, "gpus", "platform.gpus"),
        "gpu_driver": _pick(manifest, "gpu_driver", "platform.gpu_driver")
        or _pick(doc, "gpu_driver", "platform.gpu_driver"),
        "locust_version": _pick(manifest, "locust_version"),
        "sweep_tool_version": _pick(manifest, "tool_version"),
        "doctor_tool_version": _pick(doc, "tool_version", "tool.version"),
        "platform": _pick(manifest, "platform.platform", "platform.system"),
        "python": _pick(manifest, "platform.python"),
        "date": _date(manifest),
        "workload": _workload(config),
        "goodput_slo_ms": config.get("slo") if isinstance(config.get("slo"), dict) else None,
        "locust_command": _first_command(locust if locust else manifest.get("locust_command")),
        "turn_timeout_s": config.get("turn_timeout_s")
        if config.get("workload") == "agent"
        else None,
        "vllm_args": " ".join(str(a) for a in config.get("extra_vllm_args") or []) or None,
        "settings": settings,
    }


def _workload(config: dict[str, Any]) -> str | None:
    if not config:
        return None
    if config.get("workload") == "agent":
        return _agent_workload(config)
    parts = [
        f"{config.get('endpoint', 'chat')} endpoint",
        (
            f"streaming ({config.get('usage_stats', 'continuous')} usage stats)"
            if config.get("stream", True)
            else "not streaming"
        ),
        f"prompt {config.get('prompt_file') or str(config.get('prompt_tokens')) + ' tokens'}",
        f"output {config.get('output_tokens')} tokens (ignore_eos)",
        f"{config.get('duration_s')} s measured after {config.get('warmup_s')} s warm-up per step",
    ]
    if config.get("rates"):
        parts.append(f"Poisson arrivals, burstiness {config.get('burstiness')}")
    workers = config.get("workers")
    parts.append(f"{workers} Locust workers" if workers else "one Locust process")
    return ", ".join(parts)


def _agent_workload(config: dict[str, Any]) -> str:
    workers = config.get("workers")
    return ", ".join(
        [
            f"agent: PicoClaw sessions ({config.get('agent_mode', 'forced')} mode)",
            f"{config.get('calls_per_turn')} LLM calls a turn",
            f"{config.get('turns_per_session')} turns a session",
            f"{config.get('think_time_s')} s think time",
            f"tool results of {config.get('tool_result_chars')} characters",
            f"turns time out after {config.get('turn_timeout_s')} s",
            f"{config.get('duration_s')} s measured after {config.get('warmup_s')} s warm-up "
            "per step",
            f"{workers} Locust workers" if workers else "one Locust process",
        ]
    )


def _date(manifest: ManifestJson) -> str | None:
    created = manifest.get("created_unix")
    if isinstance(created, int | float):
        return datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds")
    value = _pick(manifest, "started_at", "created_at", "date")
    return str(value) if value is not None else None


def _flag(command: str, flag: str) -> str | None:
    parts = command.split()
    for i, part in enumerate(parts):
        if part == flag and i + 1 < len(parts):
            return parts[i + 1]
        if part.startswith(flag + "="):
            return part.split("=", 1)[1]
    return None


def _first_command(value: Any) -> str | None:
    if isinstance(value, dict):
        commands = [v for v in value.values() if v]
        if not commands:
            return None
        first = _command(commands[0])
        more = f"  (one per step; {len(commands)} in sweep.json)" if len(commands) > 1 else ""
        return first + more if first else None
    return _command(value)


def doctor_section(doctor: DoctorJson | None) -> DoctorSection:
    if doctor is None:
        return {"present": False, "checks": [], "findings": [], "counts": {}}
    checks: list[DoctorCheck] = [
        {
            "id": c.get("id") or c.get("name"),
            "title": c.get("title"),
            "status": c.get("status"),
        }
        for c in doctor.get("checks") or []
        if isinstance(c, dict)
    ]
    counts: dict[str, int] = {}
    for check in checks:
        status = str(check["status"] or "unknown")
        counts[status] = counts.get(status, 0) + 1
    findings: list[DoctorFinding] = [
        {
            "id": f.get("id"),
            "severity": f.get("severity"),
            "message": f.get("message"),
            "evidence": f.get("evidence"),
            "remedy": f.get("remedy"),
        }
        for f in doctor.get("findings") or []
        if isinstance(f, dict)
    ]
    order = {"fail": 0, "error": 0, "critical": 0, "warn": 1, "warning": 1}
    findings.sort(key=lambda f: order.get(str(f.get("severity")).lower(), 2))
    target = doctor.get("target")
    return {
        "present": True,
        "schema": doctor.get("schema"),
        "status": doctor.get("status"),
        "started_at": doctor.get("started_at"),
        "tool_version": _pick(doctor, "tool_version", "tool.version"),
        "vllm_version": _pick(doctor, "vllm_version", "vllm.version"),
        "target": {"api_base": target.get("api_base"), "model": target.get("model")}
        if isinstance(target, dict)
        else None,
        "checks": checks,
        "counts": counts,
        "findings": findings,
    }


def _step_json(step: Step, gates: Gates) -> StepEntry:
    checks = judge_step(step, gates) if step.ok else []
    missed = [c.gate_id for c in checks if c.failed] if step.ok else None
    unsure = [c.gate_id for c in checks if c.result == "inconclusive"] if step.ok else None
    return {**step.as_json(), "gates_missed": missed, "gates_inconclusive": unsure}


def _searches(manifest: ManifestJson) -> dict[str, dict[str, Any]]:
    """setting_id -> the capacity search the sweep recorded for it (sweep.json), when present."""
    settings: Any = manifest.get("settings")
    if not isinstance(settings, dict):
        return {}
    return {
        str(sid): entry["search"]
        for sid, entry in settings.items()
        if isinstance(entry, dict) and isinstance(entry.get("search"), dict)
    }


def _run_info(run: RunData, ok_steps: Sequence[Step]) -> RunInfo:
    durations = [d for s in ok_steps if (d := s.number("duration_s")) is not None]
    warmups = {w for s in ok_steps if (w := s.number("warmup_s")) is not None}
    modes = sorted({s.load_mode for s in ok_steps})
    return {
        "name": run.run_dir.name,
        "sweep_schema": run.manifest.get("schema"),
        "load_modes": modes,
        "steps_total": len(run.results),
        "steps_measured": len(ok_steps),
        "measured_duration_s_total": sum(durations) if durations else None,
        "measured_duration_s_per_step": sorted(set(durations)),
        "warmup_s_per_step": sorted(warmups),
        "requests_measured_total": sum(s.completed + s.failed for s in ok_steps),
        "records_present": bool(run.samples),
    }


def _headline(
    outcome: str, failing: Sequence[GateResult], unsure: Sequence[GateResult], gates: Gates
) -> str:
    pct = f"{100 * gates.confidence:g} %"
    if outcome == PASS:
        return f"PASS: every gate is met at {gates.target_label} ({pct} intervals)."
    unsure_text = ", ".join(g.title for g in unsure)
    if outcome == INCONCLUSIVE:
        return (
            f"INCONCLUSIVE: {len(unsure)} gate(s) at {gates.target_label} cannot be told met or "
            f"missed at {pct} confidence: {unsure_text}. Not a pass: see what would settle them."
        )
    names = ", ".join(g.title for g in failing)
    text = f"FAIL: {len(failing)} gate(s) not met at {gates.target_label}: {names}."
    if unsure:
        text += f" Inconclusive: {unsure_text}."
    return text


def _settings(manifest: ManifestJson, steps: Sequence[Step]) -> list[SettingEntry]:
    declared = manifest.get("settings")
    if isinstance(declared, list):  # tolerate a list of {"setting_id": ...} too
        declared = {str(e.get("setting_id")): e for e in declared if isinstance(e, dict)}
    declared = declared if isinstance(declared, dict) else {}
    commands = manifest.get("vllm_commands")
    commands = commands if isinstance(commands, dict) else {}
    settings: dict[str, SettingEntry] = {}
    for step in steps:
        sid = step.setting_id
        if sid in settings:
            continue
        entry = _dict(declared.get(sid))
        ours = [s for s in steps if s.setting_id == sid]
        settings[sid] = {
            "setting_id": sid,
            "label": step.setting_label,
            "max_num_seqs": step.get("max_num_seqs"),
            "tensor_parallel_size": step.get("tensor_parallel_size"),
            "status": "ok" if any(s.ok for s in ours) else "failed",
            "vllm_command": _command(commands.get(sid) or entry.get("vllm_command")),
        }
    return list(settings.values())


def _failed_settings(steps: Sequence[Step], logs: dict[str, list[str]]) -> list[FailedSetting]:
    return [
        {
            "setting_id": s.setting_id,
            "step_id": s.step_id,
            "label": s.setting_label if s.load is None else f"{s.setting_label}, {s.load_label}",
            "cause": failure_text(s.values),
            "failure_id": s.get("failure_id"),
            "failure_message": s.get("failure_message"),
            "log_excerpt": logs.get(s.step_id, []),
        }
        for s in steps
        if not s.ok
    ]


def _step_warnings(steps: Sequence[Step]) -> list[str]:
    return [
        f"{s.step_id} ({s.setting_label}, {s.load_label}): {w}" for s in steps for w in s.warnings
    ]


def _command(value: Any) -> str | None:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value) if value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _pick(data: dict[str, Any], *paths: str) -> Any:
    for path in paths:
        node: Any = data
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node not in (None, "", [], {}) and not isinstance(node, dict):
            return node
    return None
