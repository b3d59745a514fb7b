"""The HTML report in a real browser: headless Chromium (Debian's `chromium`) opens the file
offline (file://, every host unresolvable), logs no console message, shows the three plots with
drawn content, and leaves a screenshot in .artifacts/ for a person to look at."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_synthetic_run import write_synthetic_run

from reports.build import build_report
from reports.gates import Gates

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("chromium is missing: run `make browser` (apt-get install chromium)")
    pytest.skip("chromium is not installed (`make browser`)", allow_module_level=True)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: nothing outside the file can load
    "--enable-logging=stderr",
    "--v=0",
    "--hide-scrollbars",
]
# matplotlib's first two series colours: only the plots use them.
PLOT_COLOURS = [(31, 119, 180), (255, 127, 14)]


def chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    return subprocess.run(
        [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


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
    figures = re.findall(r'<figure class="plot" id="plot-(\w+)">(.*?)</figure>', dom, re.S)
    assert [name for name, _ in figures] == ["throughput", "latency", "server"]
    for name, body in figures:
        svg = re.search(r"<svg\b.*?</svg>", body, re.S)
        assert svg is not None, name
        assert re.search(r'viewBox="0 0 [1-9]\d* [1-9]\d*', svg.group(0)), name
        assert len(re.findall(r"<path\b", svg.group(0))) > 20, name  # lines, markers, axes
        assert "concurrent users" in svg.group(0), name  # axis labels are real text
    assert "gate: p95 ≤ 300 ms" in figures[1][1]  # the SLO line is drawn and labelled
    assert "did not start (startup.cuda_oom)" in figures[0][1]  # failed setting marked


def test_screenshot_shows_the_plots(tmp_path: Path, report_html: Path, artifacts_dir: Path) -> None:
    shot = artifacts_dir / "report-screenshot.png"
    shot.unlink(missing_ok=True)
    result = chromium(tmp_path, report_html, "--window-size=1280,4200", f"--screenshot={shot}")
    assert console_messages(result.stderr) == []
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape == (4200, 1280, 3)
    for colour in PLOT_COLOURS:  # both series drawn, visibly (a blank plot gives 0)
        near = (np.abs(pixels - np.array(colour)) <= 12).all(axis=2).sum()
        assert near > 2000, (colour, near)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red[:600].sum() > 500  # the failed verdict at the top is red
