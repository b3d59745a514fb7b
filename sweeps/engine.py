"""The sweep engine: for each server setting start vLLM, run each load step, stop vLLM.

    from sweeps.engine import run_sweep
    from sweeps.config import SweepConfig
    run_dir = run_sweep(SweepConfig(out=Path("runs/demo"), max_num_seqs=(2, 8),
                                    concurrency=(1, 8), duration_s=8,
                                    load=option_table.sweep_defaults(output_tokens=32)))

`run_sweep(config, observer=None, *, resume=False, gpu=None, on_server_ready=None) -> Path`
returns the run directory (layout: picoclaw_vllm.run_layout). Each step is written before the
next starts. A setting whose server does not start is one failed row labelled with the doctor's
finding id (picoclaw_vllm.vllm_api.log_signatures) and the sweep goes on. With an existing run
directory and `resume=True` finished steps are skipped; without it the sweep refuses to overwrite.
An interrupt (KeyboardInterrupt; the CLI turns SIGTERM into one) stops the server and Locust
and keeps every finished step.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from loadtests.prompts import ServerTokenizer, synthetic_prompts
from loadtests.records import read_records
from picoclaw_vllm import urls
from picoclaw_vllm.errors import LaunchError, UsageError
from picoclaw_vllm.intervals import Outcome
from picoclaw_vllm.leftovers import find_leftovers, stop_leftover
from picoclaw_vllm.redact import redact, register_secret
from picoclaw_vllm.run_layout import Manifest, ResultRow
from picoclaw_vllm.server.backends import (
    Backend,
    DockerBackend,
    ExternalBackend,
    LocalBackend,
    render_command,
)
from picoclaw_vllm.server.embedded import embedded_settings, free_port
from picoclaw_vllm.server.launcher import ServerHandle, running_server
from picoclaw_vllm.server.settings import ServerSettings
from picoclaw_vllm.vllm_api.log_signatures import root_cause
from sweeps import sample_budget
from sweeps.config import LoadStep, SettingPlan, SweepConfig, repeat_id
from sweeps.locust_process import (
    LocustFailed,
    LocustRun,
    RecordTail,
    locust_command,
    locust_timeout_s,
    run_locust,
)
from sweeps.observer import Progress, SilentObserver, SweepObserver
from sweeps.results import RunDir
from sweeps.search import Measured, search
from sweeps.server_metrics import GpuUsageReader, HttpScraper, NvmlUsageReader, StepSampler, figures
from sweeps.step_figures import summarize

ServerReadyHook = Callable[[ServerHandle], None]
# judges one finished step for --search: (outcome, binding gate key or None, detail); the
# command layer supplies it (the gates are the report's, which sweeps must not import)
StepJudge = Callable[[str, Path, ResultRow], tuple[Outcome, str | None, str]]
BUDGET_CHECK_S = 1.0  # how often a budget-mode step re-reads its records
START_FAILED = "server_start_failed"
LOAD_FAILED = "load_failed"
PROMPTS_FILE = "prompts.jsonl"  # in the run directory


def no_measurement(warmup_requests: int, wall_s: float, duration_s: float) -> str:
    """Why a step measured no request after its warm-up."""
    return (
        f"no request was measured: {warmup_requests} warm-up request(s) only, in {wall_s:.0f} s "
        f"for a {duration_s:g} s step; the server or this machine stalled (see the step's "
        "Locust log and the server log)"
    )


def failure_label(error: LaunchError) -> tuple[str, str]:
    """The doctor's finding id and root-cause line for a server that did not start."""
    cause = root_cause(error.log_text) if error.log_text else None
    if cause is not None:
        return cause.finding_id, redact(cause.line).strip()
    return START_FAILED, redact(str(error))


def served_model(base_url: str, api_key: str | None) -> str:
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        r = httpx.get(urls.join(base_url, "/v1/models"), headers=auth, timeout=10)
        r.raise_for_status()
        return str(r.json()["data"][0]["id"])
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as e:
        raise LaunchError(f"cannot list the models of {redact(base_url)}: {redact(str(e))}") from e


