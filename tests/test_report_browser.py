"""The HTML report in a real browser: headless Chromium (Debian's `chromium`) opens the file
offline (file://, every host unresolvable), logs no console message, shows the three plots with
drawn content (five for an agent-workload run, with the capacity answer), and leaves a
screenshot in .artifacts/ for a person to look at."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from report_chromium import (
    CHROMIUM,
    PLOT_COLOURS,
    chromium,
    colour_count,
    console_messages,
    plot_figures,
    screenshot_pixels,
)
from report_synthetic_agent_run import write_synthetic_agent_run
from report_synthetic_run import write_synthetic_run

from picoclaw_vllm.acceptance_command import DEFAULT_AGENT_GATES
from reports.build import build_report
from reports.gates import Gates, parse_slo_argument

if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("chromium is missing: run `make browser` (apt-get install chromium)")
    pytest.skip("chromium is not installed (`make browser`)", allow_module_level=True)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = write_synthetic_run(tmp_path_factory.mktemp("browser") / "run")
    gates = Gates.from_values({"ttft_p95_ms": 300, "itl_p95_ms": 50, "target_concurrency": 8})
    return build_report(run_dir, gates, formats=["html"]).paths["html"]


def test_console_capture_sees_errors(tmp_path: Path) -> None:
    """The control: the console check below would see a console error or an uncaught one."""
    page = tmp_path / "broken.html"
    page.write_text('<p>x</p><script>console.error("e1"); throw new Error("e2");</script>')
    messages = console_messages(chromium(tmp_path, page, "--dump-dom").stderr)
    assert any('"e1"' in m for m in messages)
    assert any("Uncaught Error: e2" in m for m in messages)


def test_html_is_self_contained(report_html: Path) -> None:
    html = report_html.read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "@media print" in html


def test_page_loads_offline_without_console_errors_and_shows_plots(
    tmp_path: Path, report_html: Path
) -> None:
    result = chromium(tmp_path, report_html, "--dump-dom")
    assert console_messages(result.stderr) == []
    dom = result.stdout
    assert "FAIL: 1 gate(s) not met at 8 concurrent users" in dom
    figures = plot_figures(dom)
    assert list(figures) == ["throughput", "latency", "server"]
    for name, svg in figures.items():
        assert re.search(r'viewBox="0 0 [1-9]\d* [1-9]\d*', svg), name
        assert len(re.findall(r"<path\b", svg)) > 20, name  # lines, markers, axes
        assert "concurrent users" in svg, name  # axis labels are real text
    assert "gate: p95 ≤ 300 ms" in figures["latency"]  # the SLO line is drawn and labelled
    assert "did not start (startup.cuda_oom)" in figures["throughput"]  # failed setting marked
    assert "failed (load_failed)" in figures["throughput"]


def test_screenshot_shows_the_plots(tmp_path: Path, report_html: Path, artifacts_dir: Path) -> None:
    shot = artifacts_dir / "report-screenshot.png"
    pixels = screenshot_pixels(tmp_path, report_html, shot, 4200)
    assert pixels.shape == (4200, 1280, 3)
    for colour in PLOT_COLOURS:  # both series drawn, visibly (a blank plot gives 0)
        assert colour_count(pixels, colour) > 2000, colour
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red[:600].sum() > 500  # the failed verdict at the top is red


def test_page_prints(tmp_path: Path, report_html: Path, artifacts_dir: Path) -> None:
    pdf = artifacts_dir / "report.pdf"
    pdf.unlink(missing_ok=True)
    result = chromium(tmp_path, report_html, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert console_messages(result.stderr) == []
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", data))
    assert 2 <= pages <= 12, pages  # A4 landscape: a few pages, plots on their own page


def test_agent_report_shows_capacity_and_agent_plots(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> None:
    run_dir = write_synthetic_agent_run(tmp_path_factory.mktemp("browser-agent") / "run")
    gates = Gates.from_values(parse_slo_argument(DEFAULT_AGENT_GATES))
    page = build_report(run_dir, gates, formats=["html"]).paths["html"]
    result = chromium(tmp_path, page, "--dump-dom")
    assert console_messages(result.stderr) == []
    dom = result.stdout
    assert "it serves 8 PicoClaw sessions at once within the gates" in dom
    assert "What runs out first: the queue above --max-num-seqs" in dom
    figures = plot_figures(dom)
    assert list(figures) == ["throughput", "latency", "server", "agent_ttft", "agent_sessions"]
    for name in ("agent_ttft", "agent_sessions"):
        assert len(re.findall(r"<path\b", figures[name])) > 20, name
    assert "call index within a turn" in figures["agent_ttft"]
    assert "concurrent PicoClaw sessions" in figures["agent_sessions"]
    pixels = screenshot_pixels(tmp_path, page, artifacts_dir / "report-agent.png", 5200)
    for colour in PLOT_COLOURS:
        assert colour_count(pixels, colour) > 2000, colour
