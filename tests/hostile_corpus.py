"""The bad-input corpus: generated fixtures (configs, run dirs, files) and the command line each
is fed to, with what must come back. Used by tests/test_hostile_inputs.py; no vLLM needed.

A case builds its inputs under a tmp dir and returns the argv; `expect` is the exit code and
the words the one-line message must hold. Stand-in servers (127.0.0.1) are in
tests/diagnose_standins.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from report_synthetic_run import write_synthetic_run

from picoclaw_vllm import run_layout

DEEP = 100_000  # nesting deeper than any JSON reader's recursion allows
BINARY = bytes(range(256)) * 8


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], list[str]]  # tmp dir -> argv
    exit_code: int
    words: tuple[str, ...]  # all must be in the output (stdout + stderr)


def deep_json() -> str:
    return "[" * DEEP + "]" * DEEP


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def _config(tmp: Path, data: object | str, security: str | bytes | None = None) -> Path:
    text = data if isinstance(data, str) else json.dumps(data)
    path = _write(tmp / "home" / "config.json", text)
    if security is not None:
        _write(tmp / "home" / ".security.yml", security)
    return path


def _legacy(**defaults: object) -> dict[str, object]:
    return {
        "agents": {"defaults": {"model": "vllm/m", **defaults}},
        "providers": {"vllm": {"api_base": "http://127.0.0.1:9/v1"}},
    }


def _v3(**entry: object) -> dict[str, object]:
    return {
        "version": 3,
        "model_list": [{"model_name": "m", "model": "vllm/m", **entry}],
        "agents": {"defaults": {"model_name": "m"}},
    }


def diagnose_config(
    data: object | str, security: str | bytes | None = None
) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = _config(tmp, data, security)
        return ["diagnose", "--config", str(path), "--check", "config", "--no-hub"]

    return build


def diagnose_flags(*flags: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["diagnose", "--check", "config", "--no-hub", *flags]


def sweep_flags(*flags: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["sweep", "--out", str(tmp / "run"), *flags]


def report_flags(*flags: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        run = write_synthetic_run(tmp / "run")
        return ["report", str(run), "--format", "json", "--out", str(tmp / "out"), *flags]

    return build


# --- the config corpus: each is what PicoClaw could not read, named by key and line -------
CONFIG_CASES = [
    Case("config deeply nested", diagnose_config(deep_json()), 2, ("nested too deeply",)),
    Case("config NaN", diagnose_config('{"agents": {"defaults": {"max_tokens": NaN}}}'), 2,
         ("NaN is not a JSON number", ":1:")),
    Case("config Infinity", diagnose_config('{\n"agents": {"defaults": {"max_tokens": Infinity}}}'),
         2, ("Infinity is not a JSON number", ":2:")),
    Case("config -Infinity", diagnose_config('{"x": -Infinity}'), 2, ("Infinity",)),
    Case("config binary", diagnose_config(BINARY.decode("latin-1")), 2, ("config_invalid",)),
    Case("config api_base a number", diagnose_config(
        {"providers": {"vllm": {"api_base": 8000}}}), 2,
        ("providers.vllm.api_base", "is a number (8000)", "expects a string")),
    Case("config api_base unparsable", diagnose_config(
        {"providers": {"vllm": {"api_base": "http://[::1/v1"}}}), 2,
        ("providers.vllm.api_base", "not a valid URL")),
    Case("config max_tokens a string", diagnose_config(_legacy(max_tokens="lots")), 2,
         ("agents.defaults.max_tokens", "is a string", "whole number")),
    Case("config max_tokens negative", diagnose_config(_legacy(max_tokens=-5)), 2,
         ("agents.defaults.max_tokens is -5", "above 0")),
    Case("config max_tokens a float", diagnose_config(_legacy(max_tokens=512.5)), 2,
         ("agents.defaults.max_tokens", "whole number")),
    Case("config fallbacks a string", diagnose_config(_legacy(model_fallbacks="notalist")), 2,
         ("agents.defaults.model_fallbacks", "list of strings")),
    Case("config model a list", diagnose_config(_legacy(model=["a"])), 2,
         ("agents.defaults.model", "is a list")),
    Case("config providers a list", diagnose_config({"providers": []}), 2,
         ("providers is a list",)),
    Case("config top-level list", diagnose_config("[1, 2]"), 2, ("top level is a list",)),
    Case("config model_list an object", diagnose_config({"version": 3, "model_list": {}}), 2,
         ("model_list is an object",)),
    Case("config model_list entry a string", diagnose_config(
        {"version": 3, "model_list": ["m"]}), 2, ("model_list[0] is a string",)),
    Case("config v3 streaming a string", diagnose_config(_v3(streaming="yes")), 2,
         ("model_list[0].streaming", "true or false")),
    Case("config v3 api_keys a number", diagnose_config(_v3(api_keys=5)), 2,
         ("model_list[0].api_keys",)),
    Case("config request_timeout zero", diagnose_config(_v3(request_timeout=0)), 2,
         ("model_list[0].request_timeout is 0",)),
    Case("security.yml binary", diagnose_config(_v3(), BINARY), 2,
         (".security.yml", "not UTF-8 text")),
    Case("security.yml a list", diagnose_config(_v3(), "- a\n- b\n"), 2,
         (".security.yml", "top level is a list")),
    Case("security.yml model_list a list", diagnose_config(_v3(), "model_list: [1]\n"), 2,
         (".security.yml", "model_list is a list")),
    Case("security.yml api_keys a mapping", diagnose_config(
        _v3(), "model_list:\n  m:\n    api_keys: {a: 1}\n"), 2, (".security.yml", "api_keys")),
    Case("security.yml deeply nested", diagnose_config(_v3(), "[" * 5000 + "]" * 5000), 2,
         (".security.yml",)),
    # read, but not as it looks: a warning that says so, exit 0
    Case("config api_base null", diagnose_config({"providers": {"vllm": {"api_base": None}}}), 0,
         ("config_ignored", "api_base is null", "default http://localhost:8000/v1")),
    Case("config api_base empty", diagnose_config({"providers": {"vllm": {"api_base": " "}}}), 0,
         ("api_base is empty",)),
    Case("config legacy beside v3", diagnose_config(
        {**_v3(), "providers": {"vllm": {"api_base": "http://other:1/v1"}}}), 0,
        ("providers.vllm is ignored", "model_list")),
]  # fmt: skip


def _picoclaw_home_file(tmp: Path) -> list[str]:
    home = _write(tmp / "not-a-dir", "x")
    os.environ["PICOCLAW_HOME"] = str(home)  # restored by the test's monkeypatch
    return ["diagnose", "--check", "config", "--no-hub"]


def _config_loop(tmp: Path) -> list[str]:
    (tmp / "a.json").symlink_to(tmp / "b.json")
    (tmp / "b.json").symlink_to(tmp / "a.json")
    return ["diagnose", "--config", str(tmp / "a.json"), "--no-hub"]


def _config_dir(tmp: Path) -> list[str]:
    (tmp / "cfgdir").mkdir()
    return ["diagnose", "--config", str(tmp / "cfgdir"), "--check", "config", "--no-hub"]


def _gpu_recording(data: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = _write(tmp / "gpus.json", data)
        return ["diagnose", "--gpu-recording", str(path), "--check", "gpu_memory", "--no-hub"]

    return build


DIAGNOSE_CASES = [
    Case("PICOCLAW_HOME a file", _picoclaw_home_file, 2, ("PICOCLAW_HOME", "is a file")),
    Case("--config symlink loop", _config_loop, 2, ("symbolic link loop",)),
    Case("--config a folder", _config_dir, 2, ("is a folder",)),
    Case("--gpu-recording list", _gpu_recording("[1]"), 2, ("--gpu-recording", "JSON object")),
    Case("--gpu-recording wrong shape", _gpu_recording('{"gpus": [{"name": 1}]}'), 2,
         ("--gpu-recording", "not a GPU recording", "index")),
    Case("--gpu-recording deep", _gpu_recording(deep_json()), 2, ("nested too deeply",)),
    Case("--gpu-recording NaN", _gpu_recording('{"gpus": NaN}'), 2, ("NaN",)),
    Case("--api-base empty", diagnose_flags("--api-base", ""), 2, ("--api-base is empty",)),
    Case("--api-base blank", diagnose_flags("--api-base", "  "), 2, ("--api-base is empty",)),
    Case("--api-base unclosed IPv6", diagnose_flags("--api-base", "http://[::1/v1"), 2,
         ("not a valid URL",)),
    Case("--api-base bad port", diagnose_flags("--api-base", "http://127.0.0.1:99999/v1"), 2,
         ("not a valid URL",)),
    Case("--api-base no host", diagnose_flags("--api-base", "http:///v1"), 2, ("no host",)),
    Case("--api-base control char", diagnose_flags("--api-base", "http://h/v1\x1b[2J"), 2,
         ("control characters",)),
    *(
        Case(f"{flag} {value}", diagnose_flags(flag, value), 2, (flag, words))
        for flag, value, words in (
            ("--timeout", "nan", "not a finite number"),
            ("--timeout", "inf", "not a finite number"),
            ("--timeout", "1e309", "not a finite number"),
            ("--timeout", "-1", "out of range"),
            ("--timeout", "0", "out of range"),
            ("--timeout", "ten", "not a number"),
            ("--ttft-threshold", "-1", "out of range"),
            ("--itl-threshold", "nan", "not a finite number"),
            ("--probe-requests", "-5", "out of range"),
            ("--probe-requests", "0", "out of range"),
            ("--probe-requests", "100000000", "out of range"),
            ("--probe-requests", "2.5", "not a whole number"),
            ("--gpu-memory-utilization", "5", "out of range"),
            ("--gpu-memory-utilization", "0", "out of range"),
            ("--max-model-len", "-1", "out of range"),
        )
    ),
]  # fmt: skip


# --- the report corpus: a run dir damaged one way each ------------------------------------
def _damaged_run(change: Callable[[Path], None], *flags: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        run = write_synthetic_run(tmp / "run")
        change(run)
        return ["report", str(run), "--format", "json,md", "--out", str(tmp / "out"),
                "--slo", "error_rate_pct=5", *flags]  # fmt: skip

    return build


def _set_value(column: str, value: object, step: str = "s8-tp1-c8") -> Callable[[Path], None]:
    def change(run: Path) -> None:
        (run / run_layout.RESULTS_PARQUET).unlink()
        frame = pd.read_csv(run / run_layout.RESULTS_CSV, dtype=object)
        frame.loc[frame["step_id"] == step, column] = value
        frame.to_csv(run / run_layout.RESULTS_CSV, index=False)

    return change


def _cut_mid_row(run: Path) -> None:
    (run / run_layout.RESULTS_PARQUET).unlink()
    text = (run / run_layout.RESULTS_CSV).read_text()
    lines = text.splitlines()
    ok_rows = [i for i, line in enumerate(lines) if ",ok," in line]
    keep = lines[: ok_rows[-1] + 1]
    keep[-1] = keep[-1][: len(keep[-1]) // 3]
    (run / run_layout.RESULTS_CSV).write_text("\n".join(keep) + "\n")


def _only_bad_rows(run: Path) -> None:
    (run / run_layout.RESULTS_PARQUET).unlink()
    frame = pd.read_csv(run / run_layout.RESULTS_CSV, dtype=object)
    ok = frame["status"] == "ok"
    frame.loc[ok, "output_throughput"] = "-131.7"
    frame.loc[ok, "concurrency"] = "-2"
    frame.to_csv(run / run_layout.RESULTS_CSV, index=False)


def _write_file(name: str, data: str | bytes) -> Callable[[Path], None]:
    return lambda run: _write(run / name, data) and None


def _record_line(line: str) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        with (run / run_layout.RECORDS_DIR / "s8-tp1-c8.jsonl").open("a") as f:
            f.write(line + "\n")

    return change


def _drop_row(step: str) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        (run / run_layout.RESULTS_PARQUET).unlink()
        frame = pd.read_csv(run / run_layout.RESULTS_CSV, dtype=object)
        frame[frame["step_id"] != step].to_csv(run / run_layout.RESULTS_CSV, index=False)

    return change


def _slo_file(data: bytes, suffix: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        run = write_synthetic_run(tmp / "run")
        path = _write(tmp / f"gates{suffix}", data)
        return ["report", str(run), "--format", "json", "--out", str(tmp / "out"),
                "--slo", str(path)]  # fmt: skip

    return build


INVALID = ("FAIL", "invalid data")
REPORT_CASES = [
    *(
        Case(f"results {column}={value}", _damaged_run(_set_value(column, value)), 1,
             ("FAIL", "s8-tp1-c8", words))
        for column, value, words in (
            ("output_throughput", "nan", "missing"),
            ("output_throughput", "lots", "not a number"),
            ("output_throughput", "-131.7", "outside"),
            ("output_throughput", "inf", "infinite"),
            ("output_throughput", "1e308", "outside"),
            ("ttft_ms_p95", "-5", "outside"),
            ("concurrency", "-2", "outside"),
            ("concurrency", "2.5", "whole number"),
            ("max_num_seqs", "1e+308", "outside"),
            ("tensor_parallel_size", "-3", "outside"),
            ("completed", "0", "no request was measured"),
            ("status", "maybe", "neither ok nor failed"),
            ("load_mode", "sideways", "neither concurrency nor rate"),
            ("workload", "chaos", "neither chat nor agent"),
        )
    ),
    Case("results cut mid-row", _damaged_run(_cut_mid_row), 1, ("FAIL",)),
    Case("results all invalid", _damaged_run(_only_bad_rows), 1,
         ("FAIL", "No step was measured")),
    Case("planned step missing", _damaged_run(_drop_row("s8-tp1-c4")), 1,
         ("FAIL", "planned step(s) have no result")),
    Case("target never measured", _damaged_run(lambda run: None, "--target-concurrency", "777"),
         1, ("FAIL", "777 concurrent users")),
    Case("target rate never measured", _damaged_run(lambda run: None, "--target-rate", "3"),
         1, ("FAIL", "3 requests/s")),
    Case("results.parquet corrupt", _damaged_run(_write_file(
        run_layout.RESULTS_PARQUET, b"PAR1 junk")), 0, ("PASS", "results.parquet")),
    Case("sweep.json deeply nested", _damaged_run(_write_file(run_layout.MANIFEST, deep_json())),
         2, ("sweep.json", "nested too deeply")),
    Case("sweep.json binary", _damaged_run(_write_file(run_layout.MANIFEST, BINARY)), 2,
         ("sweep.json", "not UTF-8")),
    Case("sweep.json NaN", _damaged_run(_write_file(run_layout.MANIFEST, '{"a": NaN}')), 2,
         ("sweep.json", "NaN")),
    Case("doctor.json deeply nested", _damaged_run(_write_file(
        run_layout.DOCTOR_JSON, deep_json())), 1, ("FAIL", "doctor")),
    Case("doctor.json truncated", _damaged_run(_write_file(run_layout.DOCTOR_JSON, '{"ch')), 1,
         ("FAIL", "doctor")),
    Case("doctor.json wrong shape", _damaged_run(_write_file(
        run_layout.DOCTOR_JSON, '{"checks": 5}')), 1, ("FAIL", "doctor")),
    Case("record line deeply nested", _damaged_run(_record_line(deep_json())), 0, ("PASS",)),
    Case("record line binary", _damaged_run(_record_line("\x00\x01garbage")), 0, ("PASS",)),
    Case("--slo binary file", _slo_file(BINARY, ".toml"), 2, ("gate file", "not UTF-8")),
    Case("--slo deeply nested json", _slo_file(deep_json().encode(), ".json"), 2,
         ("gate file", "nested too deeply")),
    Case("--slo NaN json", _slo_file(b'{"ttft_p95_ms": NaN}', ".json"), 2, ("NaN",)),
    Case("--slo a folder", report_flags("--slo", "/"), 2, ("--slo", "a folder")),
    Case("--slo deeply nested toml", _slo_file(b"a = " + b"[" * 5000 + b"]" * 5000, ".toml"), 2,
         ("gate file",)),
    *(
        Case(f"report {flag} {value}", report_flags(flag, value), 2, (flag, words))
        for flag, value, words in (
            ("--target-concurrency", "-1", "out of range"),
            ("--target-concurrency", "0", "out of range"),
            ("--target-rate", "nan", "not a finite number"),
            ("--target-rate", "-2", "out of range"),
        )
    ),
]  # fmt: skip


# --- the sweep corpus: refused before anything starts -------------------------------------
def _sweep_out_file(tmp: Path) -> list[str]:
    _write(tmp / "taken", "a file")
    return ["sweep", "--out", str(tmp / "taken"), "--concurrency", "1"]


def _sweep_prompt_file(data: bytes | str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = _write(tmp / "prompts.jsonl", data)
        return ["sweep", "--out", str(tmp / "run"), "--prompt-file", str(path)]

    return build


SWEEP_CASES = [
    Case("sweep --resume missing", sweep_flags("--resume"), 2, ("--resume", "does not exist")),
    Case("sweep --out a file", _sweep_out_file, 2, ("--out", "is a file")),
    Case("sweep --prompt-file binary", _sweep_prompt_file(BINARY), 2,
         ("--prompt-file", "not UTF-8")),
    Case("sweep --prompt-file deep", _sweep_prompt_file(deep_json()), 2,
         ("--prompt-file", "nested too deeply")),
    Case("sweep --prompt-file no prompts", _sweep_prompt_file('{"x": 1}\n'), 2,
         ("--prompt-file", "no prompts")),
    Case("sweep --prompt-file bad messages", _sweep_prompt_file('{"messages": [1]}\n'), 2,
         ("--prompt-file", "messages")),
    Case("sweep --prompt-file missing", sweep_flags("--prompt-file", "/nonexistent/p.jsonl"), 2,
         ("--prompt-file", "no such file")),
    Case("sweep --api-base unclosed IPv6", sweep_flags(
        "--launch", "external", "--api-base", "http://[::1/v1"), 2, ("not a valid URL",)),
    Case("sweep --api-base empty", sweep_flags("--launch", "external", "--api-base", ""), 2,
         ("--api-base is empty",)),
    *(
        Case(f"sweep {flag} {value}", sweep_flags(flag, value), 2, (flag,))
        for flag, value in (
            ("--max-model-len", "-1"), ("--gpu-memory-utilization", "5"),
            ("--burstiness", "nan"), ("--burstiness", "0"), ("--concurrency", "0"),
            ("--concurrency", "1,-8"), ("--rate", "inf"), ("--rate", "nan"), ("--rate", "-1"),
            ("--prompt-tokens", "-1"), ("--output-tokens", "0"), ("--slo-ttft-ms", "-1"),
            ("--slo-tpot-ms", "inf"), ("--workers", "-1"), ("--duration", "99999999999h"),
            ("--prompt-pool", "0"), ("--seed", "-1"),
        )
    ),
]  # fmt: skip


def _run_dir_loop(tmp: Path) -> list[str]:
    (tmp / "loop").symlink_to(tmp / "loop")
    return ["report", str(tmp / "loop")]


def _run_dir_file(tmp: Path) -> list[str]:
    return ["report", str(_write(tmp / "results.csv", "a,b\n"))]


def _run_dir_empty_results(tmp: Path) -> list[str]:
    run = write_synthetic_run(tmp / "run")
    (run / run_layout.RESULTS_PARQUET).unlink()
    _write(run / run_layout.RESULTS_CSV, BINARY)
    return ["report", str(run), "--out", str(tmp / "out")]


def _resume_not_a_sweep(tmp: Path) -> list[str]:
    (tmp / "run").mkdir()
    return ["sweep", "--resume", "--out", str(tmp / "run")]


OTHER_CASES = [
    Case("report run dir symlink loop", _run_dir_loop, 2, ("symbolic link loop",)),
    Case("report run dir a file", _run_dir_file, 2, ("not a directory",)),
    Case("report results.csv binary", _run_dir_empty_results, 2,
         ("cannot read the sweep results",)),
    Case("sweep --resume on a folder without a sweep", _resume_not_a_sweep, 2,
         ("--resume", "sweep.json is missing")),
    *(
        Case(f"server run {flag} {value}", lambda tmp, f=flag, v=value: ["server", "run", f, v],
             2, (flag,))
        for flag, value in (("--port", "70000"), ("--port", "-1"), ("--max-num-seqs", "0"),
                            ("--tensor-parallel-size", "nan"))
    ),
    Case("acceptance --target-concurrency 0", lambda tmp: [
        "acceptance", "--target-concurrency", "0"], 2, ("--target-concurrency",)),
    Case("acceptance --timeout-free rate inf", lambda tmp: ["acceptance", "--rate", "inf"], 2,
         ("--rate",)),
]  # fmt: skip

ALL_CASES = CONFIG_CASES + DIAGNOSE_CASES + REPORT_CASES + SWEEP_CASES + OTHER_CASES
