"""Sweep pieces without a server: ids, commands, /metrics figures, results files, labels."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pandas as pd
import pytest

from loadtests.option_table import sweep_defaults
from loadtests.records import RecordWriter, RequestRecord
from picoclaw_vllm import run_layout
from picoclaw_vllm.errors import LaunchError, UsageError
from sweeps.command import add_arguments, config_from_args, duration
from sweeps.config import LoadStep, SweepConfig
from sweeps.engine import failure_label, no_measurement, server_setup
from sweeps.locust_process import RecordTail, locust_command
from sweeps.results import ALL_COLUMNS, RunDir
from sweeps.server_metrics import GpuUsage, ServerSample, StepSampler, figures, parse_prometheus
from sweeps.step_figures import GoodputSlo
from sweeps.summary import best_steps

METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 2.0
vllm:num_requests_running{engine="1",model_name="m"} 1.0
vllm:num_requests_waiting{engine="0",model_name="m"} 5.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75
vllm:num_preemptions_total{engine="0",model_name="m"} 3.0
vllm:prompt_tokens_total{engine="0",model_name="m"} 1000.0
vllm:generation_tokens_total{engine="0",model_name="m"} 500.0
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 100.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 7.0
weird line without value
vllm:bad{a="b"} NaN
"""


class TestServerMetrics:
    def test_parse_sums_engines_and_takes_the_fullest_kv_cache(self) -> None:
        m = parse_prometheus(METRICS)
        assert m["vllm:num_requests_running"] == 3.0
        assert m["vllm:kv_cache_usage_perc"] == 0.75
        assert m["vllm:num_preemptions_total"] == 3.0
        assert "vllm:bad" not in m

    def test_figures_from_a_window(self) -> None:
        base = parse_prometheus(METRICS)

        def at(t: float, running: float, waiting: float, kv: float, grow: float) -> ServerSample:
            m = dict(base)
            m |= {
                "vllm:num_requests_running": running,
                "vllm:num_requests_waiting": waiting,
                "vllm:kv_cache_usage_perc": kv,
            }
            for name in ("vllm:prompt_tokens_total", "vllm:generation_tokens_total"):
                m[name] = base[name] + grow
            m["vllm:prefix_cache_queries_total"] = base["vllm:prefix_cache_queries_total"] + grow
            m["vllm:prefix_cache_hits_total"] = base["vllm:prefix_cache_hits_total"] + grow / 4
            return ServerSample(t, m, GpuUsage(1000.0 + grow, 50.0))

        samples = [at(0, 9, 9, 0.9, 0), at(1, 2, 0, 0.2, 100), at(2, 2, 4, 0.5, 300)]
        cols = figures(samples)
        # the baseline (first) sample's gauges are not part of the window
        assert cols["server_running_max"] == 2 and cols["server_waiting_max"] == 4
        assert cols["server_waiting_mean"] == pytest.approx(2.0)
        assert cols["server_kv_cache_max"] == pytest.approx(0.5)
        assert cols["server_prompt_tokens"] == 300 and cols["server_generation_tokens"] == 300
        assert cols["server_preemptions"] == 0
        assert cols["server_prefix_cache_hit_rate"] == pytest.approx(0.25)
        assert cols["gpu_memory_used_max_mib"] == 1300.0
        assert cols["gpu_utilization_mean"] == 50.0
        assert set(cols) == set(run_layout.SERVER_COLUMNS)

    def test_gauges_stop_at_the_last_measured_request(self) -> None:
        def at(t: float, running: float, generated: float) -> ServerSample:
            return ServerSample(
                t,
                {"vllm:num_requests_running": running, "vllm:generation_tokens_total": generated},
            )

        # load until t=2.5, then the load generator exits and vLLM idles until t=4
        samples = [at(0, 0, 0), at(1, 4, 100), at(2, 2, 200), at(3, 0, 250), at(4, 0, 250)]
        cols = figures(samples, gauges_until=2.5)
        assert cols["server_running_mean"] == pytest.approx(3.0)
        assert cols["server_generation_tokens"] == 250  # counters still run to the end
        whole = figures(samples)
        assert whole["server_running_mean"] == pytest.approx(1.5)
        # no sample while the load ran: the gauges were not measured (not the idle readings)
        unsampled = figures(samples, gauges_until=0.5)
        assert unsampled["server_running_max"] is None and unsampled["server_kv_cache_max"] is None
        assert unsampled["server_generation_tokens"] == 250

    def test_means_by_littles_law_from_request_time_histograms(self) -> None:
        def at(
            t: float, running: float, finished: float, running_s: float, queue_s: float
        ) -> ServerSample:
            return ServerSample(
                t,
                {
                    "vllm:num_requests_running": running,
                    "vllm:num_requests_waiting": 0.0,
                    "vllm:request_inference_time_seconds_sum": running_s,
                    "vllm:request_inference_time_seconds_count": finished,
                    "vllm:request_queue_time_seconds_sum": queue_s,
                    "vllm:request_queue_time_seconds_count": finished,
                },
            )

        # 20 requests finished, each 0.09 s running and 0.05 s queued; the gauges read 0
        # because the busy server answered /metrics between requests
        samples = [at(0, 0, 10, 1.0, 0.5), at(1, 0, 20, 1.9, 1.0), at(2, 0, 30, 2.8, 1.5)]
        cols = figures(samples, request_rate=10.0)
        assert cols["server_running_mean"] == pytest.approx(0.9)
        assert cols["server_waiting_mean"] == pytest.approx(0.5)
        assert cols["server_queue_ms_mean"] == pytest.approx(50.0)
        assert cols["server_running_max"] == 0  # the max stays the sampled gauge
        # without the measured request rate the means are the sampled gauges'
        sampled = figures(samples)
        assert sampled["server_running_mean"] == 0
        assert sampled["server_queue_ms_mean"] == pytest.approx(50.0)
        # no request finished in the window: nothing to average over
        idle = figures([samples[0], samples[0]], request_rate=10.0)
        assert idle["server_running_mean"] == 0 and idle["server_queue_ms_mean"] is None

    def test_no_samples_no_figures(self) -> None:
        assert set(figures([]).values()) == {None}

    def test_sampler_window_keeps_one_baseline(self) -> None:
        values = iter(range(100))
        sampler = StepSampler(lambda: {"x": float(next(values))}, interval_s=0.01)
        for t in (1.0, 2.0, 3.0, 4.0):
            sampler.samples.append(ServerSample(t, {}))
        assert [s.at for s in sampler.window(2.5)] == [2.0, 3.0, 4.0]

    def test_sampler_without_server_records_nothing(self) -> None:
        sampler = StepSampler(lambda: None, interval_s=0.01)
        sampler.start()
        sampler.stop()
        assert sampler.samples == []


