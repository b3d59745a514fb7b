"""Reading answers through Locust's FastHttpSession from a raw socket server that misbehaves.

Locust patches its interpreter with gevent, so each case runs in tests/http_stream_probe.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).with_name("http_stream_probe.py")


def outcome(scenario: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(PROBE), scenario], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_events_are_timed_as_they_arrive() -> None:
    out = outcome("paced")
    assert out["ok"], out["error"]
    assert out["output_tokens"] == 3 and len(out["itl_ms"]) == 2
    # each gap shows the server's 200 ms pause: no read waited for more bytes than it had
    assert all(gap > 100 for gap in out["itl_ms"])
    assert out["ttft_ms"] < 100


def test_connection_closed_mid_stream_is_a_failure() -> None:
    out = outcome("cut")
    assert not out["ok"]
    assert out["error"].startswith("stream broken after 1 events")


def test_html_error_page() -> None:
    out = outcome("html")
    assert not out["ok"] and out["error"] == "HTTP 502: 502 Bad Gateway"


def test_json_instead_of_a_stream() -> None:
    out = outcome("json")
    assert not out["ok"] and out["error"].startswith("not an event stream (application/json)")


@pytest.mark.parametrize("scenario", ["refused"])
def test_connection_refused(scenario: str) -> None:
    out = outcome(scenario)
    assert not out["ok"] and "refused" in out["error"].lower()
