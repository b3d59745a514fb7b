"""Number flags, checked where they are parsed: a finite number within its range, or a usage
error (exit 2) that says which range. Used as argparse `type=` by every command."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable


def number(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], float]:
    """A finite float in [low, high] (an end given as open excludes it)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
        _check_range(text, value, low, high, low_open, high_open)
        return value

    parse.__name__ = "number"
    return parse


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """A whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        _check_range(text, value, low, high, False, False)
        return value

    parse.__name__ = "integer"
    return parse


def _check_range(
    text: str,
    value: float,
    low: float | None,
    high: float | None,
    low_open: bool,
    high_open: bool,
) -> None:
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range: expected {_range_text(low, high, low_open, high_open)}"
        )


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts) or "a number"


POSITIVE = number(0, low_open=True)
NON_NEGATIVE = number(0)
FRACTION = number(0, 1, low_open=True)  # e.g. --gpu-memory-utilization
PERCENT = number(0, 100)
POSITIVE_INT = integer(1)
NON_NEGATIVE_INT = integer(0)
TIMEOUT_S = number(0, 86_400, low_open=True)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_DURATION_S = 7 * 86_400


def duration(text: str) -> float:
    """Seconds from `30s`, `2m`, `500ms`, `1h` or a bare number; at most a week."""
    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 2m, 500ms)")
    seconds = float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
    if seconds > MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"duration {text!r} is over a week")
    return seconds
