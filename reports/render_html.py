"""The report as one self-contained HTML file: inline CSS and SVG, no script, no network."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from reports.document_types import ReportDocument
from reports.formatting import (
    fingerprint_rows,
    gate_value,
    status_mark,
    sweep_table,
    sweep_titles,
    unknown,
)
from reports.plots import make_plots


def render_html(document: ReportDocument) -> str:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["unknown"] = unknown
    env.filters["gate_value"] = gate_value
    env.filters["mark"] = status_mark
    tables = [
        {"name": name, "title": title, "table": sweep_table(document, name)}
        for name, title in sweep_titles(document).items()
    ]
    plots = [
        {"id": p.plot_id, "title": p.title, "caption": p.caption, "svg": Markup(p.svg)}
        for p in make_plots(document)
    ]
    return env.get_template("report.html.j2").render(
        doc=document,
        fingerprint=fingerprint_rows(document),
        plots=plots,
        tables=tables,
    )
