"""The benchmark's Markdown table (results/latest.md) from its JSON document."""

from __future__ import annotations

from typing import Any

from benchmarks.agreement import COMPARED
from benchmarks.ceiling import CLIENT_LABELS

FIGURE_TITLES = {
    "output_throughput": "output tok/s",
    "request_throughput": "req/s",
    "mean_ttft_ms": "mean TTFT",
    "p99_ttft_ms": "p99 TTFT",
    "mean_tpot_ms": "mean TPOT",
    "mean_itl_ms": "mean ITL",
    "p99_itl_ms": "p99 ITL",
}


def _n(x: Any, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, (int, float)):
        return f"{x:,.{digits}f}"
    return str(x)


def _signed(x: Any) -> str:
    return "-" if x is None else f"{x:+.2f}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _rate(f: dict[str, Any], what: str) -> str:
    mean_rate = f.get(f"{what}_per_s")
    median = f.get(f"{what}_per_s_median")
    stalls = f.get("stalled_intervals") or 0
    text = f"{_n(mean_rate, 0)} ({_n(median, 0)})"
    return text + (f", {stalls} stalls" if stalls else "")


def _ratio_interval(f: dict[str, Any]) -> str:
    low, high = f.get("ratio_low"), f.get("ratio_high")
    if low is None or high is None:
        return "[one repeat: no interval] "
    apart = " ≠" if low > 1 or high < 1 else ""
    return f"[{low:.3f}–{high:.3f}{apart}] "


def agreement_md(a: dict[str, Any]) -> list[str]:
    plan = a["plan"]
    lines = [
        "## 1. Agreement with `vllm bench serve`",
        "",
        f"Same server ({a['server']['settings']}), chat completions, "
        f"{plan['prompt_tokens']} prompt tokens (chat template included), "
        f"{plan['output_tokens']} output tokens with ignore_eos, temperature 0, closed loop; "
        f"repeats alternate which client goes first. Cell: ratio this tool / vLLM, mean over "
        f"repeats [95 % interval: Student's t over the repeats' log ratios] (min-max); "
        f"'≠' marks an interval that excludes 1. Target: throughput within 3%, latencies "
        f"within 5% or 2 ms (✓/✗ on the means).",
        "",
        "| concurrency | repeats | " + " | ".join(FIGURE_TITLES[m] for m in COMPARED) + " |",
        "|---|---|" + "---|" * len(COMPARED),
    ]
    for lv in a["levels"]:
        cells = []
        for m in COMPARED:
            f = lv["figures"].get(m)
            if f is None:
                cells.append("-")
                continue
            mark = "✓" if f["within_target"] else "✗"
            cells.append(
                f"{f['ratio_mean']:.3f} {_ratio_interval(f)}"
                f"({f['ratio_min']:.3f}-{f['ratio_max']:.3f}) {mark}"
            )
        lines.append(f"| {lv['concurrency']} | {lv['repeats']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Absolute means (this tool / vLLM; ms for latencies) and each tool's spread over "
        "repeats (relative std):",
        "",
        "| concurrency | "
        + " | ".join(FIGURE_TITLES[m] for m in COMPARED)
        + " | requests | burst answers | client cores | server cores |",
        "|---|" + "---|" * (len(COMPARED) + 4),
    ]
    for lv in a["levels"]:
        cells = []
        for m in COMPARED:
            f = lv["figures"].get(m)
            if f is None:
                cells.append("-")
                continue
            digits = 1 if f["vllm_mean"] >= 10 else 2
            cells.append(
                f"{_n(f['ours_mean'], digits)} / {_n(f['vllm_mean'], digits)} "
                f"(±{_pct(f['ours_rel_std'])} / ±{_pct(f['vllm_rel_std'])})"
            )
        n = f"{_n(lv.get('ours_completed'), 0)} / {_n(lv.get('vllm_completed'), 0)}"
        burst = f"{_pct(lv.get('ours_burst_fraction'))} / {_pct(lv.get('vllm_burst_fraction'))}"
        cores = [
            f"{_n(lv.get(f'ours_{k}_cores'), 2)} / {_n(lv.get(f'vllm_{k}_cores'), 2)}"
            for k in ("client", "server")
        ]
        lines.append(f"| {lv['concurrency']} | " + " | ".join([*cells, n, burst, *cores]) + " |")
    lv0 = a["levels"][0] if a["levels"] else {}
    lines += [
        "",
        "Burst answers: requests whose first event came in the second half of their time "
        "(TTFT >= E2EL / 2), i.e. the server held the stream back and sent most of it at once. "
        "Cores: CPU seconds per wall second of the client's processes and of the vLLM server's "
        "process group during each run (2 cores in all: what a client takes, the server lacks).",
        "",
        "Separate slow events behind p99 TTFT (mean per run; the slowest 1 % of a run's "
        "requests, those that started within one concurrency of each other counted once: a "
        "stall delays every request waiting through it, so a p99 resting on one event is one "
        "observation): "
        + "; ".join(
            f"{lv['concurrency']} users: this tool {_n(lv.get('ours_p99_ttft_events'))}, "
            f"vLLM {_n(lv.get('vllm_p99_ttft_events'))}"
            for lv in a["levels"]
        )
        + ".",
        "",
        f"Mean prompt tokens per request: this tool {_n(lv0.get('ours_mean_prompt_tokens'))}, "
        f"vLLM {_n(lv0.get('vllm_mean_prompt_tokens'))}; output tokens "
        f"{_n(lv0.get('ours_mean_output_tokens'))} / {_n(lv0.get('vllm_mean_output_tokens'))}.",
        "",
    ]
    return lines


