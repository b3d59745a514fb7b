"""The diagnosis for people: grouped, one line per check, evidence and fix under problems.

Lines are wrapped here (hanging indent, no trailing spaces) at the console's width; rich
drops colour by itself when the output is not a terminal.
"""

from __future__ import annotations

import textwrap

from rich.console import Console
from rich.text import Text

from diagnostics.catalog import CATALOG
from diagnostics.findings import Severity, Status
from diagnostics.runner import Diagnosis
from picoclaw_vllm.redact import printable, redact

MARKS = {
    Status.PASS: ("✓", "green"),
    Status.WARN: ("!", "yellow"),
    Status.FAIL: ("✗", "red"),
    Status.SKIP: ("-", "dim"),
}
NOTE_CHARS = 200


def _print(
    console: Console, text: str, first: str, rest: str, head_style: str = "", style: str = ""
) -> None:
    """text wrapped at the console width; `first` (styled head_style) starts line one."""
    width = max(40, console.width)
    lines = textwrap.wrap(
        printable(redact(text)),
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=True,
        break_on_hyphens=False,
    ) or [first.rstrip()]
    out = Text("\n".join(lines), style=style)
    if head_style:
        out.stylize(head_style, 0, len(first.rstrip()))
    console.print(out, soft_wrap=True)


def render(diagnosis: Diagnosis, console: Console, verbose: bool = False) -> None:
    t = diagnosis.target
    header = "picoclaw-vllm diagnose"
    if t is not None:
        header += f": {t.api_base}, model {t.model or '(none)'}"
    if diagnosis.vllm_version:
        header += f", vLLM {diagnosis.vllm_version}"
    _print(console, header, "", "  ", style="bold")
    group = None
    for result in diagnosis.results:
        if result.check.group != group:
            group = result.check.group
            console.print()
            _print(console, group, "", "", style="bold")
        mark, style = MARKS[result.status]
        line = result.check.title
        if result.outcome.skipped:
            line += f" (skipped: {result.outcome.skipped})"
        findings = result.outcome.findings
        if findings:
            line += f": {findings[0].message}"
        _print(console, line, f"  {mark} ", "    ", head_style=style)
        for i, finding in enumerate(findings):
            if i:
                _print(console, finding.message, "    ", "    ")
            if finding.severity is not Severity.INFO or verbose:
                _print(console, finding.evidence, f"    [{finding.id}] ", "      ", "bold")
                if finding.remedy:
                    _print(console, finding.remedy, "    fix: ", "      ", "bold")
        if verbose:
            for note in result.outcome.notes:
                note = note if len(note) <= NOTE_CHARS else note[:NOTE_CHARS] + "..."
                _print(console, note, "    · ", "      ", style="dim")
    console.print()
    _print(console, summary(diagnosis), "", "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(diagnosis: Diagnosis) -> str:
    parts = [
        f"{diagnosis.count(Status.FAIL)} failed",
        _plural(diagnosis.count(Status.WARN), "warning"),
        f"{diagnosis.count(Status.PASS)} passed",
        f"{diagnosis.count(Status.SKIP)} skipped",
    ]
    verdict = {Status.PASS: "No problems found", Status.WARN: "Warnings",
               Status.FAIL: "Problems found"}[diagnosis.status]  # fmt: skip
    return f"{verdict}: {', '.join(parts)} in {diagnosis.duration_s:.1f} s"


def render_catalog(console: Console) -> None:
    for entry in CATALOG.values():
        _print(console, entry.title, f"{entry.id:<24}", " " * 24, head_style="bold")
        _print(console, entry.description, " " * 24, " " * 24, style="dim")
