"""The report built from a SYNTHETIC run dir (tests/report_synthetic_run.py): gates, exit
status, recommendation, agreement with results.csv, JUnit validity, Markdown = HTML figures,
no secrets, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
import xmlschema
from report_checks import assert_numbers_match_results, html_table, markdown_table
from report_synthetic_run import FAKE_HF_TOKEN, FAKE_KEY, write_synthetic_run

from picoclaw_vllm import run_layout
from picoclaw_vllm.cli import main
from picoclaw_vllm.errors import ConfigError, UsageError
from reports.build import ReportResult, build_report
from reports.document import REPORT_SCHEMA, doctor_section
from reports.formatting import SWEEP_TITLES
from reports.gates import Gates
from reports.verdict import doctor_failures

XSD = Path(__file__).resolve().parent.parent / "reports" / "schemas" / "junit.xsd"

PASSING = {
    "ttft_p95_ms": 500,
    "itl_p95_ms": 50,
    "error_rate_pct": 1,
    "output_tokens_per_s": 100,
    "target_concurrency": 8,
}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_synthetic_run(tmp_path / "run")


def build(run_dir: Path, values: dict[str, object], out: Path | None = None) -> ReportResult:
    return build_report(run_dir, Gates.from_values(values), out_dir=out or run_dir / "out")


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {c.attrib["name"]: c for c in ET.parse(path).getroot().iter("testcase")}


def test_gates_set_to_pass_pass(run_dir: Path) -> None:
    result = build(run_dir, PASSING)
    assert result.passed and result.exit_code == 0
    gates = result.document["gates"]["results"]
    assert [g["gate_id"] for g in gates] == [
        "ttft_p95_ms",
        "itl_p95_ms",
        "error_rate_pct",
        "output_tokens_per_s",
        "doctor",
    ]
    assert all(g["status"] == "pass" for g in gates)
    assert {g["step_id"] for g in gates[:4]} == {"s8-tp1-c8"}  # the setting that meets them
    cases = junit_cases(result.paths["junit"])
    assert len(cases) == 5
    assert not any(c.find("failure") is not None for c in cases.values())


def test_gate_set_to_fail_fails_with_exit_1_and_junit_failure(run_dir: Path) -> None:
    result = build(run_dir, {**PASSING, "ttft_p95_ms": 300})
    assert not result.passed and result.exit_code == 1
    assert result.document["verdict"]["failed_gates"] == ["ttft_p95_ms"]
    assert result.headline.startswith("FAIL")
    root = ET.parse(result.paths["junit"]).getroot()
    assert root.find("testsuite").attrib["failures"] == "1"  # type: ignore[union-attr]
    failing = junit_cases(result.paths["junit"])["p95 TTFT ≤ 300 ms"].find("failure")
    assert failing is not None
    assert "400.0 ms" in (failing.text or "")
    assert junit_cases(result.paths["junit"])["p95 ITL ≤ 50 ms"].find("failure") is None


def test_cli_exit_status_follows_the_gates(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate_file = run_dir.parent / "gates.toml"
    gate_file.write_text("[gates]\nttft_p95_ms = 500\nerror_rate_pct = 1\n")
    common = [str(run_dir), "--slo", str(gate_file), "--target-concurrency", "8"]
    assert main(["report", *common, "--out", str(run_dir / "a")]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["report", *common, "--slo", "ttft_p95_ms=300", "--out", str(run_dir / "b")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "p95 TTFT ≤ 300 ms" in out
    assert sorted(p.name for p in (run_dir / "b").iterdir()) == [
        "report-junit.xml",
        "report.html",
        "report.json",
        "report.md",
    ]


def test_recommendation_names_setting_load_and_cost_of_next_step(run_dir: Path) -> None:
    rec = build(run_dir, {"ttft_p95_ms": 300, "output_tokens_per_s": 100}).document[
        "recommendation"
    ]
    assert rec["found"]
    assert (rec["setting_id"], rec["load"]) == ("s8-tp1", 4.0)
    assert rec["output_throughput"] == 135.0
    assert rec["goodput"] == pytest.approx(400 / 30)
    assert rec["next_step"]["step_id"] == "s8-tp1-c8"
    assert rec["next_step"]["broken_gates"] == ["ttft_p95_ms"]
    assert round(rec["next_step"]["output_throughput_gain_pct"]) == 78
    assert "max-num-seqs 8" in rec["summary"] and "4 users" in rec["summary"]


def test_nothing_measured_says_so(run_dir: Path) -> None:
    (run_dir / run_layout.RESULTS_PARQUET).unlink()
    results = pd.read_csv(run_dir / run_layout.RESULTS_CSV)
    results[results["status"] != "ok"].to_csv(run_dir / run_layout.RESULTS_CSV, index=False)
    result = build(run_dir, PASSING)
    assert result.exit_code == 1
    assert result.document["recommendation"]["summary"].startswith("No step was measured")
    explanations = [g["explanation"] for g in result.document["gates"]["results"]]
    assert any("every setting or step failed" in e for e in explanations)
    assert any("8 planned step(s) have no result" in e for e in explanations)
    assert "no measured steps" in result.paths["html"].read_text()  # the plots say so


def test_no_setting_meets_the_gates_says_which_fails_first(run_dir: Path) -> None:
    result = build(run_dir, {"ttft_p95_ms": 50, "itl_p95_ms": 100})
    rec = result.document["recommendation"]
    assert not rec["found"] and not result.passed
    assert rec["first_failing_gates"] == ["ttft_p95_ms"]
    assert "No setting meets every gate" in rec["summary"]
    assert "p95 TTFT ≤ 50 ms" in rec["summary"]


def test_target_load_not_measured_fails_and_says_so(run_dir: Path) -> None:
    result = build(run_dir, {"ttft_p95_ms": 5000, "target_concurrency": 64})
    gate = result.document["gates"]["results"][0]
    assert gate["status"] == "fail"
    assert "did not measure 64 concurrent users" in gate["explanation"]


def test_doctor_failure_fails_the_doctor_gate(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run", doctor_fails=True)
    result = build(run_dir, PASSING)
    assert result.exit_code == 1
    assert result.document["verdict"]["failed_gates"] == ["doctor"]
    doctor_gate = result.document["gates"]["results"][-1]
    assert "auth.key" in doctor_gate["explanation"]
    findings = result.document["doctor"]["findings"]
    assert findings[0]["id"] == "auth.key_mismatch"  # failures first
    assert "Set providers.vllm.api_key" in result.paths["html"].read_text()


def test_missing_doctor_is_skipped_not_failed(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run", with_doctor=False)
    result = build(run_dir, PASSING)
    assert result.passed
    assert result.document["verdict"]["skipped_gates"] == ["doctor"]
    assert (
        junit_cases(result.paths["junit"])["the doctor finds no failure"].find("skipped")
        is not None
    )
    assert "doctor was not run" in result.paths["md"].read_text()


def test_every_number_agrees_with_results_csv_synthetic(run_dir: Path) -> None:
    result = build(run_dir, PASSING)
    document = json.loads(result.paths["json"].read_text())
    assert document["schema"] == REPORT_SCHEMA
    assert assert_numbers_match_results(document, run_dir) > 200


def test_json_carries_versions_definitions_and_sample_counts(run_dir: Path) -> None:
    doc = json.loads(build(run_dir, PASSING).paths["json"].read_text())
    assert doc["tool"]["version"] and doc["platform"]["python"]
    assert doc["fingerprint"]["vllm_version"] == "0.32.0"
    assert doc["fingerprint"]["locust_version"] == "2.31.0"
    assert doc["fingerprint"]["max_model_len"] == "2048"  # from the vLLM command line
    assert doc["fingerprint"]["model"] == "tiny-llama"
    assert doc["fingerprint"]["date"] == "2027-01-15T08:00:00+00:00"
    assert "output 64 tokens" in doc["fingerprint"]["workload"]
    assert doc["fingerprint"]["gpus"] is None  # not in the manifest: shown as unknown
    assert "per event" in doc["metric_definitions"]["itl"]
    assert doc["run"]["measured_duration_s_per_step"] == [30.0]
    assert doc["run"]["warmup_s_per_step"] == [5.0]
    step = next(s for s in doc["steps"] if s["step_id"] == "s4-tp1-c8")
    assert step["requests_measured"] == 400  # warm-up records excluded
    assert step["itl_gaps"] == 388 * 63
    assert step["error_reasons"] == {"HTTP 401: bad key ***": 12}
    few = next(s for s in doc["steps"] if s["step_id"] == "s4-tp1-c1")
    assert "ttft_p95_ms" in few["gates_inconclusive"]  # 20 requests cannot bound a p95
    assert doc["verdict"]["confidence"] == 0.95


def test_gate_prefers_the_step_whose_interval_settles_it(run_dir: Path) -> None:
    # s4-tp1-c1 has the most tokens/s at 1 user but only 20 requests: its p99 is inconclusive
    doc = build(run_dir, {"ttft_p99_ms": 1000, "target_concurrency": 1}).document
    gate = doc["gates"]["results"][0]
    assert gate["status"] == "pass"
    assert gate["step_id"] == "s8-tp1-c1" and gate["rests_on"] == 400
    assert gate["interval"]["n"] == 400 and gate["interval"]["high"] < 1000
    assert gate["warnings"] == []


def test_junit_validates_against_the_shipped_xsd(run_dir: Path) -> None:
    schema = xmlschema.XMLSchema(XSD)
    for values in (PASSING, {**PASSING, "ttft_p95_ms": 1}):
        result = build(run_dir, values)
        schema.validate(result.paths["junit"])
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate("<testsuites><testsuite name='x'/></testsuites>")  # tests= missing


def test_markdown_tables_show_the_same_numbers_as_html(run_dir: Path) -> None:
    result = build(run_dir, {**PASSING, "ttft_p95_ms": 300})
    markdown, html = result.paths["md"].read_text(), result.paths["html"].read_text()
    tables = {}
    for name, title in SWEEP_TITLES.items():
        md = markdown_table(markdown, f"## Sweep: {title}\n")
        assert md == html_table(html, f"sweep-{name}")
        assert len(md) == 1 + 10  # header, 8 measured steps, 1 failed step, 1 failed setting
        tables[name] = md
    latency, throughput = tables["latency"], tables["throughput"]
    row = next(r for r in latency if r[0] == "s8-tp1" and r[3] == "8 users")
    assert row[latency[0].index("TTFT p95 ms")] == "400.0"
    row = next(r for r in throughput if r[0] == "s8-tp1" and r[3] == "8 users")
    assert row[throughput[0].index("output tok/s")] == "240.0"
    assert row[-1] == "misses p95 TTFT ≤ 300 ms"
    assert throughput[-1][-1] == "did not start (startup.cuda_oom)"
    assert throughput[5][:4] == ["s4-tp1", "4", "1", "16 users"]
    assert throughput[5][-1] == "failed (load_failed)"
    gates_md = markdown_table(markdown, f"**{result.headline}**\n")
    assert [r[2] for r in gates_md] == [r[2] for r in html_table(html, "gates")]
    assert gates_md[1][2] == "400.0 ms [381.0–463.8] (n = 400)"  # the value, its 95 % interval


def test_no_secret_in_any_format(run_dir: Path) -> None:
    result = build(run_dir, {**PASSING, "ttft_p95_ms": 1})  # fail: log excerpts, causes shown
    for fmt, path in result.paths.items():
        text = path.read_text()
        assert FAKE_KEY not in text, fmt
        assert FAKE_HF_TOKEN not in text, fmt
        if fmt != "junit":  # JUnit shows no command line or log
            assert "***" in text, fmt  # the key was there and was masked, not silently dropped
    html = result.paths["html"].read_text()
    assert "Engine core initialization failed" in html  # the log excerpts are shown
    assert "locust exited with status 1" in html
    assert "--api-key ***</code>" in html  # masking did not eat the markup


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: d.mkdir(), "sweep.json is missing"),
        (lambda d: (d.mkdir(), (d / "sweep.json").write_text("{nope")), "not valid JSON"),
        (
            lambda d: (
                d.mkdir(),
                (d / "sweep.json").write_text("{}"),
                (d / "results.csv").write_text(",".join(run_layout.COLUMNS) + "\n"),
            ),
            "have no rows yet",
        ),
        (
            lambda d: (
                d.mkdir(),
                (d / "sweep.json").write_text("{}"),
                (d / "results.csv").write_bytes(b"\x00\xff"),
            ),
            "cannot read the sweep results",
        ),
        (
            lambda d: (d.mkdir(), (d / "sweep.json").write_text("{}")),
            "no results.parquet or results.csv",
        ),
        (
            lambda d: (
                d.mkdir(),
                (d / "sweep.json").write_text("{}"),
                (d / "results.csv").write_text("a,b\n1,2\n"),
            ),
            "results lack columns",
        ),
    ],
)
def test_bad_run_dir_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: object, message: str
) -> None:
    run_dir = tmp_path / "run"
    setup(run_dir)  # type: ignore[operator]
    assert main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err


def test_bad_gates_are_config_errors(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="unknown gate"):
        Gates.from_values({"ttft_p97_ms": 1})
    with pytest.raises(ConfigError, match="needs a number"):
        Gates.from_values({"ttft_p95_ms": "fast"})
    with pytest.raises(UsageError, match="unknown report format"):
        build_report(run_dir, Gates(), formats=["pdf"])
    assert main(["report", str(run_dir), "--slo", "ttft_p95_ms"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--slo", "missing.toml"]) == 2
    bad = run_dir.parent / "bad.toml"
    bad.write_text("ttft_p95_ms = [")
    assert main(["report", str(run_dir), "--slo", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_gates_from_values_and_files(tmp_path: Path) -> None:
    gates = Gates.from_values({"p95_ttft_ms": "500", "itl_p99_ms": 80, "doctor": "false"})
    assert [(g.metric, g.stat, g.max_ms) for g in gates.latency] == [
        ("ttft", "p95", 500.0),
        ("itl", "p99", 80.0),
    ]
    assert gates.doctor is False
    path = tmp_path / "gates.json"
    path.write_text(json.dumps({"error_rate_pct": 0.5, "target_rate": 2.5}))
    gates = Gates.from_file(path)
    assert (gates.max_error_rate_pct, gates.target_rate) == (0.5, 2.5)
    with pytest.raises(ConfigError, match="not both"):
        Gates.from_values({"target_rate": 1, "target_concurrency": 2})


def test_doctor_json_is_read_defensively() -> None:
    flat = {  # the shape first announced: ids on checks, versions at the top
        "tool_version": "0.0.9",
        "vllm_version": "0.31.0",
        "checks": [{"id": "server.reachable", "status": "fail"}, "garbage"],
        "findings": [{"id": "server.unreachable", "severity": "fail"}, {"severity": "warn"}],
    }
    assert doctor_failures(flat) == ["server.reachable", "server.unreachable"]
    section = doctor_section(flat)
    assert (section["tool_version"], section["vllm_version"]) == ("0.0.9", "0.31.0")
    assert section["checks"] == [{"id": "server.reachable", "title": None, "status": "fail"}]
    assert section["findings"][1]["message"] is None  # shown as "unknown"
    assert doctor_failures({"status": "fail"}) == ["doctor status fail"]
    assert doctor_failures({"checks": "nonsense", "findings": None}) == []
    assert doctor_section({"target": "x"})["target"] is None


def test_corrupt_parquet_falls_back_to_csv_named_and_corrupt_doctor_fails_closed(
    run_dir: Path,
) -> None:
    (run_dir / run_layout.RESULTS_PARQUET).write_bytes(b"PAR1 not really")
    (run_dir / run_layout.DOCTOR_JSON).write_text("{truncated")
    with (run_dir / run_layout.RECORDS_DIR / "s8-tp1-c8.jsonl").open("a") as records:
        records.write("{half a line\n")
    result = build(run_dir, PASSING)
    # the CSV holds the same rows; a doctor.json that cannot be read is not "not run"
    assert not result.passed and result.document["verdict"]["failed_gates"] == ["doctor"]
    doctor = next(g for g in result.document["gates"]["results"] if g["gate_id"] == "doctor")
    assert "cannot be read" in doctor["explanation"]
    warnings = result.document["warnings"]
    assert any("results.parquet" in w and "reads results.csv instead" in w for w in warnings)
    assert any("s8-tp1-c8.jsonl: 1 line(s)" in w for w in warnings)
    assert assert_numbers_match_results(result.document, run_dir) > 200


def test_text_in_a_numeric_csv_column_is_a_bad_row_and_the_others_stay_numbers(
    run_dir: Path,
) -> None:
    # pandas 3 reads a CSV column holding text as its str dtype (not object): the column must
    # still become numbers, or every step of it would read as unmeasured
    (run_dir / run_layout.RESULTS_PARQUET).unlink()
    csv = run_dir / run_layout.RESULTS_CSV
    frame = pd.read_csv(csv)
    frame["output_throughput"] = frame["output_throughput"].astype(str)
    frame.loc[frame.index[0], "output_throughput"] = "fast"
    bad_step = str(frame.loc[frame.index[0], "step_id"])
    frame.to_csv(csv, index=False)
    result = build(run_dir, PASSING)
    assert any(bad_step in w and "output_throughput" in w for w in result.document["warnings"])
    values = [s["output_throughput"] for s in result.document["steps"] if s["step_id"] != bad_step]
    assert not [v for v in values if isinstance(v, str)], values
    assert sum(isinstance(v, float) for v in values) >= len(values) // 2, values
