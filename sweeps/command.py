"""`picoclaw-vllm sweep`: measure throughput and latency across vLLM server settings."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from loadtests import option_table
from loadtests.prompts import PromptError, load_prompt_file
from picoclaw_vllm import argtypes, urls
from picoclaw_vllm.errors import ConfigError, UsageError
from picoclaw_vllm.redact import MASK
from picoclaw_vllm.run_layout import MANIFEST
from sweeps import managed_flags, sampling_options
from sweeps.config import LAUNCH_KINDS, SweepConfig
from sweeps.results import RunDir
from sweeps.step_figures import GoodputSlo

if TYPE_CHECKING:
    from reports.gates import Gates

HELP = "measure throughput and latency across vLLM server settings"
DESCRIPTION = """\
For each server setting (--max-num-seqs x --tensor-parallel-size) start vLLM, wait until it
answers, run each load step as a headless Locust subprocess, stop vLLM, go on. A setting that
does not start becomes a failed row naming the cause; the sweep continues.

examples:
  picoclaw-vllm sweep --max-num-seqs 2,8 --concurrency 1,8 --duration 10s --out runs/tiny
      (the embedded CPU vLLM with its tiny model)
  picoclaw-vllm sweep --model meta-llama/Llama-3.2-3B-Instruct --python ~/vllm/bin/python \\
      --max-num-seqs 8,32,128 --tensor-parallel-size 1,2 --concurrency 1,8,32 \\
      --duration 30s --prompt-tokens 256 --output-tokens 128 --out runs/llama
  picoclaw-vllm sweep --launch external --api-base http://gpu-box:8000/v1 \\
      --rate 1,2,4 --concurrency 64 --slo-ttft-ms 500 --out runs/prod
  picoclaw-vllm sweep --resume --out runs/llama      (continue an interrupted sweep)