def vllm_version(base_url: str) -> str | None:
    try:
        return str(httpx.get(f"{base_url}/version", timeout=5).json().get("version"))
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def server_setup(
    config: SweepConfig, plan: SettingPlan
) -> tuple[ServerSettings, Backend, str | None]:
    """The settings, the backend, and the base URL when the server is external."""
    if config.launch == "external":
        if not config.api_base:
            raise UsageError("--launch external needs --api-base")
        base = urls.root(config.api_base)
        model = config.model or served_model(base, config.api_key)
        return ServerSettings(model=model, api_key=config.api_key), ExternalBackend(), base
    port = free_port()
    if config.model is None:
        settings = embedded_settings(port=port)
    else:
        settings = ServerSettings(
            model=config.model, served_model_name=config.served_model_name, port=port
        )
    changes: dict[str, Any] = {
        "max_num_seqs": plan.max_num_seqs,
        "tensor_parallel_size": plan.tensor_parallel_size,
        "api_key": config.api_key,
        "extra_args": settings.extra_args + tuple(config.extra_vllm_args),
    }
    for name in ("max_model_len", "gpu_memory_utilization", "dtype"):
        if getattr(config, name) is not None:
            changes[name] = getattr(config, name)
    settings = settings.with_(**changes)
    if config.launch == "docker":
        image, _, tag = config.docker_image.partition(":")
        return settings, DockerBackend(image=image, tag=tag or "latest"), None
    from picoclaw_vllm.paths import cpu_python

    embedded_python = str(cpu_python())
    python = config.python or embedded_python
    return settings, LocalBackend(python=python, cpu=python == embedded_python), None


