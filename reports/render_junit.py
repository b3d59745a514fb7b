"""The gates as JUnit XML (Jenkins/Ant dialect, reports/schemas/junit.xsd): one testcase per
gate, so any CI shows which gate failed and why."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET

from reports.document_types import ReportDocument
from reports.formatting import gate_value, unknown

SUITE_NAME = "picoclaw-vllm acceptance gates"
CLASS_NAME = "picoclaw_vllm.acceptance"


def render_junit(document: ReportDocument) -> str:
    results = document["gates"]["results"]
    failures = sum(r["status"] in ("fail", "inconclusive") for r in results)
    skipped = sum(r["status"] == "skip" for r in results)
    counts = {
        "tests": str(len(results)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": "0",
    }
    suites = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": SUITE_NAME,
            **counts,
            "timestamp": document["generated_at"][:19],
            "hostname": socket.gethostname() or "localhost",
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in _properties(document).items():
        ET.SubElement(properties, "property", name=name, value=unknown(value))
    for result in results:
        case = ET.SubElement(
            suite, "testcase", name=result["title"], classname=CLASS_NAME, time="0"
        )
        text = f"{result['explanation']}\nmeasured: {gate_value(result)}"
        if result["warnings"]:
            text += "\nwarnings: " + "; ".join(result["warnings"])
        if result["status"] in ("fail", "inconclusive"):
            kind = "gate" if result["status"] == "fail" else "inconclusive"  # never a pass
            failure = ET.SubElement(case, "failure", message=result["explanation"], type=kind)
            failure.text = text
        elif result["status"] == "skip":
            ET.SubElement(case, "skipped", message=result["explanation"])
        else:
            ET.SubElement(case, "system-out").text = text
    out = [document["verdict"]["headline"], document["recommendation"]["summary"]]
    out += document["recommendation"]["details"] + document["warnings"]
    ET.SubElement(suite, "system-out").text = "\n".join(out)
    ET.SubElement(suite, "system-err").text = ""
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _properties(document: ReportDocument) -> dict[str, object]:
    fp = document["fingerprint"]
    rec = document["recommendation"]
    agent = (
        {"workload": "agent", "picoclaw_sessions_served": rec.get("sessions")}
        if rec.get("workload") == "agent"
        else {}
    )
    return {
        "report.schema": document["schema"],
        "tool.version": document["tool"]["version"],
        "run": document["run"]["name"],
        "target": document["verdict"]["target"],
        "model": fp["model"],
        "vllm.version": fp["vllm_version"],
        "recommendation": document["recommendation"]["summary"],
        **agent,
    }