class TestConfig:
    def test_ids_and_steps(self) -> None:
        cfg = SweepConfig(
            out=Path("x"), max_num_seqs=(2, 8), tensor_parallel_sizes=(1, 2), concurrency=(1, 4)
        )
        plan = cfg.settings()
        assert [p.setting_id for p in plan] == ["s2-tp1", "s8-tp1", "s2-tp2", "s8-tp2"]
        assert [sid for sid, _ in plan[0].steps] == ["s2-tp1-c1", "s2-tp1-c4"]

    def test_rate_steps_use_concurrency_as_cap(self) -> None:
        cfg = SweepConfig(out=Path("x"), rates=(0.5, 2), concurrency=(16,))
        assert [sid for sid, _ in cfg.settings()[0].steps] == [
            "sdefault-tp1-r0.5-c16",
            "sdefault-tp1-r2-c16",
        ]
        assert cfg.loads()[0] == LoadStep("rate", 16, 0.5)

    def test_external_is_one_setting(self) -> None:
        cfg = SweepConfig(out=Path("x"), launch="external", max_num_seqs=(2, 8))
        assert [p.setting_id for p in cfg.settings()] == ["external"]

    def test_json_round_trip_never_holds_the_key(self) -> None:
        cfg = SweepConfig(
            out=Path("x"), api_key="sekrit-123", slo=GoodputSlo(ttft_ms=5.0), rates=(1.0,)
        )
        data = cfg.to_json()
        assert "sekrit-123" not in repr(data) and "api_key" not in data
        assert SweepConfig.from_json(data, api_key="k") == cfg.__class__(
            **{**cfg.__dict__, "api_key": "k"}
        )

    def test_cli_arguments(self) -> None:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(
            [
                "--out",
                "runs/x",
                "--max-num-seqs",
                "8,32",
                "--tensor-parallel-size",
                "1,2",
                "--concurrency",
                "1,8",
                "--duration",
                "2m",
                "--warmup",
                "500ms",
                "--slo-ttft-ms",
                "300",
                "--api-key",
                "k",
            ]
        )
        cfg = config_from_args(args)
        assert cfg.max_num_seqs == (8, 32) and cfg.tensor_parallel_sizes == (1, 2)
        assert (cfg.duration_s, cfg.warmup_s) == (120.0, 0.5)
        assert cfg.slo == GoodputSlo(ttft_ms=300.0) and cfg.api_key == "k"
        with pytest.raises(argparse.ArgumentTypeError):
            duration("soon")

    def test_external_needs_api_base(self) -> None:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        with pytest.raises(UsageError):
            config_from_args(parser.parse_args(["--out", "x", "--launch", "external"]))

    def test_local_settings_keep_the_key_off_the_command_line(self) -> None:
        cfg = SweepConfig(
            out=Path("x"), api_key="sekrit-123", max_num_seqs=(4,), tensor_parallel_sizes=(2,)
        )
        settings, backend, base = server_setup(cfg, cfg.settings()[0])
        cmd = backend.command(settings)
        assert base is None and cmd is not None
        assert "sekrit-123" not in shlex.join(cmd)
        assert backend.environment(settings)["VLLM_API_KEY"] == "sekrit-123"
        assert cmd[cmd.index("--max-num-seqs") :][:2] == ["--max-num-seqs", "4"]
        assert "--tensor-parallel-size" in cmd