Results: OUT/results.csv and results.parquet (a row per step), OUT/records/*.jsonl (every
request), OUT/sweep.json (commands, versions), OUT/logs/. The API key (--api-key or
VLLM_API_KEY) is passed to vLLM and Locust in VLLM_API_KEY, never on a command line.
"""

LOCAL_READY_S = 600.0
EXTERNAL_READY_S = 20.0
duration = argtypes.duration


_T = TypeVar("_T")


def _comma_list(text: str, parse: Callable[[str], _T], what: str) -> tuple[_T, ...]:
    try:
        return tuple(parse(v) for v in text.split(",") if v.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of {what}: {text!r}") from e


def int_list(text: str) -> tuple[int, ...]:
    values = _comma_list(text, int, "integers")
    if not values or any(v < 1 or v > 10_000_000 for v in values):
        raise argparse.ArgumentTypeError(f"expected whole numbers from 1 to 10000000: {text!r}")
    return values


def float_list(text: str) -> tuple[float, ...]:
    values = _comma_list(text, float, "numbers")
    if not values or any(not math.isfinite(v) or v <= 0 or v > 1e7 for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers above 0: {text!r}")
    return values


def vllm_args(values: list[str]) -> tuple[str, ...]:
    """`--vllm-arg` values, each split the way a shell would split it; a flag the sweep sets
    itself (sweeps.managed_flags) is refused."""
    args: list[str] = []
    came_from: dict[int, str] = {}
    for value in values:
        try:
            words = shlex.split(value)
        except ValueError as e:
            raise UsageError(f"--vllm-arg {value!r}: {e}") from e
        came_from.update(dict.fromkeys(range(len(args), len(args) + len(words)), value))
        args += words
    managed_flags.check(tuple(args), came_from)
    return tuple(args)


def add_arguments(
    parser: argparse.ArgumentParser, *, out_required: bool = True, presets: bool = False
) -> None:
    """The sweep's options; other commands (acceptance) reuse them with --out optional (and
    `presets`: the load options acceptance presets default to None, see option_table)."""
    a = parser.add_argument
    a("--out", type=Path, required=out_required, help="run directory (e.g. runs/NAME)")
    a("--resume", action="store_true", help="continue the sweep in --out, skipping finished steps")
    s = parser.add_argument_group("server")
    s.add_argument("--launch", choices=LAUNCH_KINDS, default="local")
    s.add_argument("--model", help="model to serve (default: the embedded tiny CPU model)")
    s.add_argument("--served-model-name")
    s.add_argument("--api-base", help="external server, e.g. http://host:8000/v1")
    s.add_argument("--api-key", help="API key (default: VLLM_API_KEY)")
    s.add_argument("--python", help="interpreter with vLLM (default: the embedded CPU vLLM)")
    s.add_argument("--docker-image", default="vllm/vllm-openai:latest")
    s.add_argument("--max-num-seqs", type=int_list, default=None, help="e.g. 8,32,128")
    s.add_argument("--tensor-parallel-size", type=int_list, default=(1,), help="e.g. 1,2")
    s.add_argument("--max-model-len", type=argtypes.POSITIVE_INT)
    s.add_argument("--gpu-memory-utilization", type=argtypes.FRACTION)
    s.add_argument("--dtype")
    s.add_argument(
        "--vllm-arg",
        action="append",
        default=[],
        metavar="ARGS",
        help="more vLLM flags, passed as given to every launch (repeatable; "
        "write --vllm-arg=--enable-prefix-caching or --vllm-arg '--quantization fp8')",
    )
    s.add_argument("--ready-timeout", type=duration, default=None,
                   help=f"default {LOCAL_READY_S:g}s; {EXTERNAL_READY_S:g}s for an external "
                   "server, which should already be up")  # fmt: skip
    ld = parser.add_argument_group("load")
    ld.add_argument("--concurrency", type=int_list, default=(1,),
                    help="users (closed loop), or caps with --rate; e.g. 1,8,32")  # fmt: skip
    ld.add_argument("--rate", type=float_list, default=(), help="open loop: requests/s, e.g. 1,2,4")
    ld.add_argument("--duration", type=duration, default=30.0, help="measured time per step")
    ld.add_argument("--workers", type=argtypes.integer(0, 256), default=0,
                    help="local Locust workers (0: one process)")  # fmt: skip
    # the load profile's own options, declared once in loadtests/option_table.py
    option_table.add_sweep_arguments(ld, "load", presets=presets)
    ag = parser.add_argument_group("agent workload (PicoClaw sessions)")
    option_table.add_sweep_arguments(ag, "agent", presets=presets)
    sampling_options.add_sampling_arguments(parser, presets=presets, search_gates=not presets)
    slo = parser.add_argument_group("SLOs (goodput)")
    slo.add_argument("--slo-ttft-ms", type=argtypes.POSITIVE)
    slo.add_argument("--slo-tpot-ms", type=argtypes.POSITIVE)
    slo.add_argument("--slo-e2el-ms", type=argtypes.POSITIVE)


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The sweep's config from its flags; every input is checked here, before anything starts."""
    api_key = args.api_key or os.environ.get("VLLM_API_KEY") or None
    if args.launch == "external" and args.api_base is None:
        raise UsageError("--launch external needs --api-base")
    if args.api_base is not None:
        try:
            args.api_base = urls.check_api_base(args.api_base)
        except urls.BadUrl as e:
            raise UsageError(str(e)) from None
    _check_out(args.out, args.resume)
    if args.prompt_file is not None:
        try:
            load_prompt_file(Path(args.prompt_file))
        except PromptError as e:
            raise UsageError(f"--prompt-file {e}") from None
    sampling = sampling_options.sampling_values(args)
    if sampling["search"] and sampling["search_start"] > sampling["search_max"]:
        raise UsageError("--search-start must not be above --search-max")
    if getattr(args, "search_slo", None):
        from reports.search_judge import gated_quantiles

        sampling["gated"] = gated_quantiles(search_gates(args))
    ready_timeout = args.ready_timeout
    if ready_timeout is None:
        ready_timeout = EXTERNAL_READY_S if args.launch == "external" else LOCAL_READY_S
    return SweepConfig(
        out=args.out,
        model=args.model,
        served_model_name=args.served_model_name,
        launch=args.launch,
        api_base=args.api_base,
        api_key=api_key,
        python=args.python,
        docker_image=args.docker_image,
        max_num_seqs=args.max_num_seqs or (None,),
        tensor_parallel_sizes=args.tensor_parallel_size,
        max_model_len=args.max_model_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        dtype=args.dtype,
        extra_vllm_args=vllm_args(args.vllm_arg),
        ready_timeout_s=ready_timeout,
        concurrency=args.concurrency,
        rates=args.rate,
        duration_s=args.duration,
        workers=args.workers,
        slo=GoodputSlo(args.slo_ttft_ms, args.slo_tpot_ms, args.slo_e2el_ms),
        load=option_table.sweep_values(args),
        **sampling,
    )


def search_gates(args: argparse.Namespace) -> Gates:
    """The gates of the plain sweep's --search (--search-slo, in the report's gate keys)."""
    from reports.gates import Gates, parse_slo_argument

    try:
        return Gates.from_values(parse_slo_argument(str(args.search_slo)))
    except ConfigError as e:
        raise UsageError(f"--search-slo: {e}") from None


def _check_out(out: Path | None, resume: bool) -> None:
    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the run")
    if out.is_symlink() and not out.exists():
        raise UsageError(f"--out {out} is a broken symbolic link (or a link loop)")
    if resume and not (out / MANIFEST).is_file():
        what = "does not exist" if not out.exists() else f"holds no sweep ({MANIFEST} is missing)"
        raise UsageError(f"--resume: {out} {what}; leave out --resume to start a new sweep")


def resumed_config(run_dir: RunDir, given: SweepConfig) -> SweepConfig:
    """The saved config of the sweep to resume; api_base from the flag when the saved one had
    its credentials masked (they are never written)."""
    try:
        saved = run_dir.read_manifest()["config"]
        config = SweepConfig.from_json(saved, api_key=given.api_key)
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise UsageError(f"--resume: {run_dir.path} holds no usable sweep.json ({e})") from None
    if config.api_base and MASK in config.api_base:
        if not given.api_base:
            raise UsageError(
                "--resume: the sweep's api_base carried credentials, which are not saved; "
                "give --api-base again"
            )
        config = dataclasses.replace(config, api_base=given.api_base)
    return config


def run(args: argparse.Namespace) -> int:
    from sweeps.engine import run_sweep
    from sweeps.progress import RichProgress

    config = config_from_args(args)
    run_dir = RunDir(config.out)
    if args.resume and run_dir.exists():
        config = resumed_config(run_dir, config)
    judge = None
    if config.search:
        from reports.search_judge import step_judge

        judge = step_judge(search_gates(args))
    progress = RichProgress()
    try:
        run_sweep(config, progress, resume=args.resume, judge=judge)
    finally:
        progress.close()
    rows = run_dir.rows()
    return 0 if any(r.get("status") == "ok" for r in rows) else 1
