"""The plan as text (the arithmetic, then what to paste) and as JSON (schema
`picoclaw-vllm/plan/v1`, reports/schemas/plan.schema.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from picoclaw_vllm import __version__
from picoclaw_vllm.plan import launch
from picoclaw_vllm.plan.arithmetic import DOES_NOT_FIT, FITS, Layout, Plan
from picoclaw_vllm.plan.gpus import GpuSet
from picoclaw_vllm.plan.model_source import ModelSource

SCHEMA = "picoclaw-vllm/plan/v1"
DEFAULT_API_BASE = f"http://localhost:{launch.PORT}/v1"


@dataclass(frozen=True)
class Rendered:
    plan: Plan
    source: ModelSource
    gpus: GpuSet | None
    served: str
    tools: launch.ToolCalling
    notes: tuple[str, ...]


def _steps(lay: Layout) -> list[dict[str, Any]]:
    return [
        {"key": s.key, "label": s.label, "value": s.value, "unit": s.unit, "formula": s.formula}
        for s in lay.steps
    ]


def document(r: Rendered) -> dict[str, Any]:
    plan, chosen = r.plan, r.plan.chosen
    i = plan.inputs
    startable = chosen is not None and chosen.status != DOES_NOT_FIT
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": {"name": "picoclaw-vllm", "version": __version__},
        "model": {
            "name": r.source.name,
            "config": r.source.where,
            "served_model_name": r.served,
            "architecture": (r.source.config.get("architectures") or ["unknown"])[0],
            "heads": launch.heads_line(r.source.config),
        },
        "hardware": (
            {"kind": "cpu", "kv_cache_gib": i.kv_cache_gib}
            if i.kv_cache_gib is not None
            else {
                "kind": "gpu",
                "count": i.gpus,
                "memory_gib": round(i.gpu_gib, 3),
                "source": r.gpus.source if r.gpus else "",
                "gpu_memory_utilization": i.gpu_memory_utilization,
                "reserve_gib": i.reserve_gib,
            }
        ),
        "picoclaw": {
            "prompt_tokens": i.needs.prompt_tokens,
            "iteration_tokens": i.needs.iteration_tokens,
            "iterations": i.needs.iterations,
            "max_tokens": i.needs.max_tokens,
            "sessions": i.needs.sessions,
            "counted_with": i.needs.counted_with,
            "exact": i.needs.exact,
            "context_needed": i.needs.context,
        },
        "tp_sizes": list(plan.tp_sizes),
        "status": plan.status,
        "why": list(chosen.why) if chosen else ["no tensor-parallel size divides the heads"],
        "remedies": list(plan.remedies),
        "layouts": [
            {"tensor_parallel_size": lay.tp, "status": lay.status, "steps": _steps(lay)}
            for lay in plan.layouts
        ],
        "chosen_tensor_parallel_size": chosen.tp if chosen else None,
        "tool_calling": {
            "parser": r.tools.parser,
            "family": r.tools.family,
            "flags": list(r.tools.flags),
            "note": r.tools.note,
        },
        "unknown": list(r.source.unknown),
        "notes": list(r.notes),
        "launch": None,
    }
    if startable and chosen is not None:
        doc["launch"] = {
            "max_model_len": chosen.max_model_len,
            "max_num_seqs": chosen.max_num_seqs,
            "tensor_parallel_size": chosen.tp,
            "vllm_args": launch.vllm_flags(plan, r.source.name, r.served, r.tools),
            "environment": launch.environment(plan),
            "commands": launch.commands(plan, r.source.name, r.served, r.tools),
            "picoclaw_config": launch.picoclaw_entry(plan, r.served, DEFAULT_API_BASE),
            "acceptance": launch.acceptance(plan, r.source.name, r.served, r.tools),
        }
    return doc


def _value(step: dict[str, Any]) -> str:
    v, unit = step["value"], step["unit"]
    if isinstance(v, int):
        return f"{v:,} {unit}"
    if isinstance(v, float):
        return f"{v:,.2f} {unit}" if unit != "x" else f"{v:.2f}x"
    return f"{v} {unit}".strip()


def text(doc: dict[str, Any], explain: bool) -> str:
    out: list[str] = []
    m, p = doc["model"], doc["picoclaw"]
    out.append(f"Plan for {m['name']} ({m['architecture']}, {m['heads']}; config {m['config']})")
    hw = doc["hardware"]
    if hw["kind"] == "cpu":
        out.append(f"  hardware: CPU backend, {hw['kv_cache_gib']:g} GiB given to the KV cache")
    else:
        out.append(
            f"  hardware: {hw['count']} x {hw['memory_gib']:g} GiB ({hw['source']}), "
            f"--gpu-memory-utilization {hw['gpu_memory_utilization']:g}, "
            f"{hw['reserve_gib']:g} GiB reserved for activations/CUDA graphs"
        )
    out.append(
        f"  PicoClaw: {p['sessions']} session(s), {p['iterations']} iterations, "
        f"max_tokens {p['max_tokens']}; prompt counted with {p['counted_with']}"
    )
    out.append(
        f"  tensor-parallel sizes that divide the heads: "
        f"{', '.join(map(str, doc['tp_sizes'])) or 'none'}"
    )
    chosen = next(
        (
            lay
            for lay in doc["layouts"]
            if lay["tensor_parallel_size"] == doc["chosen_tensor_parallel_size"]
        ),
        None,
    )
    if chosen is not None:
        out.append("")
        out.append(f"Arithmetic at --tensor-parallel-size {chosen['tensor_parallel_size']}:")
        width = max(len(s["label"]) for s in chosen["steps"])
        for s in chosen["steps"]:
            line = f"  {s['label']:<{width}}  {_value(s)}"
            out.append(line + (f"\n  {'':<{width}}    = {s['formula']}" if explain else ""))
    verdict = {FITS: "FITS", DOES_NOT_FIT: "DOES NOT FIT"}.get(
        doc["status"], "REDUCED (vLLM starts and serves PicoClaw's first request, not all asked)"
    )
    out.append("")
    out.append(f"Verdict: {verdict}" + (": " + "; ".join(doc["why"]) if doc["why"] else ""))
    if doc["remedies"]:
        out.append("What would make it fit:")
        out += [f"  - {r}" for r in doc["remedies"]]
    for note in [*doc["unknown"], *doc["notes"]]:
        out.append(f"Note: {note}")
    t = doc["tool_calling"]
    out.append(f"Tool calling: --tool-call-parser {t['parser']} ({t['note']})")
    lau = doc["launch"]
    if lau is None:
        out.append(
            "No launch commands: vLLM would not start, or PicoClaw's first request would "
            "fail, with these settings."
        )
        return "\n".join(out) + "\n"
    out += [
        "",
        "vLLM flags:",
        "  " + " ".join(lau["vllm_args"]),
        "",
        "docker:",
        "  " + lau["commands"]["docker"],
        "",
        "python:",
        "  " + lau["commands"]["python"],
        "",
        "systemd unit (/etc/systemd/system/vllm.service):",
    ]
    out += ["  " + line for line in lau["commands"]["systemd"].splitlines()]
    out += ["", "PicoClaw (~/.picoclaw/config.json):"]
    out += ["  " + line for line in json.dumps(lau["picoclaw_config"], indent=2).splitlines()]
    out += [
        "",
        "Check it on the real server (a sweep around the planned --max-num-seqs):",
        "  " + lau["acceptance"],
    ]
    return "\n".join(out) + "\n"