class TestLocustCommand:
    def test_command(self) -> None:
        cfg = SweepConfig(
            out=Path("x"), api_key="sekrit-123", duration_s=5.5, workers=2,
            load=sweep_defaults(warmup_s=2.0),
        )  # fmt: skip
        cmd = locust_command(
            cfg,
            LoadStep("rate", 8, 1.5),
            step_id="s1",
            host="http://h:1",
            model="m",
            records=Path("r.jsonl"),
        )
        line = shlex.join(cmd)
        assert "sekrit" not in line
        assert "-t 8s" in line and "-u 8" in line and "--processes 2" in line
        assert "--load-mode rate --step-id s1" in line and "--rate 1.5" in line


class TestRunDir:
    def test_rows_append_and_parquet_follows(self, tmp_path: Path) -> None:
        run = RunDir(tmp_path / "run")
        run.append_row(
            {"step_id": "a", "setting_id": "s", "status": "ok", "completed": 3, "ttft_ms_p50": 1.5}
        )
        run.append_row({"step_id": "b", "setting_id": "s", "status": "failed", "failure_id": "oom"})
        assert run.finished_ids() == {"a", "b"}
        df = pd.read_parquet(tmp_path / "run" / run_layout.RESULTS_PARQUET)
        assert list(df.columns) == ALL_COLUMNS
        assert set(run_layout.COLUMNS) <= set(df.columns)
        assert df["failure_id"].tolist()[1] == "oom" and df["completed"].tolist()[0] == 3

    def test_resuming_a_run_with_older_columns_keeps_every_row_aligned(
        self, tmp_path: Path
    ) -> None:
        run = RunDir(tmp_path / "run")
        run.path.mkdir()
        older = [c for c in ALL_COLUMNS if c != "server_queue_ms_mean"]
        run.csv_path.write_text(",".join(older) + "\n" + ",".join(
            {"step_id": "a", "setting_id": "s", "status": "ok", "completed": "3"}.get(c, "")
            for c in older
        ) + "\n")  # fmt: skip
        run.append_row({"step_id": "b", "setting_id": "s", "status": "ok", "completed": 5})
        df = pd.read_parquet(run.path / run_layout.RESULTS_PARQUET)
        assert list(df.columns) == ALL_COLUMNS
        assert df["step_id"].tolist() == ["a", "b"]
        assert df["completed"].tolist() == [3, 5]
        assert df["status"].tolist() == ["ok", "ok"]

    def test_unknown_column_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError):
            RunDir(tmp_path).append_row({"step_id": "a", "nope": 1})

    def test_record_tail_reads_only_whole_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "r.jsonl"
        writer = RecordWriter(path)
        writer.write(
            RequestRecord(
                step_id="s", request_id="1", worker="w", start_unix=1.0, ok=True, output_tokens=4
            )
        )
        writer.write(
            RequestRecord(
                step_id="s", request_id="2", worker="w", start_unix=1.0, ok=False, error="x"
            )
        )
        writer.close()
        with path.open("a") as f:
            f.write('{"partial": ')
        tail = RecordTail(path)
        tail.poll()
        assert (tail.requests, tail.failures, tail.output_tokens) == (2, 1, 4)


