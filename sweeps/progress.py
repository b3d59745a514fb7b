"""A rich console view of a running sweep (an observer) and its closing summary table."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from picoclaw_vllm.redact import printable
from picoclaw_vllm.run_layout import ResultRow
from sweeps.config import SettingPlan, SweepConfig
from sweeps.observer import Progress
from sweeps.step_figures import GoodputSlo
from sweeps.summary import best_steps, number


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def results_table(rows: list[ResultRow], title: str = "sweep results") -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("step", "status", "req/s", "out tok/s", "TTFT p50", "TTFT p99", "TPOT p50",
                 "E2EL p99", "goodput", "waiting max", "failed"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("step", "status") else "right")
    for r in rows:
        if r.get("status") != "ok":
            table.add_row(str(r["step_id"]), Text(f"failed: {r.get('failure_id')}", style="red"),
                          *["-"] * 9)  # fmt: skip
            continue
        table.add_row(
            str(r["step_id"]), "ok",
            _fmt(number(r, "request_throughput"), 2), _fmt(number(r, "output_throughput")),
            _fmt(number(r, "ttft_ms_p50")), _fmt(number(r, "ttft_ms_p99")),
            _fmt(number(r, "tpot_ms_p50"), 2), _fmt(number(r, "e2el_ms_p99")),
            _fmt(number(r, "goodput"), 2), _fmt(number(r, "server_waiting_max"), 0),
            _fmt(number(r, "failed"), 0),
        )  # fmt: skip
    return table


class RichProgress:
    """Shows the setting, step, elapsed time and live req/s and tok/s; a table at the end."""

    def __init__(self, console: Console | None = None) -> None:
        # not a terminal (a log file, CI): wide enough for the table instead of 80 columns
        self.console = console or Console(stderr=True, width=None if sys.stderr.isatty() else 160)
        self.slo = GoodputSlo()
        self._live: Live | None = None
        self._rows: list[ResultRow] = []

    def on_start(self, config: SweepConfig, plan: list[SettingPlan], run_dir: Path) -> None:
        self.slo = config.slo
        steps = sum(len(p.steps) for p in plan)
        self.console.print(f"sweep: {len(plan)} server setting(s), {steps} step(s) -> {run_dir}")
        self._live = Live(Text(""), console=self.console, refresh_per_second=4, transient=True)
        self._live.start()

    def _line(self, p: Progress) -> Text:
        where = f"[{p.step_index}/{p.steps_total}] {p.step_id or p.setting_id}"
        if p.phase == "starting":
            return Text(f"{where}: starting vLLM ...")
        return Text(
            f"{where}: {p.elapsed_s:5.1f} s  {p.requests} req ({p.failures} failed)  "
            f"{p.request_rate:6.2f} req/s  {p.token_rate:8.1f} tok/s"
            + (f"  budget: {p.budget}" if p.budget else "")
        )

    def on_update(self, progress: Progress) -> None:
        if progress.phase in (
            "step_done", "server_failed", "server_ready", "skipped", "leftover_stopped",
            "search_done",
        ):  # fmt: skip
            self._print_event(progress)
        if self._live is not None:
            self._live.update(self._line(progress))

    def _print_event(self, p: Progress) -> None:
        if p.phase == "server_ready":
            self.console.print(f"{p.setting_id}: vLLM ready after {p.elapsed_s:.0f} s")
        elif p.phase == "server_failed":
            line = printable(f"{p.setting_id}: did not start: {p.message}")
            self.console.print(Text(line, style="red"))
        elif p.phase in ("skipped", "leftover_stopped", "search_done"):
            self.console.print(f"{p.setting_id}: {p.message}")
        elif p.row is not None:
            r = p.row
            self.console.print(
                f"{p.step_id}: {_fmt(number(r, 'request_throughput'), 2)} req/s, "
                f"{_fmt(number(r, 'output_throughput'))} tok/s, "
                f"TTFT p50 {_fmt(number(r, 'ttft_ms_p50'))} ms, "
                f"{r.get('completed')} ok / {r.get('failed')} failed"
            )

    def on_complete(self, rows: list[ResultRow], run_dir: Path) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.print(results_table(rows))
        for best in best_steps(rows, self.slo):
            which = best.row["step_id"] if best.row else "no step"
            self.console.print(f"{best.label}: [bold]{which}[/]")
        self.console.print(f"results: {run_dir}")

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
