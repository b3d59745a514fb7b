"""The bad-input corpus (tests/hostile_corpus.py) and misbehaving stand-in servers on 127.0.0.1
(FAKES at the edge: vLLM cannot be made to answer like a hostile proxy): every input ends with
the right exit code, a message naming the cause, no secret, no traceback, in bounded time."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path

import pytest
from diagnose_standins import MODELS, Reply, http_standin, hub, json_reply, nginx_502
from hostile_corpus import ALL_CASES, Case

from picoclaw_vllm import cli
from picoclaw_vllm.cli import main
from picoclaw_vllm.redact import printable, redact, register_url_secrets
from sweeps.locust_process import log_cause

SECRET_KEY = "pcv-hostile-key-Zx81Qw"
SECRET_HF = "hf_HostileTokenAbCdEfGh123456"
PASSWORD = "Pa55-w0rd-Hostile"
QUERY_KEY = "qk-Hostile-9f8e7d"
BOUND_S = 20.0  # every case ends well within this (the doctor's probes alone take < 1 s here)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PICOCLAW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("VLLM_API_KEY", SECRET_KEY)
    monkeypatch.setenv("HF_TOKEN", SECRET_HF)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")  # one finding per line, for the word checks


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str, float]:
    start = time.monotonic()
    rc = main(argv)
    elapsed = time.monotonic() - start
    captured = capsys.readouterr()
    return rc, captured.out, captured.err, elapsed


def assert_clean(out: str, err: str, *secrets: str) -> None:
    text = out + err
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
    for secret in (SECRET_KEY, SECRET_HF, *secrets):
        assert secret not in text


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_corpus(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = case.build(tmp_path)
    rc, out, err, elapsed = run(capsys, argv)
    assert_clean(out, err)
    text = " ".join((out + err).split())
    assert rc == case.exit_code, text[-1500:]
    for word in case.words:
        assert word in text, (word, text[-1500:])
    if rc == 2:
        assert_one_line_or_config_finding(argv, out, err)
    assert elapsed < BOUND_S


def assert_one_line_or_config_finding(argv: list[str], out: str, err: str) -> None:
    """Exit 2 is one line on stderr that says why; the one exception (README, Bad input): a
    PicoClaw config or .security.yml PicoClaw could not read is the doctor's own finding, so
    `diagnose` prints its diagnosis, whose only failure is `config_invalid` naming the file,
    line and column, and nothing on stderr."""
    if err.strip():
        assert len(err.strip().splitlines()) == 1, err
        assert not out.strip(), out
        return
    assert argv[0] == "diagnose", out
    failed = [line for line in out.splitlines() if line.lstrip().startswith("\u2717")]
    assert len(failed) == 1 and "PicoClaw config" in failed[0], out
    finding = next(line for line in out.splitlines() if "[config_invalid]" in line)
    assert re.search(r"\] \S+:\d+:\d+: ", finding), finding


def test_corpus_size() -> None:
    assert len(ALL_CASES) >= 125
    assert len({c.name for c in ALL_CASES}) == len(ALL_CASES)


# --- credentials inside api_base -----------------------------------------------------------
def _recording(seen: list[tuple[str, str, dict[str, str]]], status: int = 401) -> object:
    def handle(method: str, path: str, headers: dict[str, str]) -> Reply:
        seen.append((method, path, headers))
        if path.startswith("/health"):
            return 200, {}, b""
        # a hostile server echoes what it was sent
        echo = {"error": {"message": f"denied for {headers.get('authorization')} at {path}"}}
        return json_reply(status, echo)

    return handle


def test_userinfo_in_api_base_is_never_shown_and_basic_auth_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VLLM_API_KEY")
    seen: list[tuple[str, str, dict[str, str]]] = []
    basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    with http_standin(_recording(seen)) as base:  # type: ignore[arg-type]
        api_base = base.replace("http://", f"http://admin:{PASSWORD}@") + "/v1"
        for fmt in ([], ["--json"]):
            rc, out, err, _ = run(capsys, ["diagnose", "--api-base", api_base, "--model", "m",
                                           "--no-hub", "--check", "auth", *fmt])  # fmt: skip
            assert_clean(out, err, PASSWORD, basic)
            assert rc == 1
            text = " ".join(out.split())
            assert "Basic" in text and "no Authorization header sent" not in text
            assert "http://***@127.0.0.1" in text
    assert any(h.get("authorization") == f"Basic {basic}" for _, _, h in seen)


def test_query_secret_stays_a_query_and_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[str, str, dict[str, str]]] = []
    with http_standin(_recording(seen, status=404)) as base:  # type: ignore[arg-type]
        rc, out, err, _ = run(capsys, ["diagnose", "--api-base", f"{base}/v1?api_key={QUERY_KEY}",
                                       "--model", "m", "--no-hub", "--check", "model"])  # fmt: skip
    assert_clean(out, err, QUERY_KEY)
    paths = {path for _, path, _ in seen}
    assert f"/v1/models?api_key={QUERY_KEY}" in paths
    assert not any("?api_key" in p.split("?")[0] or p.count("?") > 1 for p in paths), paths
    assert "api_key=***" in out and rc == 1


def test_redact_masks_url_credentials_everywhere() -> None:
    register_url_secrets(f"https://bob:{PASSWORD}@example.org/v1")
    text = redact(f"see https://bob:{PASSWORD}@example.org/v1?token=T0k3n&x=1 and {PASSWORD}")
    assert PASSWORD not in text and "T0k3n" not in text
    assert "https://***@example.org/v1?token=***&x=1" in text
    assert (
        redact("mail me at a@b.org, https://x.org/a@b") == "mail me at a@b.org, https://x.org/a@b"
    )


# --- the crash file ----------------------------------------------------------------------
def test_crash_file_is_new_private_and_never_follows_a_link(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "picoclaw-vllm-crash.log").symlink_to(victim)  # the old fixed name, planted

    def boom(args: object) -> int:
        raise RuntimeError(f"boom with {SECRET_KEY}")

    import diagnostics.command

    monkeypatch.setattr(diagnostics.command, "run", boom)
    paths = []
    for _ in range(2):
        rc, _out, err, _ = run(capsys, ["diagnose"])
        assert rc == 1 and SECRET_KEY not in err and len(err.strip().splitlines()) == 1
        path = Path(err.split("details in ")[1].rstrip(")\n"))
        assert path.parent == tmp_path and not path.is_symlink()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "RuntimeError" in path.read_text() and SECRET_KEY not in path.read_text()
        paths.append(path)
    assert paths[0] != paths[1] and victim.read_text() == "precious"
    assert cli._crash_report is not None


# --- misbehaving servers --------------------------------------------------------------------
def test_redirect_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    def redirect(method: str, path: str, headers: dict[str, str]) -> Reply:
        return 301, {"Location": "http://127.0.0.1:1/v1/models"}, b""

    with http_standin(redirect) as base:
        rc, out, err, _ = run(capsys, ["diagnose", "--api-base", f"{base}/v1", "--model", "m",
                                       "--no-hub"])  # fmt: skip
    assert_clean(out, err)
    text = " ".join(out.split())
    assert "redirects (301) to http://127.0.0.1:1/v1/models" in text and rc == 1


def _models(data: object, big: bool = False) -> object:
    def handle(method: str, path: str, headers: dict[str, str]) -> Reply:
        if path == "/health":
            return 200, {}, b""
        if path.endswith("/models"):
            return json_reply(200, {"object": "list", "data": data})
        choice = {"index": 0, "message": {"role": "assistant", "content": "hi"}}
        return json_reply(200, {"id": "c", "object": "chat.completion", "choices": [choice]})

    return handle


def test_ten_megabyte_model_list_is_read(capsys: pytest.CaptureFixture[str]) -> None:
    many = [{"id": f"adapter-{i:06d}", "object": "model", "root": "x" * 60} for i in range(90_000)]
    many.append(MODELS["data"][0])  # type: ignore[index]
    assert len(json.dumps(many)) > 10_000_000
    with http_standin(_models(many)) as base:  # type: ignore[arg-type]
        _rc, out, err, elapsed = run(
            capsys,
            [
                "diagnose",
                "--json",
                "--api-base",
                f"{base}/v1",
                "--model",
                "tiny-llama",
                "--check",
                "model",
            ],
        )
    assert_clean(out, err)
    doc = json.loads(out)
    assert {c["name"]: c["status"] for c in doc["checks"]}["model"] == "pass", doc["findings"]
    assert elapsed < BOUND_S


def test_model_list_of_non_objects(capsys: pytest.CaptureFixture[str]) -> None:
    with http_standin(_models([1, "x", None, {"id": None}])) as base:  # type: ignore[arg-type]
        rc, out, err, _ = run(capsys, ["diagnose", "--api-base", f"{base}/v1", "--model", "m",
                                       "--no-hub", "--check", "model"])  # fmt: skip
    assert_clean(out, err)
    assert "None" not in out and "vllm/<served name>" in " ".join(out.split()) and rc == 1


def test_control_and_bidi_characters_from_a_server_are_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    evil = "tiny\u202eevil\x1b[2J\x07"
    with http_standin(_models([{"id": evil, "object": "model"}])) as base:  # type: ignore[arg-type]
        for fmt in ([], ["--json"]):
            rc, out, _err, _ = run(capsys, ["diagnose", "--api-base", f"{base}/v1", "--model",
                                           "m", "--no-hub", "--check", "model", *fmt])  # fmt: skip
            assert "\u202e" not in out and "\x1b" not in out and "\x07" not in out
            assert "\\u202e" in out and rc == 1
            if fmt:
                # the JSON still means the same
                assert any(evil in f["evidence"] for f in json.loads(out)["findings"])


def test_context_check_does_not_call_a_200_a_failure_nor_blame_a_missing_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with http_standin(_models(MODELS["data"])) as base:  # type: ignore[arg-type]
        rc, out, err, _ = run(capsys, ["diagnose", "--api-base", f"{base}/v1", "--model",
                                       "tiny-llama", "--no-hub", "--check", "context"])  # fmt: skip
    text = " ".join(out.split())
    assert_clean(out, err)
    assert "PicoClaw's default max_tokens (no config) 32768" in text
    assert "every request fails" not in text and "accepted it" in text
    assert "~/.picoclaw" not in text and str(tmp_path / "home" / "config.json") in text
    assert "create it" in text and rc == 0


def test_no_scheme_gets_one_consistent_fix(capsys: pytest.CaptureFixture[str]) -> None:
    _rc, out, _err, _ = run(
        capsys,
        [
            "diagnose",
            "--json",
            "--api-base",
            "localhost:8000",
            "--no-hub",
            "--check",
            "connection",
            "--check",
            "api_base",
        ],
    )
    doc = json.loads(out)
    remedies = [f["remedy"] for f in doc["findings"]]
    assert len(remedies) == 2 and all('"http://localhost:8000/v1"' in r for r in remedies)


def test_rejected_hf_token_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def rejecting(method: str, path: str, headers: dict[str, str]) -> Reply:
        if headers.get("authorization"):
            return json_reply(401, {"error": "Invalid credentials in Authorization header"})
        return hub()(method, path, headers)

    monkeypatch.delenv("HF_HUB_OFFLINE")
    with http_standin(rejecting) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        rc, out, err, _ = run(capsys, ["diagnose", "--json", "--model",
                                       "Qwen/Qwen2.5-7B-Instruct", "--check", "hub"])  # fmt: skip
    assert_clean(out, err)
    doc = json.loads(out)
    assert [f["id"] for f in doc["findings"]] == ["hf_token_rejected"] and rc == 1


def test_external_sweep_against_a_502_names_it_fast_and_writes_no_password(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "run"
    with http_standin(nginx_502) as base:
        api_base = base.replace("http://", f"http://admin:{PASSWORD}@") + "/v1"
        argv = ["sweep", "--launch", "external", "--api-base", api_base, "--model", "m",
                "--ready-timeout", "2s", "--out", str(out_dir)]  # fmt: skip
        rc, out, err, elapsed = run(capsys, argv)
        assert_clean(out, err, PASSWORD)
        assert "/health answered 502" in " ".join((out + err).split()) and rc == 1
        assert elapsed < BOUND_S
        written = "".join(p.read_text(errors="replace") for p in out_dir.rglob("*") if p.is_file())
        assert PASSWORD not in written and "http://***@127.0.0.1" in written
        # resuming needs the credentials again: they were never saved
        rc, out, err, _ = run(capsys, ["sweep", "--resume", "--out", str(out_dir)])
        assert rc == 2 and "give --api-base again" in err
        rc, out, err, _ = run(capsys, [*argv, "--resume"])
        assert_clean(out, err, PASSWORD)
        assert rc == 1  # the setting failed before: nothing is left to run


def test_external_sweep_default_ready_timeout_is_short() -> None:
    from picoclaw_vllm.cli import _Parser
    from sweeps.command import EXTERNAL_READY_S, add_arguments, config_from_args

    parser = _Parser()
    add_arguments(parser)
    args = parser.parse_args(["--out", "x", "--launch", "external", "--api-base", "http://h/v1"])
    assert config_from_args(args).ready_timeout_s == EXTERNAL_READY_S <= 30


# --- small pieces ----------------------------------------------------------------------------
def test_locust_cause_is_the_exception_not_the_stats_table(tmp_path: Path) -> None:
    log = tmp_path / "locust-s1.log"
    log.write_text(
        "[2026-12-04 05:00:00] host/INFO/locust.main: Starting Locust 2.32\n"
        'Traceback (most recent call last):\n  File "chat.py", line 3\n'
        "loadtests.prompts.PromptError: prompts.jsonl: no prompts found\n"
        "Type     Name   # reqs      # fails |    Avg\n"
        "--------|------|-------|-------------|-------\n"
        "         Aggregated      0     0(0.00%) |      0\n"
    )
    assert log_cause(log).startswith("loadtests.prompts.PromptError: prompts.jsonl: no prompts")


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("plain ✓ text\nnext\tline") == "plain ✓ text\nnext\tline"
    assert printable("a\x1b[31mb\u202ec\u200bd") == "a\\u001b[31mb\\u202ec\\u200bd"
    assert os.sep  # keeps the import list honest on every platform
