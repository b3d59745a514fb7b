"""What a sweep tells whoever watches it; the engine calls these and shows nothing itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from picoclaw_vllm.run_layout import ResultRow
from sweeps.config import SettingPlan, SweepConfig

Phase = Literal[
    "starting", "server_ready", "server_failed", "running", "step_done", "skipped",
    "leftover_stopped", "search_done",
]  # fmt: skip


@dataclass(frozen=True)
class Progress:
    phase: Phase
    setting_id: str
    step_id: str | None = None
    step_index: int = 0  # 1-based position among all steps of the sweep
    steps_total: int = 0
    elapsed_s: float = 0.0  # since this step (or this server start) began
    requests: int = 0
    failures: int = 0
    output_tokens: int = 0
    row: ResultRow | None = field(default=None, repr=False)
    message: str = ""
    api_base: str | None = None  # the server's OpenAI base URL (.../v1), once it is ready
    budget: str = ""  # budget mode: how far the step is from its sample budget

    @property
    def request_rate(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def token_rate(self) -> float:
        return self.output_tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0


class SweepObserver(Protocol):
    def on_start(self, config: SweepConfig, plan: list[SettingPlan], run_dir: Path) -> None: ...

    def on_update(self, progress: Progress) -> None: ...

    def on_complete(self, rows: list[ResultRow], run_dir: Path) -> None: ...


class SilentObserver:
    def on_start(self, config: SweepConfig, plan: list[SettingPlan], run_dir: Path) -> None:
        return None

    def on_update(self, progress: Progress) -> None:
        return None

    def on_complete(self, rows: list[ResultRow], run_dir: Path) -> None:
        return None


class RecordingObserver(SilentObserver):
    """Keeps every update (for tests and scripts)."""

    def __init__(self) -> None:
        self.updates: list[Progress] = []
        self.completed: list[ResultRow] | None = None

    def on_update(self, progress: Progress) -> None:
        self.updates.append(progress)

    def on_complete(self, rows: list[ResultRow], run_dir: Path) -> None:
        self.completed = rows