class TestLabels:
    def test_failure_label_names_the_doctor_finding(self) -> None:
        log = (
            "INFO starting\n"
            "(EngineCore pid=1) ERROR ValueError: Total number of attention heads (4) must be "
            "divisible by tensor parallel size (3).\n"
            "RuntimeError: Engine core initialization failed. See root cause above.\n"
        )
        finding, line = failure_label(LaunchError("exited", log_text=log))
        assert finding == "tensor_parallel_invalid"
        assert "divisible by tensor parallel size (3)" in line

    def test_failure_without_log(self) -> None:
        assert failure_label(LaunchError("not ready after 5 s")) == (
            "server_start_failed",
            "not ready after 5 s",
        )

    def test_best_steps(self) -> None:
        rows = [
            {
                "step_id": "a",
                "status": "ok",
                "completed": "5",
                "output_throughput": "100",
                "ttft_ms_p99": "900",
                "goodput": "1",
            },
            {
                "step_id": "b",
                "status": "ok",
                "completed": "5",
                "output_throughput": "50",
                "ttft_ms_p99": "100",
                "goodput": "2",
            },
            {"step_id": "c", "status": "failed", "completed": ""},
        ]
        best = {
            b.label: (b.row or {}).get("step_id") for b in best_steps(rows, GoodputSlo(ttft_ms=500))
        }
        assert best == {
            "highest output tok/s": "a",
            "highest tok/s with p99 TTFT <= 500 ms": "b",
            "highest goodput (all SLOs)": "b",
        }


class TestSweepGpuReader:
    """No GPU exists here: the sweep's GPU columns are fed a recorded NVML reading."""

    DATA = Path(__file__).parent / "data" / "diagnose" / "nvml"

    def test_recorded_reading_becomes_a_sample(self) -> None:
        from picoclaw_vllm.nvml import RecordedReader
        from sweeps.server_metrics import NvmlUsageReader

        reader = NvmlUsageReader(
            RecordedReader.from_file(self.DATA / "h100_80gb_training_job.json")
        )
        sample = reader.read()
        assert sample is not None
        assert sample.memory_used_mib == 49664
        assert sample.utilization_pct == 97

    def test_no_driver_reads_nothing(self) -> None:
        from picoclaw_vllm.nvml import RecordedReader
        from sweeps.server_metrics import NvmlUsageReader

        assert NvmlUsageReader(RecordedReader({"not_applicable": "no driver"})).read() is None


class TestNoMeasurement:
    def test_a_step_that_only_warmed_up_says_why(self) -> None:
        # a machine paused for 3 minutes during a 7 s step: three warm-up requests, nothing else
        why = no_measurement(3, wall_s=195.2, duration_s=6.0)
        assert "3 warm-up request(s) only, in 195 s for a 6 s step" in why
        assert "stalled" in why
