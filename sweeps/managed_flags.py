"""The vLLM flags a sweep sets itself, which `--vllm-arg` may not repeat.

vLLM takes the last of a repeated flag, and `--vllm-arg` is appended after the sweep's own:
`--vllm-arg '--max-num-seqs 64'` would silently run every setting at 64 while the results
say otherwise. Each such flag is refused with the sweep option that sets it.
"""

from __future__ import annotations

import re

from picoclaw_vllm.errors import UsageError

_EXTERNAL = "for a server of your own use --launch external --api-base URL"
# vLLM's flag -> what to use instead
MANAGED: dict[str, str] = {
    "--max-num-seqs": "the sweep's --max-num-seqs (one setting per value, e.g. 8,32)",
    "--tensor-parallel-size": "the sweep's --tensor-parallel-size (e.g. 1,2)",
    "--model": "the sweep's --model",
    "--served-model-name": "the sweep's --served-model-name",
    "--max-model-len": "the sweep's --max-model-len",
    "--gpu-memory-utilization": "the sweep's --gpu-memory-utilization",
    "--dtype": "the sweep's --dtype",
    "--api-key": "the sweep's --api-key or VLLM_API_KEY (kept off every command line)",
    "--host": f"the sweep chooses the host of each server it starts; {_EXTERNAL}",
    "--port": f"the sweep chooses the port of each server it starts; {_EXTERNAL}",
}
_SHORT = {"-tp": "--tensor-parallel-size"}  # vLLM's own short form
_MIN_ABBREVIATION = 3  # characters after "--": vLLM's argparse takes unique abbreviations


def managed_flag(arg: str) -> str | None:
    """The managed vLLM flag that `arg` (one shell word of a --vllm-arg) sets, if any:
    `--max-num-seqs`, `--max-num-seqs=64`, `--max_num_seqs` (vLLM reads `_` as `-`), an
    abbreviation vLLM would expand (`--max-num-s`), `-tp`, `-tp=2`, `-tp2`."""
    short = re.fullmatch(r"(-tp)(?:=.*|\d.*)?", arg)
    if short:
        return _SHORT[short.group(1)]
    if not arg.startswith("--") or arg == "--":
        return None
    name = arg.split("=", 1)[0].replace("_", "-")
    if name in MANAGED:
        return name
    if len(name) - 2 >= _MIN_ABBREVIATION:
        expanded = [flag for flag in MANAGED if flag.startswith(name)]
        if len(expanded) == 1:
            return expanded[0]
    return None


def check(extra_args: tuple[str, ...], given: dict[int, str]) -> None:
    """Refuse `extra_args` (split, in order) holding a managed flag; `given` maps each
    argument's index to the --vllm-arg value it came from, for the message."""
    for i, arg in enumerate(extra_args):
        flag = managed_flag(arg)
        if flag is not None:
            raise UsageError(
                f"--vllm-arg {given[i]!r}: {flag} is set by the sweep itself (vLLM would take "
                f"the last one given, silently); use {MANAGED[flag]}"
            )