def _redact_file(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.write_text(redact(path.read_text(errors="replace")))


class _Sweep:
    def __init__(
        self,
        config: SweepConfig,
        observer: SweepObserver,
        gpu: GpuUsageReader,
        resume: bool,
        on_server_ready: ServerReadyHook | None = None,
        judge: StepJudge | None = None,
    ) -> None:
        self.config = config
        self.judge = judge
        if config.search and judge is None:
            raise UsageError("--search needs gates to judge each step by")
        self.resume = resume
        self.observer = observer
        self.on_server_ready = on_server_ready
        self.gpu = gpu
        self.run = RunDir(config.out)
        self.plan = config.settings()
        self.steps_total = sum(len(p.steps) for p in self.plan)
        self.step_index = 0
        # a new run's manifest, replaced by the run's own when resuming (open)
        self.manifest: Manifest = self.run.new_manifest(config)

    def open(self) -> set[str]:
        if self.run.exists():
            if not self.resume:
                raise UsageError(
                    f"{self.run.path} already holds a sweep: use --resume or another --out"
                )
            self.manifest = self.run.read_manifest()
            return self.run.finished_ids()
        self.run.write_manifest(self.manifest)
        return set()

    def update(self, progress: Progress) -> None:
        self.observer.on_update(progress)

    def execute(self) -> Path:
        done = self.open()
        self.observer.on_start(self.config, self.plan, self.run.path)
        self.stop_leftovers()
        for plan in self.plan:
            if self.config.search:
                if plan.setting_id in self.manifest.get("search_done", []):
                    self.update(Progress("skipped", plan.setting_id, message="searched earlier"))
                else:
                    self.run_setting(plan, [])
                continue
            todo = [(sid, load) for sid, load in plan.steps if sid not in done]
            if plan.setting_id in done or not todo:
                self.step_index += len(plan.steps)
                self.update(Progress("skipped", plan.setting_id, message="finished earlier"))
                continue
            self.step_index += len(plan.steps) - len(todo)
            self.run_setting(plan, todo)
        rows = self.run.rows()
        self.observer.on_complete(rows, self.run.path)
        return self.run.path

    def stop_leftovers(self) -> None:
        """Stop servers an earlier sweep (killed, its watchdog too) left running."""
        recorded = self.manifest.get("servers") or {}
        for leftover in find_leftovers():
            ours = [sid for sid, s in recorded.items() if s.get("pid") == leftover.pid]
            where = f"this run's {ours[0]}" if ours else leftover.started_by
            gone = stop_leftover(leftover)
            self.update(
                Progress(
                    "leftover_stopped",
                    ours[0] if ours else "leftover",
                    message=f"{'stopped' if gone else 'could not stop'} a vLLM server left "
                    f"running by a killed sweep ({where}): {leftover.describe()}",
                )
            )

    def record_server(self, setting_id: str, handle: ServerHandle | None) -> None:
        """The run directory names what it started (so a leftover can be named and stopped)."""
        servers = self.manifest.setdefault("servers", {})
        if handle is None:
            if setting_id in servers:
                servers[setting_id]["stopped_unix"] = time.time()
        elif handle.pid is not None:
            servers[setting_id] = {
                "pid": handle.pid,
                "pgid": handle.pid,
                "port": handle.settings.port,
                "command": handle.command_line,
                "started_unix": time.time(),
                "tool_pid": os.getpid(),
            }
        self.run.write_manifest(self.manifest)

    @contextlib.contextmanager
    def server(self, plan: SettingPlan) -> Iterator[ServerHandle]:
        settings, backend, base_url = server_setup(self.config, plan)
        cmd = backend.command(settings)
        command_line = render_command(cmd, backend.environment(settings)) if cmd else None
        self.manifest["vllm_commands"][plan.setting_id] = command_line
        self.run.write_manifest(self.manifest)
        log = self.run.log_path(plan.setting_id)
        try:
            with running_server(
                settings,
                backend,
                log_path=log,
                ready_timeout_s=self.config.ready_timeout_s,
                base_url=base_url,
                started_by=f"sweep {self.run.path}",
            ) as handle:
                self.record_server(plan.setting_id, handle)
                yield handle
        finally:
            self.record_server(plan.setting_id, None)
            if log.exists():
                _redact_file(log)

    def run_setting(self, plan: SettingPlan, todo: list[tuple[str, LoadStep]]) -> None:
        self.update(Progress("starting", plan.setting_id, steps_total=self.steps_total))
        started = time.monotonic()
        try:
            with self.server(plan) as handle:
                ready_s = handle.ready_after_s
                version = vllm_version(handle.base_url)
                self.manifest["vllm_version"] = self.manifest.get("vllm_version") or version
                self.manifest["model"] = self.manifest.get("model") or handle.settings.name
                self.run.write_manifest(self.manifest)
                self.update(
                    Progress(
                        "server_ready",
                        plan.setting_id,
                        elapsed_s=time.monotonic() - started,
                        steps_total=self.steps_total,
                        api_base=handle.api_base,
                    )
                )
                if self.on_server_ready is not None:
                    self.on_server_ready(handle)
                if self.config.search:
                    self.search_setting(plan, handle, ready_s, version)
                for step_id, load in todo:
                    self.step_index += 1
                    row = self.run_step(plan, step_id, load, handle, ready_s, version)
                    self.run.append_row(row)
                    self.update(
                        Progress(
                            "step_done",
                            plan.setting_id,
                            step_id,
                            self.step_index,
                            self.steps_total,
                            row=row,
                        )
                    )
        except LaunchError as e:
            failure_id, message = failure_label(e)
            row = self.setting_row(plan, plan.setting_id) | {
                "status": "failed",
                "failure_id": failure_id,
                "failure_message": message,
                "started_unix": time.time() - (time.monotonic() - started),
                "wall_s": time.monotonic() - started,
            }
            if plan.setting_id not in self.run.finished_ids():
                self.run.append_row(row)
            self.step_index += len(todo)
            self.update(
                Progress(
                    "server_failed",
                    plan.setting_id,
                    steps_total=self.steps_total,
                    step_index=self.step_index,
                    row=row,
                    message=f"{failure_id}: {message}",
                )
            )

    def search_setting(
        self, plan: SettingPlan, handle: ServerHandle, ready_s: float | None, version: str | None
    ) -> None:
        """--search on one setting (sweeps.search); each step is on disk before the next, and
        a resumed search takes the steps already measured from results.csv."""
        cfg = self.config
        assert self.judge is not None
        judge = self.judge
        entry = self.manifest["settings"].setdefault(
            plan.setting_id,
            {"max_num_seqs": plan.max_num_seqs,
             "tensor_parallel_size": plan.tensor_parallel_size, "steps": []},
        )  # fmt: skip

        def measure(level: int, attempt: int) -> Measured:
            load = LoadStep("concurrency", level, repeat=attempt)
            step_id = repeat_id(f"{plan.setting_id}-{load.id_part}", attempt)
            earlier = {str(r["step_id"]): r for r in self.run.rows()}
            row = earlier.get(step_id)
            if row is None:
                self.step_index += 1
                self.steps_total = max(self.steps_total, self.step_index)
                row = self.run_step(plan, step_id, load, handle, ready_s, version)
                row["search_level"] = level
                self.run.append_row(row)
                self.update(
                    Progress("step_done", plan.setting_id, step_id, self.step_index,
                             self.steps_total, row=row)
                )  # fmt: skip
            if step_id not in entry["steps"]:
                entry["steps"].append(step_id)
            if row.get("status") != "ok":
                failed = f"the step failed: {row.get('failure_id')}"
                outcome, binding, detail = Outcome.FAIL, None, failed
            else:
                outcome, binding, detail = judge(step_id, self.run.records_path(step_id), row)
            return Measured(step_id, outcome, binding, detail)

        def measure_and_save(level: int, attempt: int) -> Measured:
            m = measure(level, attempt)
            # sweep.json settings[id].search, where the report reads it (reports.ties.from_search)
            levels = entry.setdefault("search", {"levels": []})["levels"]
            levels.append({"level": level, "outcome": m.outcome.value, "step_ids": [m.step_id]})
            self.run.write_manifest(self.manifest)
            return m

        result = search(
            measure_and_save,
            start=cfg.search_start,
            resolution=cfg.search_resolution,
            max_level=cfg.search_max,
            budget_s=cfg.search_budget_s,
        )
        entry["search"] = dict(result.as_json())
        self.manifest.setdefault("search_done", []).append(plan.setting_id)
        self.run.write_manifest(self.manifest)
        unit = "sessions" if cfg.workload == "agent" else "users"
        self.update(Progress("search_done", plan.setting_id, message=result.answer(unit)))

    def prompts(self, handle: ServerHandle) -> Path | None:
        """The synthetic prompts, made once per sweep with the server's tokenizer and written
        to PROMPTS_FILE, so that Locust spends none of a step's run time making them (each
        Locust worker takes its own share). None: Locust makes its own."""
        cfg = self.config
        path = self.run.path / PROMPTS_FILE
        if cfg.workload == "agent":
            return None  # PicoClaw's own prompt and a history the sessions grow
        if cfg.prompt_file or path.exists():
            return cfg.prompt_file or path
        count = cfg.prompt_pool * max(1, cfg.workers)
        try:
            with httpx.Client(timeout=60.0) as client:
                tokenizer = ServerTokenizer(
                    handle.base_url, handle.settings.name, cfg.endpoint, client
                )
                texts = synthetic_prompts(tokenizer, cfg.prompt_tokens, count, cfg.seed)
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        path.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
        return path

    def budget(self, load: LoadStep) -> sample_budget.SampleBudget:
        """The step's sample budget; a search's later attempt at a level (repeat k) asks k
        times as many requests and a k times finer precision."""
        cfg = self.config
        k = load.repeat if cfg.search else 1
        target = sample_budget.PRECISIONS.get(cfg.precision) if cfg.precision else None
        return sample_budget.SampleBudget(
            precision=None if target is None else target / k,
            min_requests=cfg.min_requests * k,
            min_turns=cfg.min_turns * k,
            gated=cfg.gated,
        )

    def setting_row(self, plan: SettingPlan, step_id: str) -> ResultRow:
        return {
            "step_id": step_id,
            "setting_id": plan.setting_id,
            "max_num_seqs": plan.max_num_seqs,
            "tensor_parallel_size": None
            if self.config.launch == "external"
            else plan.tensor_parallel_size,
            "status": "ok",
        }

    def run_step(
        self,
        plan: SettingPlan,
        step_id: str,
        load: LoadStep,
        handle: ServerHandle,
        ready_s: float | None,
        version: str | None,
    ) -> ResultRow:
        cfg = self.config
        records = self.run.records_path(step_id)
        run = LocustRun(
            locust_command(
                cfg,
                load,
                step_id=step_id,
                host=handle.base_url,
                model=handle.settings.name,
                records=records,
                prompt_file=self.prompts(handle),
            ),
            records,
            self.run.locust_log_path(step_id),
        )
        self.manifest["locust_commands"][step_id] = redact(run.command_line)
        self.run.write_manifest(self.manifest)
        env = dict(os.environ)
        if cfg.api_key:
            env["VLLM_API_KEY"] = cfg.api_key
        row = self.setting_row(plan, step_id) | {
            "repeat": load.repeat,
            "load_mode": load.mode,
            "workload": cfg.workload,
            "concurrency": load.concurrency,
            "request_rate": load.rate,
            "warmup_s": cfg.warmup_s,
            "prompt_tokens_asked": None if cfg.prompt_file else cfg.prompt_tokens,
            "output_tokens_asked": cfg.output_tokens,
            "started_unix": time.time(),
            "server_ready_s": ready_s,
            "vllm_version": version,
        }
        scraper = HttpScraper(handle.base_url)
        sampler = StepSampler(scraper, gpu=self.gpu, interval_s=cfg.metrics_interval_s)
        started = time.monotonic()
        budget = self.budget(load)
        checked = [0.0]
        window_end: list[float] = []
        note = [""]

        def tick(tail: RecordTail, elapsed: float) -> bool:
            enough = False
            if budget.active and elapsed - checked[0] >= BUDGET_CHECK_S:
                checked[0] = elapsed
                state = sample_budget.state(budget, read_records(records))
                note[0] = f"{state.fraction:.0%} ({state.text})"
                if state.met:
                    window_end.append(time.time())
                    enough = True
            self.update(
                Progress(
                    "running", plan.setting_id, step_id, self.step_index, self.steps_total,
                    elapsed, tail.requests, tail.failures, tail.output_tokens, budget=note[0],
                )
            )  # fmt: skip
            return enough

        sampler.start()
        try:
            run_locust(
                run, env=env, timeout_s=locust_timeout_s(cfg), on_tick=tick,
                stop_grace_s=cfg.stop_timeout_s + 5.0,
            )  # fmt: skip
        except LocustFailed as e:
            row |= {
                "status": "failed",
                "failure_id": LOAD_FAILED,
                "failure_message": redact(str(e)),
            }
        finally:
            sampler.stop()
            scraper.close()
            _redact_file(run.log)
        wall_s = time.monotonic() - started
        row["wall_s"] = wall_s
        found = read_records(records)
        if window_end:  # requests started after the budget was met are not counted
            found = [r for r in found if r.start_unix <= window_end[0]]
        window_start = min((r.start_unix for r in found if not r.warmup), default=None)
        row |= {
            "window_start_unix": window_start,
            "window_end_unix": window_end[0] if window_end else None,
            "budget_met": (1 if window_end else 0) if budget.active else None,
        }
        step = summarize(found, cfg.slo)
        row |= step
        measured = [r for r in found if not r.warmup]
        if row["status"] == "ok" and not measured:
            why = no_measurement(len(found), wall_s, cfg.step_time_s)
            row |= {"status": "failed", "failure_id": LOAD_FAILED, "failure_message": why}
        to_monotonic = time.monotonic() - time.time()
        since = (
            to_monotonic + min(r.start_unix for r in measured)
            if measured
            else started + cfg.warmup_s
        )
        ends = [r.end_unix for r in measured if r.end_unix is not None]
        until = to_monotonic + max(ends) if ends else math.inf
        row |= figures(
            sampler.window(since), gauges_until=until, request_rate=step["request_throughput"]
        )
        return row


def run_sweep(
    config: SweepConfig,
    observer: SweepObserver | None = None,
    *,
    resume: bool = False,
    gpu: GpuUsageReader | None = None,
    on_server_ready: ServerReadyHook | None = None,
    judge: StepJudge | None = None,
) -> Path:
    """Run the sweep `config` describes and return its run directory (see module docstring).

    observer: gets on_start / on_update(Progress) / on_complete(rows); default: silent.
    on_server_ready: called with each server once it answers, before its load steps (the
    acceptance run diagnoses the first one there).
    resume: continue the sweep already in config.out (its saved config is not re-checked).
    gpu: what reads GPU memory and utilization during steps; default: local NVML if present.
    judge: judges each step of a --search (StepJudge); needed when config.search.
    """
    register_secret(config.api_key)
    cfg = replace(config, out=Path(config.out))
    reader = gpu if gpu is not None else NvmlUsageReader()
    sweep = _Sweep(cfg, observer or SilentObserver(), reader, resume, on_server_ready, judge)
    return sweep.execute()