def ceiling_md(c: dict[str, Any]) -> list[str]:
    plan = c["plan"]
    tp = c["throughput"]
    lines = [
        "## 2. The load generator's ceiling (stub server on loopback, instant answers)",
        "",
        f"Concurrency {plan['concurrency']}; short answers = {plan['short_tokens']} tokens "
        f"(request/s ceiling), long answers = {plan['long_tokens']} tokens (events/s ceiling). "
        f"Counted by the stub over a {plan['window_s']:.0f} s steady window; CPU = user+system "
        f"of the client's processes over that window. "
        + (
            "One-process clients pinned to CPU 1, the stub to CPU 0; the 2-worker run is "
            "unpinned and shares both cores with the stub."
            if c.get("pinned")
            else "Nothing pinned."
        ),
        "",
        "| client | req/s (short) | CPU µs/req (short) | req/s per core (short) "
        "| events/s (long) | CPU µs/event (long) | events/s per core (long) "
        "| client cores (short / long) | stub cores (short / long) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for client, label in CLIENT_LABELS.items():
        s = tp.get("short", {}).get(client, {})
        g = tp.get("long", {}).get(client, {})
        if "error" in s or "error" in g:
            lines.append(f"| {label} | error: {s.get('error') or g.get('error')} |||||||| ")
            continue
        lines.append(
            f"| {label} | {_rate(s, 'requests')} | {_n(s.get('client_cpu_us_per_request'), 0)} | "
            f"{_n(s.get('requests_per_core_s'), 0)} | {_rate(g, 'events')} | "
            f"{_n(g.get('client_cpu_us_per_event'), 1)} | {_n(g.get('events_per_core_s'), 0)} | "
            f"{_n(s.get('client_cores'), 2)} / {_n(g.get('client_cores'), 2)} | "
            f"{_n(s.get('stub_cores'), 2)} / {_n(g.get('stub_cores'), 2)} |"
        )
    lines += [
        "",
        "Rates: mean over the window (median of its 0.5 s intervals; intervals in which the "
        "machine stalled the client, under 10% of the median, counted as `stalls`). "
        "Per core = requests (events) / client CPU seconds: what one fully busy core sustains "
        "at the measured cost, independent of the share of the core the client got.",
    ]
    lines += [
        "",
        f"### Timing accuracy (stub: first event after {plan['ttft_ms']:.0f} ms, then one "
        f"every {plan['itl_ms']:.0f} ms, {plan['accuracy_tokens']} tokens, /v1/completions)",
        "",
        "Error = client's figure minus the truth (the schedule plus the stub's own measured "
        f"lateness), in ms; mean over {plan.get('accuracy_repeats', 1)} runs per client and "
        "level (clients alternating), the range over runs in brackets.",
        "",
        "| concurrency | events/s | client | TTFT mean err (first wave / after) | TTFT p99 err "
        "| ITL mean err | ITL p50 err | ITL p99 err | requests / ITL samples |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level, clients in c["accuracy"].items():
        for client, f in clients.items():
            if "error" in f:
                lines.append(f"| {level[1:]} | | {client} | error: {f['error']} ||||||")
                continue
            lines.append(
                f"| {level[1:]} | {_n(f['events_per_s_nominal'], 0)} | {client} | "
                f"{f['ttft_mean_error_ms']:+.3f} ({f['ttft_first_wave_mean_error_ms']:+.2f} / "
                f"{_signed(f.get('ttft_after_first_wave_mean_error_ms'))}) | "
                f"{f['ttft_p99_error_ms']:+.3f} | "
                f"{f['itl_mean_error_ms']:+.3f} | {f['itl_p50_error_ms']:+.3f} | "
                f"{f['itl_p99_error_ms']:+.3f}{_range(f.get('itl_p99_error_ms_range'))} | "
                f"{f['requests']} / {f['itl_samples']} |"
            )
    lines.append("")
    return lines


def _range(r: list[float] | None) -> str:
    return f" ({r[0]:+.2f} to {r[1]:+.2f})" if r else ""


PART_TITLES = {
    "python": "bare interpreter",
    "diagnose_modules": "importing the diagnose modules",
    "cli_parser_diagnose": "the CLI parser as `diagnose` builds it",
    "cli_parser_all": "the CLI parser with every command (as `--help` builds it)",
}


def _parts(parts: dict[str, float]) -> str:
    return "; ".join(f"{PART_TITLES.get(k, k)} {v:.2f} s" for k, v in parts.items())


def doctor_md(d: dict[str, Any]) -> list[str]:
    lines = [
        "## 3. Doctor speed (`picoclaw-vllm diagnose --json`)",
        "",
        f"CLI start-up alone (`picoclaw-vllm diagnose --list`): {d['cli_startup_s']:.2f} s "
        f"({_parts(d.get('startup_parts_s') or {})}). "
        "Floor = the same HTTP requests replayed back to back on one keep-alive connection "
        "(refused: one refused loopback connect).",
        "",
        "| target | doctor (mean) | doctor (min) | floor | HTTP calls | exit | findings |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("healthy", "healthy local vLLM, --no-hub"),
        ("healthy_with_hub", "healthy local vLLM, default (hub asked)"),
        ("refused", "refused port, --no-hub"),
    ):
        r = d.get(key)
        if not r:
            continue
        calls = r.get("http_calls")
        findings = ", ".join(r.get("findings") or []) or "none"
        lines.append(
            f"| {label} | {r['doctor_s']:.2f} s | {r['doctor_s_min']:.2f} s | "
            f"{r['floor_s'] * 1000:.1f} ms | {len(calls) if calls is not None else '-'} | "
            f"{r['exit_codes'][-1] if r.get('exit_codes') else '-'} | {findings} |"
        )
    lines.append("")
    return lines


def agent_cost_md(result: dict[str, Any]) -> list[str]:
    from benchmarks.agent_cost import result_md

    return result_md(result)


def render(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    v = doc["versions"]
    lines = [
        f"# picoclaw-vllm benchmarks ({doc['mode']} run, {doc['started_at']})",
        "",
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, {m['memory_gib']} GiB, "
        f"{m['os']}. Versions: picoclaw-vllm {v['picoclaw_vllm']} ({v['git_commit']}), "
        f"vLLM {v['vllm']}, Locust {v['locust']}, Python {v['python']}. "
        f"Took {doc['duration_s'] / 60:.1f} min. Load average before/after: "
        f"{doc['activity_before']['loadavg']} / {doc.get('activity_after', {}).get('loadavg')}.",
        "",
    ]
    others = doc["activity_before"].get("busy_processes") or []
    if others:
        lines += [
            "Other busy processes at the start (noise): "
            + "; ".join(f"{o['cmd'][:60]} ({o['cpu_percent']}%)" for o in others[:4]),
            "",
        ]
    if "agreement" in doc:
        lines += agreement_md(doc["agreement"])
    if "ceiling" in doc:
        lines += ceiling_md(doc["ceiling"])
    if "doctor" in doc:
        lines += doctor_md(doc["doctor"])
    if "agent_cost" in doc:
        lines += agent_cost_md(doc["agent_cost"])
    for name, err in (doc.get("errors") or {}).items():
        lines += [f"**{name} failed**: {err}", ""]
    return "\n".join(lines).rstrip() + "\n"
