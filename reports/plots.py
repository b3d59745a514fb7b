"""The report's plots, drawn with matplotlib from the report document and returned as inline
SVG text (no files, no network): throughput, latency with SLO lines, server queue and KV cache;
for the agent workload also TTFT by call and turn index, and turn latency, prefix-cache hit
rate and prompt tokens/s against the number of PicoClaw sessions."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reports.document_types import GateConfig, ReportDocument, SettingEntry, StepEntry

matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: smaller, searchable, crisp when printed
        "svg.hashsalt": "picoclaw-vllm",  # stable element ids, so reports diff cleanly
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
)

LineStyle = Literal[":", "-", "--"]
PositionKey = Literal["ttft_by_call_index", "ttft_by_turn_index"]
PERCENTILE_STYLES: dict[str, LineStyle] = {"p50": ":", "p95": "-", "p99": "--"}
SLO_COLOUR = "#c0392b"
GATE_LINE = "gate-line"


@dataclass(frozen=True)
class Plot:
    plot_id: str
    title: str
    caption: str
    svg: str


def make_plots(document: ReportDocument) -> list[Plot]:
    steps = [s for s in document["steps"] if s["status"] == "ok" and s.get("load") is not None]
    mode = _main_mode(steps)
    steps = [s for s in steps if (s.get("load_mode") or "concurrency") == mode]
    series = _by_setting(steps, document["fingerprint"]["settings"])
    failed = [f"{f['label']}: {f['cause']}" for f in document["failed_settings"]]
    sessions = all(s.get("workload") == "agent" for s in steps) and bool(steps)
    xlabel = (
        "request rate asked (requests/s, open loop)"
        if mode == "rate"
        else f"concurrent {'PicoClaw sessions' if sessions else 'users'} (closed loop)"
    )
    target = _target(document["gates"]["config"], mode)
    limits = {k: v for k, v in document["gates"]["config"].items() if k.endswith("_ms")}
    agent = _agent_plots(document, steps, series, failed, target, limits)
    return [
        _plot(
            "throughput",
            "Throughput against load",
            "Output tokens/s and completed requests/s per server setting. A red ✕ marks a "
            "step where some requests failed.",
            series,
            xlabel,
            failed,
            target,
            [
                ("output tokens/s", _lines("output_throughput")),
                ("requests/s", _lines("request_throughput")),
            ],
        ),
        _plot(
            "latency",
            "Latency percentiles against load",
            "TTFT and ITL (vLLM definitions): dotted p50, solid p95, dashed p99; red lines "
            "are the gates.",
            series,
            xlabel,
            failed,
            target,
            [
                ("TTFT (ms)", _percentiles("ttft", limits)),
                ("ITL (ms)", _percentiles("itl", limits)),
            ],
            key=[
                Line2D([], [], color="#444", linestyle=style, label=stat)
                for stat, style in PERCENTILE_STYLES.items()
            ],
        ),
        _plot(
            "server",
            "Server queue and KV cache per step",
            "Requests waiting in vLLM's queue (solid max, dashed mean) and the highest KV-cache "
            "usage seen. Waiting > 0 means the load is above what the setting runs at once.",
            series,
            xlabel,
            failed,
            target,
            [("requests waiting", _waiting), ("KV-cache usage (max, %)", _kv_cache)],
            key=[
                Line2D([], [], color="#444", linestyle="-", label="waiting: max"),
                Line2D([], [], color="#444", linestyle="--", label="waiting: mean"),
            ],
        ),
        *agent,
    ]


def _agent_plots(
    document: ReportDocument,
    steps: list[StepEntry],
    series: dict[str, tuple[str, list[StepEntry]]],
    failed: Sequence[str],
    target: float | None,
    limits: GateConfig,
) -> list[Plot]:
    if not any(s.get("workload") == "agent" for s in steps):
        return []
    timeout = document["fingerprint"].get("turn_timeout_s")
    return [
        _position_plot(steps, document["fingerprint"]["settings"]),
        _plot(
            "agent_sessions",
            "PicoClaw sessions: turn latency, prefix cache and prefill",
            "Turn latency (all LLM calls of one user message; dotted p50, solid p95) with the "
            "gate and PicoClaw's request_timeout; vLLM's prefix-cache hit rate (a fall means "
            "the shared system prompt and histories are evicted); prompt tokens/s (prefill).",
            series,
            "concurrent PicoClaw sessions (closed loop)",
            failed,
            target,
            [
                ("turn latency (s)", _turn_latency(limits, timeout)),
                ("prefix-cache hit rate (%)", _hit_rate),
                ("prompt tokens/s", _lines("prompt_tokens_per_s")),
            ],
            key=[
                Line2D([], [], color="#444", linestyle=":", label="turn p50"),
                Line2D([], [], color="#444", linestyle="-", label="turn p95"),
            ],
        ),
    ]


def _position_plot(steps: list[StepEntry], settings: list[SettingEntry]) -> Plot:
    """TTFT (median) by call index within a turn and by turn index within a session: the
    history grows along both, so does the prefill of every call. One line per step."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels: dict[object, str] = {s["setting_id"]: s["label"] for s in settings}
    order = list(dict.fromkeys(_cell(s, "setting_id") for s in steps))
    styles: list[LineStyle] = ["-", "--", ":"]
    drawn = False
    panels: tuple[tuple[Axes, PositionKey, str], ...] = (
        (axes[0][0], "ttft_by_call_index", "call index within a turn"),
        (axes[0][1], "ttft_by_turn_index", "turn index within a session"),
    )
    for ax, key, xlabel in panels:
        ticks: set[int] = set()
        for step in steps:
            points = step.get(key) or {}
            if not points:
                continue
            sid = _cell(step, "setting_id")
            loads = sorted({_x(s) for s in steps if _cell(s, "setting_id") == sid})
            xs = sorted(int(i) for i in points)
            ax.plot(
                xs,
                [points[str(x)]["ttft_ms_p50"] for x in xs],
                marker="o",
                markersize=4,
                color=colours[order.index(sid) % len(colours)],
                linestyle=styles[loads.index(_x(step)) % len(styles)],
                label=f"{labels.get(sid, sid)}, {_x(step):g} session"
                + ("" if _x(step) == 1 else "s"),
            )
            ticks.update(xs)
            drawn = True
        if ticks:
            ax.set_xticks(sorted(ticks))
        if not drawn:
            ax.text(0.5, 0.5, "no agent records", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("TTFT median (ms)")
        ax.set_ylim(bottom=0)
    handles, names = axes[0][0].get_legend_handles_labels()
    rows = -(-len(handles) // 3) if handles else 0
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.055 * rows + 0.01 if rows else 0, 1, 1))
    return Plot(
        "agent_ttft",
        "TTFT by position in the conversation",
        "Median time to first token of each LLM call by its index within the turn (left) "
        "and by the turn's index within the session (right), one line per setting and number "
        "of sessions: the history grows along both axes.",
        _svg(fig),
    )


