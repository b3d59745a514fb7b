"""The report as Markdown for a pull request or a wiki page (GitHub-flavoured tables)."""

from __future__ import annotations

from collections.abc import Sequence

from reports.document_types import DoctorSection, ReportDocument
from reports.formatting import (
    fingerprint_rows,
    gate_value,
    status_mark,
    sweep_table,
    sweep_titles,
    unknown,
)


def render_markdown(document: ReportDocument) -> str:
    verdict = document["verdict"]
    fp = document["fingerprint"]
    rec = document["recommendation"]
    lines = [
        f"# vLLM acceptance report: {unknown(fp['served_model_name'] or fp['model'])}",
        "",
        f"**{verdict['headline']}**",
        "",
        _table(
            ["gate", "result", "measured", "what it means"],
            [
                [g["title"], status_mark(g["status"]), gate_value(g), g["explanation"]]
                for g in document["gates"]["results"]
            ],
        ),
        "",
        "## Recommendation",
        "",
        rec["summary"],
        *[f"- {d}" for d in rec["details"]],
        "",
        "## Deployment",
        "",
        _table(["", ""], [[k, unknown(v)] for k, v in fingerprint_rows(document)]),
        "",
        "## Doctor",
        "",
        *_doctor(document["doctor"]),
        "",
    ]
    for name, title in sweep_titles(document).items():
        lines += [f"## Sweep: {title}", "", _table(*sweep_table(document, name)), ""]
    if document["failed_settings"]:
        lines += ["## Failed settings and steps", ""]
        for f in document["failed_settings"]:
            lines.append(
                f"- **{f['label']}** ({f['step_id']}): {f['cause']}: "
                f"{_cell(unknown(f['failure_message']))}"
            )
        lines.append("")
    lines += ["## How these numbers were measured", ""]
    lines += [f"- **{k}**: {v}" for k, v in document["metric_definitions"].items()]
    lines += [f"- **{k}**: {unknown(v)}" for k, v in document["run"].items()]
    if document["warnings"]:
        lines += ["", "### Warnings", "", *[f"- ⚠ {w}" for w in document["warnings"]]]
    lines += [
        "",
        f"<sub>{document['schema']} · {document['tool']['name']} {document['tool']['version']} · "
        f"generated {document['generated_at']}</sub>",
        "",
    ]
    return "\n".join(lines)


def _doctor(doctor: DoctorSection) -> list[str]:
    if not doctor["present"]:
        return ["The doctor was not run for this sweep (no doctor.json)."]
    counts = ", ".join(f"{n} {status}" for status, n in doctor["counts"].items()) or "no checks"
    lines = [f"Overall: **{unknown(doctor['status'])}**; checks: {counts}.", ""]
    if not doctor["findings"]:
        return [*lines, "No findings."]
    rows = [
        [
            unknown(f["severity"]),
            unknown(f["id"]),
            unknown(f["message"]),
            unknown(f["evidence"]),
            unknown(f["remedy"]),
        ]
        for f in doctor["findings"]
    ]
    return [*lines, _table(["severity", "finding", "message", "evidence", "remedy"], rows)]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |"]
    out.append("|" + "|".join("---" for _ in headers) + "|")
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
