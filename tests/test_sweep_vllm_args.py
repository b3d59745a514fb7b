"""`--vllm-arg` may not repeat a flag the sweep sets itself (vLLM would take the last one and
the results would name a setting that never ran): `sweep` and `acceptance` refuse it with one
line, exit 2, naming the sweep option to use; other vLLM flags pass as given."""

from __future__ import annotations

from pathlib import Path

import pytest

from picoclaw_vllm.cli import main
from sweeps.command import vllm_args
from sweeps.managed_flags import MANAGED, managed_flag

REFUSED = [
    ("--max-num-seqs 64", "--max-num-seqs"),
    ("--max-num-seqs=64", "--max-num-seqs"),
    ("--max_num_seqs 64", "--max-num-seqs"),
    ("--max-num-s 64", "--max-num-seqs"),
    ("--enable-prefix-caching --tensor-parallel-size 2", "--tensor-parallel-size"),
    ("-tp 2", "--tensor-parallel-size"),
    ("-tp=2", "--tensor-parallel-size"),
    ("--port=9000", "--port"),
    ("--host 0.0.0.0", "--host"),
    ("--model org/other", "--model"),
    ("--served-model-name x", "--served-model-name"),
    ("--api-key=sk-abc", "--api-key"),
    ("--max-model-len 4096", "--max-model-len"),
    ("--gpu-memory-utilization 0.8", "--gpu-memory-utilization"),
    ("--dtype half", "--dtype"),
]


@pytest.mark.parametrize(("value", "flag"), REFUSED)
def test_a_managed_flag_is_named(value: str, flag: str) -> None:
    assert [managed_flag(w) for w in value.split() if managed_flag(w)] == [flag]


@pytest.mark.parametrize(
    "value",
    [
        "--enable-prefix-caching",
        "--max-num-batched-tokens 4096",  # shares a prefix with --max-num-seqs, not managed
        "--api-server-count 2",
        "--model-impl transformers",
        "--tool-call-parser hermes --enable-auto-tool-choice",
        "--chat-template /tmp/t.jinja",
        "--quantization fp8",
    ],
)
def test_other_flags_pass_as_given(value: str) -> None:
    assert vllm_args([value]) == tuple(value.split())


@pytest.mark.parametrize("command", ["sweep", "acceptance"])
@pytest.mark.parametrize(("value", "flag"), [REFUSED[0], REFUSED[2], REFUSED[5], REFUSED[7]])
def test_refused_in_one_line_with_exit_2(
    command: str, value: str, flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [command, "--out", str(tmp_path / "run"), "--vllm-arg=--enable-prefix-caching",
         f"--vllm-arg={value}"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"--vllm-arg {value!r}: {flag} is set by the sweep itself" in lines[0]
    assert MANAGED[flag].split(" (")[0] in lines[0]
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_the_key_in_a_refused_value_is_not_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", "--out", str(tmp_path), "--vllm-arg", "--api-key sk-pcv-999"]) == 2
    err = capsys.readouterr().err
    assert "--api-key" in err and "sk-pcv-999" not in err
