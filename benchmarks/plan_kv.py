"""The plan's KV arithmetic against the real CPU vLLM over several KV sizes, --max-model-len
values (block multiples and not), dtypes and tensor-parallel sizes.

    flock /tmp/vllm-cpu.lock .venv/bin/python -m benchmarks.plan_kv

Each setting starts the tiny model with VLLM_CPU_KVCACHE_SPACE, reads vLLM's own "CPU KV cache
size: N tokens, Maximum concurrency for L tokens per request: X.XXx", stops it, and sets the
plan's figures beside it (picoclaw_vllm.plan.arithmetic, the code `picoclaw-vllm plan` runs).
Results: benchmarks/results/plan-kv.json and .md. It measures; it passes or fails nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.machine import git_commit, machine
from picoclaw_vllm.paths import TINY_MODEL_NAME, cpu_python, tiny_model_dir
from picoclaw_vllm.plan import arithmetic, picoclaw_needs
from picoclaw_vllm.plan.model_source import locate
from picoclaw_vllm.server.backends import LocalBackend
from picoclaw_vllm.server.embedded import free_port
from picoclaw_vllm.server.launcher import start_server
from picoclaw_vllm.server.settings import ServerSettings

RESULTS = Path(__file__).parent / "results"
KV_LINE = re.compile(
    r"CPU KV cache size: ([\d,]+) tokens, Maximum concurrency for ([\d,]+) tokens per "
    r"request: ([\d.]+)x"
)


@dataclass(frozen=True)
class Setting:
    kv_gib: int
    max_model_len: int
    dtype: str  # vLLM's --dtype; "auto" downcasts the float32 checkpoint to bfloat16
    tp: int = 1


SETTINGS = (
    Setting(1, 65536, "auto"),
    Setting(2, 16384, "auto"),
    Setting(2, 65536, "float32"),
    Setting(3, 30000, "auto"),  # not a multiple of the 128-token block
    Setting(1, 8000, "float32", tp=2),  # 2 KV heads over 2 ranks: 1 a rank
)


def planned(setting: Setting) -> arithmetic.Layout:
    source = locate(str(tiny_model_dir()))
    needs = picoclaw_needs.count(source, 50, 32768, 1)
    dtype = "bfloat16" if setting.dtype == "auto" else setting.dtype
    inputs = arithmetic.Inputs(
        config=source.config, weights_bytes=source.weights_bytes or 0, weights_formula="files",
        needs=needs, gpus=setting.tp, gpu_gib=0.0, kv_cache_gib=float(setting.kv_gib),
        dtype=dtype, block_size=128, max_model_len=setting.max_model_len,
    )  # fmt: skip
    return arithmetic.layout(inputs, setting.tp)


def measure(setting: Setting, log: Path) -> dict[str, Any]:
    extra: tuple[str, ...] = () if setting.dtype == "auto" else ("--dtype", setting.dtype)
    settings = ServerSettings(
        model=str(tiny_model_dir()), served_model_name=TINY_MODEL_NAME, port=free_port(),
        max_model_len=setting.max_model_len, max_num_seqs=4,
        tensor_parallel_size=setting.tp, extra_args=extra,
    )  # fmt: skip
    backend = LocalBackend(python=str(cpu_python()), cpu=True,
                           extra_env={"VLLM_CPU_KVCACHE_SPACE": str(setting.kv_gib)})  # fmt: skip
    began = time.monotonic()
    handle = start_server(settings, backend, log_path=log)
    try:
        found = KV_LINE.findall(log.read_text(errors="replace"))
    finally:
        stopped = handle.stop()
    tokens, length, concurrency = found[-1]
    row = {
        "kv_cache_gib": setting.kv_gib,
        "max_model_len": setting.max_model_len,
        "dtype": setting.dtype,
        "tensor_parallel_size": setting.tp,
        "vllm_kv_tokens": int(tokens.replace(",", "")),
        "vllm_concurrency": float(concurrency),
        "vllm_logged_len": int(length.replace(",", "")),
        "start_s": round(time.monotonic() - began, 1),
        "stopped_cleanly": stopped,
    }
    return {**row, **plan_columns(setting, row)}


def plan_columns(setting: Setting, row: dict[str, Any]) -> dict[str, Any]:
    """The plan's figures for a measured row (pure arithmetic: --replan recomputes them)."""
    plan = planned(setting)
    logged = int(plan.step("kv_tokens_logged").value)
    vllm_tokens = int(row["vllm_kv_tokens"])
    return {
        "plan_kv_tokens": plan.kv_tokens,
        "plan_kv_tokens_logged": logged,
        "plan_kv_bytes_per_token": plan.step("kv_bytes_per_token").value,
        "plan_concurrency": round(plan.concurrency, 4),
        "capacity_vs_logged_error": (plan.kv_tokens - vllm_tokens) / vllm_tokens,
        "logged_error": (logged - vllm_tokens) / vllm_tokens,
        "concurrency_error": round(round(plan.concurrency, 2) - float(row["vllm_concurrency"]), 4),
    }


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# The plan's KV arithmetic against the real CPU vLLM",
        "",
        f"{doc['generated_at']}, vllm-cpu, tiny model (2 layers, 2 KV heads, head dim 64), "
        f"{doc['machine'].get('cpu_model', '')}. `python -m benchmarks.plan_kv`.",
        "",
        "| KV GiB | --max-model-len | --dtype | TP | B/token (plan) | vLLM logged tokens "
        "| plan: logged | error | plan: held (blocks x 128) | vLLM concurrency | plan |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['kv_cache_gib']} | {r['max_model_len']} | {r['dtype']} | "
            f"{r['tensor_parallel_size']} | {r['plan_kv_bytes_per_token']} | "
            f"{r['vllm_kv_tokens']:,} | {r['plan_kv_tokens_logged']:,} | "
            f"{r['logged_error']:+.4%} | {r['plan_kv_tokens']:,} | "
            f"{r['vllm_concurrency']:.2f}x | {r['plan_concurrency']:.2f}x |"
        )
    lines += [
        "",
        'vLLM\'s "KV cache size" is its concurrency times --max-model-len, each request rounded '
        "up to whole 128-token blocks; the tokens the cache holds are blocks x 128 (the plan's "
        "`kv_tokens`). At a length that is a block multiple the two agree.",
        "",
        f"Plan columns computed by the code at {doc.get('plan_commit') or 'the measuring commit'}"
        " from the settings; the vLLM columns are what each start logged.",
    ]
    return "\n".join(lines) + "\n"


def replan(out: Path) -> None:
    doc = json.loads((out / "plan-kv.json").read_text())
    for row in doc["results"]:
        setting = Setting(
            row["kv_cache_gib"], row["max_model_len"], row["dtype"], row["tensor_parallel_size"]
        )
        for key in [k for k in row if k.startswith("plan_") or k.endswith("_error")]:
            del row[key]
        row.update(plan_columns(setting, row))
    doc["plan_commit"] = git_commit()
    (out / "plan-kv.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "plan-kv.md").write_text(markdown(doc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--replan",
        action="store_true",
        help="recompute the plan's columns of the stored results, start nothing",
    )
    args = parser.parse_args()
    if args.replan:
        replan(args.out)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, setting in enumerate(SETTINGS):
            row = measure(setting, Path(tmp) / f"s{i}.log")
            print(json.dumps(row), flush=True)
            results.append(row)
    doc = {
        "generated_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "plan-kv.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out / "plan-kv.md").write_text(markdown(doc))


if __name__ == "__main__":
    main()
