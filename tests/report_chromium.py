"""Headless Chromium (Debian's `chromium`) for the report's real-browser tests: load a file
offline, capture console messages, dump the DOM, take a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
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
    """Runs Chromium once on `page` with a fresh profile under tmp_path."""
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    return subprocess.run(
        [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def console_messages(stderr: str) -> list[str]:
    """Console calls and uncaught exceptions, as Chromium logs them with --enable-logging."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def plot_figures(dom: str) -> dict[str, str]:
    """plot id -> the <svg> element inside its <figure class="plot">."""
    figures = {}
    for name, body in re.findall(r'<figure class="plot" id="plot-(\w+)">(.*?)</figure>', dom, re.S):
        svg = re.search(r"<svg\b.*?</svg>", body, re.S)
        figures[name] = svg.group(0) if svg else ""
    return figures


def screenshot_pixels(tmp_path: Path, page: Path, shot: Path, height: int) -> np.ndarray:
    """Screenshots the page at 1280 x height into `shot`; returns its RGB pixels as ints."""
    shot.unlink(missing_ok=True)
    result = chromium(tmp_path, page, f"--window-size=1280,{height}", f"--screenshot={shot}")
    assert console_messages(result.stderr) == []
    return np.asarray(Image.open(shot).convert("RGB")).astype(int)


def colour_count(pixels: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int((np.abs(pixels - np.array(colour)) <= 12).all(axis=2).sum())