def _turn_latency(limits: GateConfig, timeout: object) -> Drawer:
    def draw(ax: Axes, steps: list[StepEntry], colour: str, label: str) -> None:
        for stat, style in (("p50", ":"), ("p95", "-")):
            pairs = [
                (_x(s), _cell(s, f"turn_latency_ms_{stat}") / 1000.0)
                for s in steps
                if s.get(f"turn_latency_ms_{stat}") is not None
            ]
            if pairs:
                ax.plot(
                    *zip(*pairs, strict=True),
                    linestyle=style,
                    marker="o",
                    markersize=3,
                    color=colour,
                    label=label if stat == "p95" else None,
                )
        for stat in ("p50", "p95", "max"):
            limit = limits.get(f"turn_latency_{stat}_ms")
            if limit is not None:
                line = ax.axhline(
                    limit / 1000.0,
                    color=SLO_COLOUR,
                    linewidth=1.2,
                    linestyle="--",
                    label=f"gate: turn {stat} ≤ {limit / 1000.0:g} s",
                )
                line.set_gid(GATE_LINE)
        if isinstance(timeout, int | float) and timeout not in (
            (limits.get("turn_latency_p95_ms") or 0) / 1000.0,
        ):
            line = ax.axhline(
                timeout,
                color="#8a5300",
                linewidth=1.0,
                linestyle="-.",
                label=f"PicoClaw request_timeout {timeout:g} s",
            )
            line.set_gid(GATE_LINE)

    return draw


