"""The report built from a REAL small sweep on the CPU vLLM (the loadtests fixture
`small_sweep_run`, tests/conftest_sweep.py): every number in the JSON agrees with the sweep's
results.csv, gates set to pass pass and set to fail fail (exit status and JUnit), the failed
settings show their cause, no secret leaks, and the page works in Chromium."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
import xmlschema
from conftest import TEST_API_KEY
from report_checks import assert_numbers_match_results, html_table, markdown_table
from report_chromium import (
    CHROMIUM,
    PLOT_COLOURS,
    chromium,
    colour_count,
    console_messages,
    plot_figures,
    screenshot_pixels,
)

from picoclaw_vllm import run_layout
from picoclaw_vllm.cli import main
from reports.formatting import SWEEP_TITLES

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]

XSD = Path(__file__).resolve().parent.parent / "reports" / "schemas" / "junit.xsd"
GENEROUS = "ttft_p95_ms=120000,itl_p95_ms=60000,error_rate_pct=50"
IMPOSSIBLE = "ttft_p95_ms=0.001"
TARGET = "6"  # one of the small sweep's concurrencies


@pytest.fixture(scope="module")
def real_run(request: pytest.FixtureRequest) -> Path:
    try:
        return Path(request.getfixturevalue("small_sweep_run"))
    except pytest.FixtureLookupError:
        pytest.skip("the real-sweep fixture small_sweep_run is not registered")


@pytest.fixture(scope="module")
def passing(real_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Report folder of a run with generous gates (the run dir itself is left untouched)."""
    out = tmp_path_factory.mktemp("real-pass")
    argv = ["report", str(real_run), "--slo", GENEROUS, "--target-concurrency", TARGET]
    assert main([*argv, "--no-doctor-gate", "--out", str(out)]) == 0
    return out


def test_every_number_in_the_json_agrees_with_results_csv(real_run: Path, passing: Path) -> None:
    document = json.loads((passing / "report.json").read_text())
    results = pd.read_csv(real_run / run_layout.RESULTS_CSV)
    ok = results[results["status"] == "ok"]
    assert len(ok) >= 4, "the small sweep should have measured steps"
    compared = assert_numbers_match_results(document, real_run)
    assert compared >= len(ok) * 40  # every load, latency and server column of every step
    assert document["run"]["requests_measured_total"] == int((ok["completed"] + ok["failed"]).sum())
    best = ok[ok["concurrency"] == int(TARGET)].sort_values("output_throughput").iloc[-1]
    gates = {g["gate_id"]: g for g in document["gates"]["results"]}
    assert gates["ttft_p95_ms"]["step_id"] == best["step_id"]
    assert gates["ttft_p95_ms"]["measured"] == pytest.approx(best["ttft_ms_p95"])
    assert gates["ttft_p95_ms"]["rests_on"] == best["completed"]
    assert (
        document["fingerprint"]["vllm_version"]
        == json.loads((real_run / run_layout.MANIFEST).read_text())["vllm_version"]
    )


def test_markdown_and_html_show_the_same_numbers(passing: Path) -> None:
    markdown = (passing / "report.md").read_text()
    html = (passing / "report.html").read_text()
    for name, title in SWEEP_TITLES.items():
        md = markdown_table(markdown, f"## Sweep: {title}\n")
        assert len(md) > 4
        assert md == html_table(html, f"sweep-{name}")


def test_failed_settings_show_their_cause(real_run: Path, passing: Path) -> None:
    results = pd.read_csv(real_run / run_layout.RESULTS_CSV)
    failed = results[results["status"] != "ok"]
    document = json.loads((passing / "report.json").read_text())
    assert [f["step_id"] for f in document["failed_settings"]] == sorted(
        failed["step_id"], key=[s["step_id"] for s in document["steps"]].index
    )
    html = (passing / "report.html").read_text()
    for _, row in failed.iterrows():
        assert f"({row['failure_id']})" in html


def test_gate_set_to_fail_fails_with_exit_1_and_junit(real_run: Path, tmp_path: Path) -> None:
    argv = ["report", str(real_run), "--target-concurrency", TARGET, "--out", str(tmp_path)]
    assert main([*argv, "--slo", IMPOSSIBLE, "--format", "junit,json"]) == 1
    schema = xmlschema.XMLSchema(XSD)
    schema.validate(tmp_path / "report-junit.xml")
    cases = {c.attrib["name"]: c for c in ET.parse(tmp_path / "report-junit.xml").iter("testcase")}
    assert cases["p95 TTFT ≤ 0.001 ms"].find("failure") is not None
    document = json.loads((tmp_path / "report.json").read_text())
    assert document["verdict"]["passed"] is False
    assert not document["recommendation"]["found"]
    assert document["recommendation"]["first_failing_gates"] == ["ttft_p95_ms"]


def test_gates_set_to_pass_give_a_valid_passing_junit(passing: Path) -> None:
    xmlschema.XMLSchema(XSD).validate(passing / "report-junit.xml")
    root = ET.parse(passing / "report-junit.xml").getroot()
    assert root.attrib["failures"] == "0" and int(root.attrib["tests"]) == 3
    document = json.loads((passing / "report.json").read_text())
    assert document["recommendation"]["found"]


def test_no_secret_in_any_report(passing: Path) -> None:
    for path in passing.iterdir():
        assert TEST_API_KEY not in path.read_text(), path.name


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make browser`)")
def test_real_report_in_chromium(tmp_path: Path, passing: Path, artifacts_dir: Path) -> None:
    page = passing / "report.html"
    result = chromium(tmp_path, page, "--dump-dom")
    assert console_messages(result.stderr) == []
    figures = plot_figures(result.stdout)
    assert list(figures) == ["throughput", "latency", "server"]
    for name, svg in figures.items():
        assert len(re.findall(r"<path\b", svg)) > 20, name
    pixels = screenshot_pixels(tmp_path, page, artifacts_dir / "report-real-sweep.png", 4000)
    for colour in PLOT_COLOURS:
        assert colour_count(pixels, colour) > 1000, colour
