"""Checks shared by the report tests: does a report agree with the sweep it was built from, and
do its Markdown and HTML tables show the same figures."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd

from picoclaw_vllm import run_layout

NUMERIC_COLUMNS = [
    c
    for c in run_layout.COLUMNS
    if c
    not in (
        "step_id",
        "setting_id",
        "status",
        "failure_id",
        "failure_message",
        "load_mode",
        "workload",
    )
]


def assert_numbers_match_results(document: dict[str, Any], run_dir: Path) -> int:
    """Every number the report shows for a step equals the sweep's results.csv; returns how many
    numbers were compared (so a caller can assert that the check had something to check)."""
    results = pd.read_csv(run_dir / run_layout.RESULTS_CSV)
    rows = {str(r["step_id"]): r for r in results.to_dict(orient="records")}
    assert sorted(rows) == sorted(s["step_id"] for s in document["steps"])
    compared = 0
    for step in document["steps"]:
        row = rows[step["step_id"]]
        assert step["status"] == row["status"]
        for column in NUMERIC_COLUMNS:
            expected, actual = row[column], step[column]
            if _missing(expected):
                assert actual is None, (step["step_id"], column, actual)
                continue
            assert actual is not None, (step["step_id"], column)
            assert math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-9), (
                step["step_id"],
                column,
                actual,
                expected,
            )
            compared += 1
        if step["status"] == "ok":
            total = row["completed"] + row["failed"]
            assert math.isclose(step["error_rate_pct"], 100 * row["failed"] / total)
    for gate in document["gates"]["results"]:
        if gate["step_id"] is None or not gate["gate_id"].endswith("_ms"):
            continue
        metric, stat = gate["gate_id"].removesuffix("_ms").rsplit("_", 1)
        expected = rows[gate["step_id"]][f"{metric}_ms_{stat}"]
        assert math.isclose(gate["measured"], expected), gate
        compared += 1
    rec = document["recommendation"]
    if rec["found"]:
        row = rows[rec["step_id"]]
        assert math.isclose(rec["output_throughput"], row["output_throughput"])
        assert math.isclose(rec["request_throughput"], row["request_throughput"])
        compared += 2
    return compared


def markdown_table(markdown: str, after_heading: str) -> list[list[str]]:
    section = markdown.split(after_heading, 1)[1]
    lines = []
    for line in section.strip().splitlines():
        if not line.startswith("|"):
            break
        lines.append(line)
    return [_md_cells(line) for line in lines[:1] + lines[2:]]


def html_table(html: str, css_class: str) -> list[list[str]]:
    parser = _TableParser(css_class)
    parser.feed(html)
    return parser.rows


def _md_cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [c.strip().replace("\\|", "|") for c in cells]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class _TableParser(HTMLParser):
    def __init__(self, css_class: str) -> None:
        super().__init__()
        self.css_class = css_class
        self.inside = False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (dict(attrs).get("class") or "").split().count(self.css_class):
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)
