"""The load generator's own cost per agent request (PicoClaw sessions, large bodies), against
the stub server on loopback, so that building and sending 20-60 KB bodies is known never to
limit a measurement.

Two measurements, side by side in one run:
- In process: the CPU time to build one PicoClaw request body (picoclaw_request.body and
  orjson, via loadtests.agent_conversation.Conversation) for every call of whole sessions of
  the default shape (4 calls a turn, 5 turns, 2,000-character tool results): microseconds per
  body and per KB, and the body sizes.
- Locust against the instant stub (`--workload agent`, think time 0, 32 users) and the chat
  workload with short prompts (the baseline), each answer 256 token events in both, so the
  two differ in the request body only. One-process Locust on CPU 1, the stub on CPU 0 (as in
  benchmarks.ceiling). The client's CPU per request over a steady window gives the ratio
  agent / chat; repeats alternate which goes first.

    python -m benchmarks.agent_cost [--repeats 3] [--quick]
Writes benchmarks/results/agent-cost.{json,md} (quick: agent-cost-quick.*).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.ceiling import (
    CLIENT_CPU,
    STUB_CPU,
    Window,
    measure_window,
    write_prompt_file,
)
from benchmarks.common import REPO, Workload, stub_server
from benchmarks.locust_run import locust_argv, run_locust
from benchmarks.machine import machine, other_activity
from loadtests.agent_conversation import AgentShape, Conversation
from picoclaw_vllm.picoclaw import request as picoclaw_request
from sweeps.step_figures import mean, pstdev

RESULTS = REPO / "benchmarks" / "results"
ANSWER_TOKENS = AgentShape().tool_call_tokens  # the stub streams max_tokens events: 256


@dataclass(frozen=True)
class AgentCostPlan:
    concurrency: int = 32
    warm_s: float = 2.0
    window_s: float = 6.0
    repeats: int = 3
    build_sessions: int = 200


QUICK = AgentCostPlan(warm_s=1.0, window_s=3.0, repeats=1, build_sessions=20)


def build_cost(sessions: int, shape: AgentShape | None = None) -> dict[str, Any]:
    """CPU time to build every body of `sessions` whole sessions, in this process."""
    shape = shape or AgentShape(answer_tokens=ANSWER_TOKENS)
    request = picoclaw_request.RequestShape(model="stub")
    sizes: list[int] = []
    cpu = 0.0
    for n in range(sessions):
        conv = Conversation(shape, request, session_id=f"b{n}", seed=n)
        while not conv.finished:
            conv.start_turn()
            while True:
                t0 = time.process_time()
                call = conv.next_call()
                cpu += time.process_time() - t0
                sizes.append(len(call.body))
                if not conv.after_answer(call, "tool_call"):
                    break
    ordered = sorted(sizes)
    return {
        "bodies": len(sizes),
        "body_bytes_min": ordered[0],
        "body_bytes_median": ordered[len(ordered) // 2],
        "body_bytes_max": ordered[-1],
        "build_us_per_body": cpu / len(sizes) * 1e6,
        "build_us_per_kb": cpu / (sum(sizes) / 1024) * 1e6,
    }


def _window(workload: str, plan: AgentCostPlan, work: Path, tag: str) -> dict[str, Any]:
    run_s = plan.warm_s + plan.window_s + 4.0
    w = Workload(plan.concurrency, 0, 16, ANSWER_TOKENS)
    extra = (
        ["--workload", "agent", "--think-time", "0"] if workload == "agent" else []
    )  # the agent shape's other defaults: 4 calls a turn, 5 turns, 2,000-character results
    windows: list[Window | None] = []
    with stub_server(work, cpu=STUB_CPU) as stub:
        records = work / f"{tag}.jsonl"
        argv = locust_argv(
            w, base_url=stub.base_url, model="stub", run_time_s=run_s, records=records,
            step_id=tag, prompt_file=write_prompt_file(work / "prompts.jsonl"), extra=extra,
        )  # fmt: skip

        def watch(proc: subprocess.Popen[bytes]) -> None:
            windows.append(measure_window(stub, proc, plan.warm_s, plan.window_s, wait_s=60))

        run = run_locust(
            argv, records=records, log_path=work / f"{tag}.log", timeout_s=run_s + 60,
            cpu=CLIENT_CPU, during=watch,
        )  # fmt: skip
    win = windows[0] if windows else None
    if win is None:
        return {"error": f"no traffic seen (see {work / f'{tag}.log'})"}
    failed = sum(not r.ok for r in run.records)
    return {**win.as_dict(), "records": len(run.records), "failed": failed}


def run_agent_cost(plan: AgentCostPlan, work: Path, log: Any = print) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    build = build_cost(plan.build_sessions)
    log(
        f"  build: {build['build_us_per_body']:.1f} us/body, bodies "
        f"{build['body_bytes_min']}-{build['body_bytes_max']} B"
    )
    runs: list[dict[str, Any]] = []
    for r in range(plan.repeats):
        order = ("chat", "agent") if r % 2 == 0 else ("agent", "chat")
        pair: dict[str, Any] = {}
        for workload in order:
            pair[workload] = _window(workload, plan, work, f"r{r}-{workload}")
            f = pair[workload]
            log(
                f"  r{r} {workload:5s} "
                + (
                    f"{f['requests_per_s']:7.0f} req/s {f['client_cpu_us_per_request']:7.0f} "
                    f"us/req client {f['client_cores']:.2f} cores stub {f['stub_cores']:.2f}"
                    if "error" not in f
                    else f["error"]
                )
            )
        runs.append(pair)
    return {"plan": plan.__dict__, "build": build, "runs": runs, "summary": summarize(runs)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [p for p in runs if "error" not in p["agent"] and "error" not in p["chat"]]

    def spread(values: list[float]) -> dict[str, float]:
        m = mean(values)
        return {
            "mean": m,
            "min": min(values),
            "max": max(values),
            "rel_std": pstdev(values) / m if m else 0.0,
        }

    if not ok:
        return {"pairs": 0}
    out: dict[str, Any] = {"pairs": len(ok)}
    for key in ("client_cpu_us_per_request", "requests_per_core_s", "requests_per_s"):
        for workload in ("agent", "chat"):
            out[f"{workload}_{key}"] = spread([float(p[workload][key]) for p in ok])
    out["cpu_per_request_ratio"] = spread(
        [
            p["agent"]["client_cpu_us_per_request"] / p["chat"]["client_cpu_us_per_request"]
            for p in ok
        ]
    )
    return out


def render(doc: dict[str, Any]) -> str:
    lines = [
        f"# Agent workload: the load generator's own cost ({doc['started_at']})",
        "",
        f"Machine: {doc['machine'].get('cpu_model')}, {doc['machine'].get('logical_cpus')} "
        f"logical CPUs. Load average before/after: {doc['activity_before'].get('loadavg')} / "
        f"{doc['activity_after'].get('loadavg')}.",
        "",
    ]
    return "\n".join([*lines, *result_md(doc["result"])])


def result_md(result: dict[str, Any]) -> list[str]:
    b, s = result["build"], result["summary"]
    lines = [
        "## Agent requests: the load generator's own cost",
        "",
        f"Building PicoClaw request bodies in process: {b['bodies']} bodies of whole default "
        f"sessions, {b['body_bytes_min']:,}-{b['body_bytes_max']:,} bytes (median "
        f"{b['body_bytes_median']:,}); **{b['build_us_per_body']:.1f} µs CPU per body** "
        f"({b['build_us_per_kb']:.2f} µs/KB).",
        "",
    ]
    if not s.get("pairs"):
        return [*lines, "No Locust pair completed.", ""]
    lines += [
        f"Locust against the instant stub ({s['pairs']} pairs, 32 users, 256-event answers; "
        "mean and range over the pairs):",
        "",
        "| figure | agent (PicoClaw bodies) | chat (short prompts) |",
        "|---|---|---|",
    ]
    for key, label in (
        ("client_cpu_us_per_request", "client CPU µs per request"),
        ("requests_per_core_s", "requests per client core-second"),
        ("requests_per_s", "requests/s seen by the stub"),
    ):
        a, c = s[f"agent_{key}"], s[f"chat_{key}"]
        lines.append(
            f"| {label} | {a['mean']:,.0f} ({a['min']:,.0f}-{a['max']:,.0f}) | "
            f"{c['mean']:,.0f} ({c['min']:,.0f}-{c['max']:,.0f}) |"
        )
    ratio = s["cpu_per_request_ratio"]
    lines += [
        "",
        f"CPU per request, agent / chat: **{ratio['mean']:.2f}** (range {ratio['min']:.2f}-"
        f"{ratio['max']:.2f}).",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.agent_cost")
    p.add_argument("--repeats", type=int, help="Locust pairs (agent and chat)")
    p.add_argument("--quick", action="store_true", help="a short smoke run")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    plan = QUICK if args.quick else AgentCostPlan()
    if args.repeats:
        plan = AgentCostPlan(**{**plan.__dict__, "repeats": args.repeats})
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = REPO / "runs" / f"agent-cost-{stamp}"
    doc: dict[str, Any] = {
        "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "activity_before": other_activity({os.getpid()}),
    }
    doc["result"] = run_agent_cost(plan, work)
    doc["activity_after"] = other_activity({os.getpid()})
    name = "agent-cost-quick" if args.quick else "agent-cost"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out / f"{name}.md").write_text(render(doc))
    print(f"wrote {args.out / name}.md and .json")
    return 0 if doc["result"]["summary"].get("pairs") else 1


if __name__ == "__main__":
    raise SystemExit(main())
