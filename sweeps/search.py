"""A search for the highest load a server setting serves within its gates.

Pure: it decides the next level from the verdicts so far and measures nothing itself. The
load rises (doubling from `start`) until a level does not pass, then bisects between the
highest passing and the lowest non-passing level until they are `resolution` apart, within
`budget_s`. A level judged INCONCLUSIVE (its interval straddles a limit) is measured again
with a larger sample budget, up to `tries` times; a level still inconclusive then is
unsettled: the search treats it as not shown to pass (it never counts as passing) and records
it as `unsettled_at`, never as `fails_at`. A PASS rests on intervals that lie within every
limit, and a FAIL on one that lies beyond one.

    result = search(measure, start=1, resolution=1, max_level=64, budget_s=300)
    result.as_json()  # {"passes_at": 8, "fails_at": 9, "unsettled_at": None,
                      #  "binding": "ttft_p95_ms", ...}

`measure(level, attempt)` runs one step (attempt 1, 2, ...: each later attempt gathers more
samples) and returns a `Measured`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

from picoclaw_vllm.intervals import Outcome


@dataclass(frozen=True)
class Measured:
    step_id: str
    outcome: Outcome
    binding: str | None  # the gate key that failed (or straddled its limit)
    detail: str


class LevelJson(TypedDict):
    level: int
    outcome: str
    step_ids: list[str]


class SearchJson(TypedDict):
    """sweep.json `settings[SETTING_ID].search`; reports.ties.from_search reads it."""

    passes_at: int | None  # the highest level that passed
    fails_at: int | None  # the lowest level above it that failed a gate
    unsettled_at: int | None  # the lowest level above it still inconclusive, below fails_at
    binding: str | None  # the gate that failed at fails_at, else the one unsettled
    resolution: int
    levels: list[LevelJson]
    budget_exhausted: bool
    detail: str


@dataclass
class LevelResult:
    level: int
    outcome: Outcome
    step_ids: list[str] = field(default_factory=list)
    binding: str | None = None
    detail: str = ""


@dataclass
class SearchResult:
    resolution: int
    levels: list[LevelResult] = field(default_factory=list)
    budget_exhausted: bool = False

    @property
    def passes_at(self) -> int | None:
        passed = [r.level for r in self.levels if r.outcome == Outcome.PASS]
        return max(passed) if passed else None

    def _lowest_above(self, outcome: Outcome) -> int | None:
        low = self.passes_at or 0
        above = [r.level for r in self.levels if r.outcome == outcome and r.level > low]
        return min(above) if above else None

    @property
    def fails_at(self) -> int | None:
        return self._lowest_above(Outcome.FAIL)

    @property
    def unsettled_at(self) -> int | None:
        unsettled, fails = self._lowest_above(Outcome.INCONCLUSIVE), self.fails_at
        return unsettled if unsettled is not None and (fails is None or unsettled < fails) else None

    @property
    def upper(self) -> int | None:
        """The lowest level above passes_at not shown to pass (unsettled or failed)."""
        return self.unsettled_at if self.unsettled_at is not None else self.fails_at

    @property
    def boundary(self) -> LevelResult | None:
        fails = self.fails_at
        if fails is None:
            fails = self.unsettled_at
        return next((r for r in self.levels if r.level == fails), None)

    @property
    def binding(self) -> str | None:
        found = self.boundary
        return found.binding if found else None

    def answer(self, unit: str = "sessions") -> str:
        passes, fails, unsettled = self.passes_at, self.upper, self.unsettled_at
        how = ""
        if unsettled is not None:
            how = f", unsettled at {unsettled} (still inconclusive)"
        if self.fails_at is not None:
            how += f", fails at {self.fails_at}"
        if self.binding:
            how += f" on {self.binding}"
        if passes is None:
            return f"serves no level tried (lowest tried: {fails}{how})"
        out = f"serves {passes} {unit} (passes at {passes}{how})"
        if fails is None:
            out = f"serves at least {passes} {unit} (passes at {passes}, the highest level tried)"
        if self.budget_exhausted and fails is not None and fails - passes > self.resolution:
            out += f"; the time budget ended before the resolution of {self.resolution}"
        return out

    def as_json(self) -> SearchJson:
        return {
            "passes_at": self.passes_at,
            "fails_at": self.fails_at,
            "unsettled_at": self.unsettled_at,
            "binding": self.binding,
            "resolution": self.resolution,
            "levels": [
                {"level": r.level, "outcome": r.outcome.value, "step_ids": list(r.step_ids)}
                for r in self.levels
            ],
            "budget_exhausted": self.budget_exhausted,
            "detail": self.answer(),
        }


Measure = Callable[[int, int], Measured]


def search(
    measure: Measure,
    *,
    start: int,
    resolution: int,
    max_level: int,
    budget_s: float,
    tries: int = 2,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Run the search (module docstring); `clock` is what `budget_s` is measured on."""
    if start < 1 or resolution < 1 or max_level < start:
        raise ValueError("the search needs 1 <= start <= max_level and resolution >= 1")
    result = SearchResult(resolution)
    began = clock()

    def judged(level: int) -> LevelResult | None:
        entry = LevelResult(level, Outcome.INCONCLUSIVE)
        for attempt in range(1, tries + 1):
            if clock() - began >= budget_s:
                result.budget_exhausted = True
                break
            m = measure(level, attempt)
            entry.step_ids.append(m.step_id)
            entry.outcome, entry.binding, entry.detail = m.outcome, m.binding, m.detail
            if m.outcome != Outcome.INCONCLUSIVE:
                break
        if not entry.step_ids:
            return None
        result.levels.append(entry)
        return entry

    low: int | None = None  # highest level that passed
    high: int | None = None  # lowest level that did not pass
    level = start
    while high is None:
        entry = judged(level)
        if entry is None:
            return result
        if entry.outcome == Outcome.PASS:
            low = level
            if level >= max_level:
                return result
            level = min(level * 2, max_level)
        else:
            high = level
    if low is None:
        return result
    while high - low > resolution:
        mid = (low + high) // 2
        entry = judged(mid)
        if entry is None:
            return result
        if entry.outcome == Outcome.PASS:
            low = mid
        else:
            high = mid
    return result
