"""Builds the acceptance report from a sweep run dir: the Python API behind `report` (and the
`acceptance` command).

    from reports.build import build_report
    from reports.gates import Gates

    gates = Gates.from_values(
        {"ttft_p95_ms": 500, "itl_p95_ms": 50, "error_rate_pct": 1,
         "output_tokens_per_s": 100, "target_concurrency": 8}
    )  # or Gates.from_file(Path("gates.toml"))
    result = build_report(Path("runs/2026-11-29T16-00"), gates, formats=("html", "json"))
    result.paths      # {"html": Path(".../report/report.html"), "json": ...}
    result.passed     # every gate met (a gate that could not run, e.g. no doctor.json, is skipped)
    result.exit_code  # 0 passed, 1 a gate failed, 3 a gate inconclusive (0 if allowed)
    result.document   # the JSON document (schema picoclaw-vllm/report/v1)

A missing or corrupt run dir raises picoclaw_vllm.errors.UsageError, bad gate values
ConfigError (both exit 2 on the command line). No output contains a secret: inputs are redacted
as they are read, and every written text is scrubbed of the secrets found in them once more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from picoclaw_vllm.errors import UsageError
from reports.document import build_document
from reports.document_types import ReportDocument
from reports.gates import Gates
from reports.render_html import render_html
from reports.render_json import render_json
from reports.render_junit import render_junit
from reports.render_markdown import render_markdown
from reports.run_data import load_run, scrub

FORMATS: dict[str, tuple[str, Callable[[ReportDocument], str]]] = {
    "html": ("report.html", render_html),
    "md": ("report.md", render_markdown),
    "json": ("report.json", render_json),
    "junit": ("report-junit.xml", render_junit),
}
ALL_FORMATS = tuple(FORMATS)
DEFAULT_OUT = "report"  # inside the run dir
EXIT_INCONCLUSIVE = 3  # 2 is bad input


@dataclass(frozen=True)
class ReportResult:
    paths: dict[str, Path]
    passed: bool
    document: ReportDocument
    problems: tuple[str, ...] = ()  # what is wrong with the run's data, in plain words

    allow_inconclusive: bool = False

    @property
    def outcome(self) -> str:
        return self.document["verdict"]["outcome"]

    @property
    def exit_code(self) -> int:
        """0 passed, 1 a gate failed, 3 a gate is inconclusive (0 with allow_inconclusive)."""
        if self.outcome == "pass":
            return 0
        if self.outcome == "inconclusive":
            return 0 if self.allow_inconclusive else EXIT_INCONCLUSIVE
        return 1

    @property
    def headline(self) -> str:
        return self.document["verdict"]["headline"]


def build_report(
    run_dir: Path,
    gates: Gates,
    formats: Sequence[str] = ALL_FORMATS,
    out_dir: Path | None = None,
) -> ReportResult:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(
            f"unknown report format {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(FORMATS)}"
        )
    run = load_run(run_dir)
    document = build_document(run, gates)
    target = out_dir if out_dir is not None else run_dir / DEFAULT_OUT
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the report folder {target}: {e.strerror or e}") from None
    paths = {}
    for fmt in dict.fromkeys(formats):
        name, render = FORMATS[fmt]
        path = target / name
        text = scrub(render(document), run.secrets)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
        paths[fmt] = path
    return ReportResult(
        paths,
        document["verdict"]["passed"],
        document,
        tuple(scrub(p, run.secrets) for p in run.problems),
        gates.allow_inconclusive,
    )