def _hit_rate(ax: Axes, steps: list[StepEntry], colour: str, label: str) -> None:
    pairs = [
        (_x(s), 100 * _cell(s, "server_prefix_cache_hit_rate"))
        for s in steps
        if _cell(s, "server_prefix_cache_hit_rate") is not None
    ]
    if pairs:
        ax.plot(*zip(*pairs, strict=True), marker="o", color=colour, label=label)
    ax.set_ylim(top=105)


Drawer = Callable[[Axes, list[StepEntry], str, str], None]


def _plot(
    plot_id: str,
    title: str,
    caption: str,
    series: dict[str, tuple[str, list[StepEntry]]],
    xlabel: str,
    failed: Sequence[str],
    target: float | None,
    panels: Sequence[tuple[str, Drawer]],
    key: Sequence[Line2D] = (),
) -> Plot:
    fig, axes = plt.subplots(1, len(panels), figsize=(10, 3.9), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    loads = sorted({_x(s) for _, steps in series.values() for s in steps})
    for ax, (ylabel, draw) in zip(axes[0], panels, strict=True):
        for index, (label, steps) in enumerate(series.values()):
            draw(ax, steps, colours[index % len(colours)], label)
        if target is not None:
            ax.axvline(target, color="#555", linewidth=0.8, linestyle="-.", label="target load")
        if not series:
            ax.text(0.5, 0.5, "no measured steps", ha="center", va="center", transform=ax.transAxes)
        _load_axis(ax, loads)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        _keep_data_readable(ax)
    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    handles.update({str(line.get_label()): line for line in key})
    bottom = 0.0
    if failed:
        fig.text(0.01, 0.01, "Failed — " + "; ".join(failed), color=SLO_COLOUR, fontsize=8)
        bottom = 0.06
    if handles:
        widest = max(len(label) for label in handles)
        columns = max(1, min(len(handles), 5, 150 // (widest + 8)))  # ~150 characters a row
        rows = -(-len(handles) // columns)
        fig.legend(
            handles.values(),
            handles.keys(),
            loc="lower center",
            bbox_to_anchor=(0.5, bottom),
            ncol=columns,
            fontsize=8,
            frameon=False,
        )
        bottom += 0.055 * rows + 0.01
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return Plot(plot_id, title, caption, _svg(fig))


def _keep_data_readable(ax: Axes) -> None:
    """A gate far above every measurement would flatten the data: leave its line off the
    scale and say so in the legend instead."""

    def ys(line: Line2D) -> list[float]:
        return [float(y) for y in np.asarray(line.get_ydata(), dtype=float)]

    lines = ax.get_lines()
    peak = max((y for line in lines if line.get_gid() != GATE_LINE for y in ys(line)), default=0.0)
    for line in lines:
        if line.get_gid() == GATE_LINE and peak > 0 and ys(line)[0] > 2.5 * peak:
            line.set_visible(False)
            line.set_label(f"{line.get_label()} (far above the plot)")
            ax.set_ylim(0, peak * 1.15)


def _load_axis(ax: Axes, loads: Sequence[float]) -> None:
    """Loads usually double from step to step: a log-2 axis, ticks at the measured loads."""
    if loads and loads[0] > 0 and loads[-1] / loads[0] >= 8:
        ax.set_xscale("log", base=2)
    if 0 < len(loads) <= 12:
        ax.set_xticks(loads, [f"{x:g}" for x in loads])
        ax.minorticks_off()


def _lines(column: str) -> Drawer:
    def draw(ax: Axes, steps: list[StepEntry], colour: str, label: str) -> None:
        xs, ys = _xy(steps, column)
        ax.plot(xs, ys, marker="o", color=colour, label=label)
        bad = [
            (_x(s), _cell(s, column))
            for s in steps
            if s.get("failed") and s.get(column) is not None
        ]
        if bad:
            ax.scatter(
                [b[0] for b in bad],
                [b[1] for b in bad],
                marker="x",
                s=60,
                color=SLO_COLOUR,
                zorder=3,
                label="step with failed requests",
            )

    return draw


def _percentiles(metric: str, limits: GateConfig) -> Drawer:
    def draw(ax: Axes, steps: list[StepEntry], colour: str, label: str) -> None:
        for stat, style in PERCENTILE_STYLES.items():
            xs, ys = _xy(steps, f"{metric}_ms_{stat}")
            ax.plot(
                xs,
                ys,
                linestyle=style,
                marker="o",
                markersize=3,
                color=colour,
                label=label if stat == "p95" else None,
            )
        for stat in ("mean", "p50", "p90", "p95", "p99"):
            limit = limits.get(f"{metric}_{stat}_ms")
            if limit is not None:
                line = ax.axhline(
                    limit,
                    color=SLO_COLOUR,
                    linewidth=1.2,
                    linestyle="--",
                    label=f"gate: {stat} ≤ {limit:g} ms",
                )
                line.set_gid(GATE_LINE)

    return draw


def _waiting(ax: Axes, steps: list[StepEntry], colour: str, label: str) -> None:
    xs, ys = _xy(steps, "server_waiting_max")
    ax.plot(xs, ys, marker="o", color=colour, label=label)
    xs, ys = _xy(steps, "server_waiting_mean")
    ax.plot(xs, ys, linestyle="--", marker=".", color=colour)


def _kv_cache(ax: Axes, steps: list[StepEntry], colour: str, label: str) -> None:
    pairs = [
        (_x(s), 100 * _cell(s, "server_kv_cache_max"))
        for s in steps
        if _cell(s, "server_kv_cache_max") is not None
    ]
    if pairs:
        ax.plot(*zip(*pairs, strict=True), marker="o", color=colour, label=label)
    ax.set_ylim(top=105)


def _xy(steps: list[StepEntry], column: str) -> tuple[list[float], list[float]]:
    pairs = [(_x(s), _cell(s, column)) for s in steps if s.get(column) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _by_setting(
    steps: list[StepEntry], settings: list[SettingEntry]
) -> dict[str, tuple[str, list[StepEntry]]]:
    """One line per setting; in open loop with several concurrency caps, one per cap."""
    labels: dict[object, str] = {s["setting_id"]: s["label"] for s in settings}
    caps = {
        (_cell(s, "setting_id"), s.get("concurrency"))
        for s in steps
        if s.get("load_mode") == "rate"
    }
    split = len(caps) > len({sid for sid, _ in caps})
    series: dict[str, tuple[str, list[StepEntry]]] = {}
    for step in steps:
        sid = key = _cell(step, "setting_id")
        label = labels.get(sid, sid)
        if split:
            key, label = (
                f"{sid}/{step.get('concurrency')}",
                f"{label} · cap {step.get('concurrency'):g}",
            )
        series.setdefault(key, (label, []))[1].append(step)
    for _, group in series.values():
        group.sort(key=_x)
    return series


def _x(step: StepEntry) -> float:
    """A plotted step's load (make_plots keeps only the steps that have one)."""
    load = step["load"]
    assert load is not None
    return load


def _cell(step: StepEntry, column: str) -> Any:
    """A results column of a plotted step, as it is. Any, as matplotlib takes it: the column is
    named at run time, or its cell's type is unchecked (document_types.Cell)."""
    return step.get(column)


def _main_mode(steps: list[StepEntry]) -> object:
    modes = [s.get("load_mode") or "concurrency" for s in steps]
    return max(set(modes), key=modes.count) if modes else "concurrency"


def _target(config: GateConfig, mode: object) -> float | None:
    value = config.get("target_rate" if mode == "rate" else "target_concurrency")
    return float(value) if value is not None else None


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Let CSS size the figure (the viewBox keeps its proportions).
    return re.sub(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"', r"\1", text, count=1)
