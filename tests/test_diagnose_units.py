"""Small pieces judged in isolation: network-error naming, /metrics parsing, and the causes
slow_responses gives (facts seeded directly, recorded NVML for the GPU)."""

from __future__ import annotations

import ssl

import httpx
import pytest

from diagnostics.checks.performance import check_latency
from diagnostics.checks.picoclaw_request import check_completion, check_model
from diagnostics.checks.server import check_api_base, check_connection
from diagnostics.facts import Facts, LatencySample
from diagnostics.options import DiagnoseOptions
from diagnostics.probes.http import HttpAnswer, StreamTiming, classify
from picoclaw_vllm.nvml import RecordedReader
from picoclaw_vllm.vllm_api import metrics

URL = "https://gpu-box:8443/v1/models"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectTimeout("timed out"), "connect_timeout"),
        (httpx.ReadTimeout("timed out"), "no_answer"),
        (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "tls"),
        (httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number"), "wrong_scheme"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "dns"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "refused"),
        (httpx.RemoteProtocolError("illegal status line"), "protocol"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "closed"),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), "closed"),
        (httpx.UnsupportedProtocol("Request URL is missing a scheme"), "wrong_scheme"),
    ],
)
def test_network_errors_are_named(exc: Exception, kind: str) -> None:
    assert classify(exc, URL, 3.0).kind == kind


def test_ssl_error_in_the_cause_chain_is_tls() -> None:
    try:
        try:
            raise ssl.SSLCertVerificationError("self-signed certificate")
        except ssl.SSLError as inner:
            raise httpx.ConnectError("handshake failed") from inner
    except httpx.ConnectError as e:
        assert classify(e, URL, 3.0).kind == "tls"


METRICS_BEFORE = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 256.0
vllm:num_requests_waiting{engine="0",model_name="m"} 0.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.97
vllm:num_preemptions_total{engine="0",model_name="m"} 3.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 12.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 4.0
"""
PREEMPTIONS = 'vllm:num_preemptions_total{engine="0",model_name="m"}'
METRICS_AFTER = METRICS_BEFORE.replace(f"{PREEMPTIONS} 3.0", f"{PREEMPTIONS} 11.0")


def test_metrics_parse() -> None:
    m = metrics.parse(METRICS_BEFORE)
    assert (m.running, m.waiting, m.kv_usage, m.preemptions) == (256.0, 0.0, 0.97, 3.0)
    assert m.histogram_mean("vllm:time_to_first_token_seconds") == 3.0
    assert metrics.parse("vllm:gpu_cache_usage_perc 0.5\ngarbage line\n").kv_usage == 0.5


def seeded(sample: LatencySample, gpu_util: float = 20.0) -> Facts:
    gpu = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_total_mib": 81559,
           "memory_used_mib": 70000, "utilization_gpu_percent": gpu_util}  # fmt: skip
    reading = {"gpus": [gpu]}
    return Facts.seeded(DiagnoseOptions(gpu_reader=RecordedReader(reading)), latency=sample)


def stream(ttft: float, itl: float) -> StreamTiming:
    return StreamTiming(HttpAnswer("POST", "u", 200), ttft, [itl] * 5, 6)


def test_kv_pressure_and_network_are_named() -> None:
    sample = LatencySample(
        [stream(3.0, 0.05)] * 3,
        [metrics.parse(METRICS_BEFORE), metrics.parse(METRICS_AFTER)],
        rtt_s=0.120,
    )
    outcome = check_latency(seeded(sample))
    (finding,) = outcome.findings
    assert "KV cache pressure" in finding.message
    assert (
        "8 preemptions" in finding.evidence
        and "round trip to the server 120 ms" in finding.evidence
    )
    assert "--gpu-memory-utilization" in finding.remedy and "closer to the server" in finding.remedy


def test_slow_decode_with_busy_gpu() -> None:
    idle = metrics.parse(METRICS_BEFORE.replace("0.97", "0.20"))
    sample = LatencySample([stream(0.1, 0.5)] * 3, [idle, idle], rtt_s=0.001)
    (finding,) = check_latency(seeded(sample, gpu_util=100.0)).findings
    assert "ITL 500 ms > 200 ms" in finding.message
    assert "GPU saturated" in finding.message and "--tensor-parallel-size" in finding.remedy


def test_slow_prefill_without_queue() -> None:
    idle = metrics.parse(METRICS_BEFORE.replace("0.97", "0.20"))
    sample = LatencySample([stream(4.0, 0.01)] * 3, [idle, idle], rtt_s=0.001)
    (finding,) = check_latency(seeded(sample)).findings
    assert "prefill" in finding.message and "--max-num-batched-tokens" in finding.remedy


def queue_histogram(waited_s: float, finished: int) -> str:
    return (
        f'vllm:request_queue_time_seconds_sum{{engine="0",model_name="m"}} {waited_s}\n'
        f'vllm:request_queue_time_seconds_count{{engine="0",model_name="m"}} {finished}\n'
    )


def test_queueing_shows_in_the_queue_time_histogram_when_the_gauge_reads_zero() -> None:
    idle = METRICS_BEFORE.replace("0.97", "0.20")  # waiting gauge 0, as a busy server answers
    before = metrics.parse(idle + queue_histogram(1.0, 10))
    after = metrics.parse(idle + queue_histogram(1.0 + 6 * 1.5, 16))  # 6 waited 1.5 s each
    sample = LatencySample([stream(4.0, 0.01)] * 3, [before, after], rtt_s=0.001)
    (finding,) = check_latency(seeded(sample)).findings
    assert "queueing" in finding.message
    assert "waited 1500 ms on average in vLLM's queue" in finding.message
    assert "--max-num-seqs" in finding.remedy
    # a queue wait that is a small part of a slow first token is not the cause
    short = metrics.parse(idle + queue_histogram(1.0 + 6 * 0.2, 16))
    sample = LatencySample([stream(4.0, 0.01)] * 3, [before, short], rtt_s=0.001)
    (finding,) = check_latency(seeded(sample)).findings
    assert "queueing:" not in finding.message and "prefill" in finding.message


def test_fast_enough_passes() -> None:
    sample = LatencySample([stream(0.05, 0.01)] * 3, [], rtt_s=0.001)
    assert check_latency(seeded(sample)).findings == []


def test_no_model_configured_names_the_served_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICOCLAW_HOME", "/nonexistent")
    models = HttpAnswer("GET", "u", 200, '{"data": [{"id": "tiny-llama", "max_model_len": 1024}]}')
    facts = Facts.seeded(DiagnoseOptions(api_base="http://127.0.0.1:9/v1"), models=models)
    (finding,) = check_model(facts).findings
    assert finding.id == "model_not_found" and "no model configured" in finding.message
    assert '"model": "vllm/tiny-llama"' in finding.remedy


@pytest.mark.parametrize(
    ("api_base", "fixed"),
    [
        ("http://h:8000", "http://h:8000/v1"),
        ("http://h:8000/v1/chat/completions", "http://h:8000/v1"),
        ("http://h:8000/openai", "http://h:8000/openai/v1"),
    ],
)
def test_api_base_fix_is_exact(api_base: str, fixed: str) -> None:
    not_found = HttpAnswer("GET", "u", 404)
    options = DiagnoseOptions(api_base=api_base, config_path=None)
    facts = Facts.seeded(options, models=not_found, models_v1=not_found)
    (finding,) = check_api_base(facts).findings
    assert f'"api_base": "{fixed}"' in finding.remedy


def test_html_404_page_is_not_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICOCLAW_HOME", "/nonexistent")
    page = HttpAnswer("GET", "http://h/v1/models", 404, "<html><body>404</body></html>",
                      "text/html")  # fmt: skip
    facts = Facts.seeded(DiagnoseOptions(api_base="http://h/v1"), models=page, health=page)
    (finding,) = check_connection(facts).findings
    assert finding.id == "unexpected_answer" and "HTML page" in finding.message


@pytest.mark.parametrize("late", [True, False])
def test_an_answer_later_than_the_timeout_in_a_full_queue_is_slowness(late: bool) -> None:
    """On a starved machine the client's 1 s timer can fire only after the answer came: an
    answer past the timeout counts as no answer in time (seeded answers, as measured in CI)."""
    body = '{"choices": [{"message": {"content": "x"}}]}'
    elapsed = 16.4 if late else 0.2
    facts = Facts.seeded(
        DiagnoseOptions(api_base="http://127.0.0.1:9/v1", timeout_s=1.0, config_path=None),
        chat=HttpAnswer("POST", "u", 200, body, elapsed_s=elapsed),
        chat_stream=StreamTiming(HttpAnswer("POST", "u", 200, elapsed_s=0.3), 0.2, [], 1),
        metrics_before=metrics.parse(
            'vllm:num_requests_waiting{engine="0"} 6.0\nvllm:num_requests_running{engine="0"} 2.0\n'
        ),
    )
    findings = check_completion(facts).findings
    if late:
        (finding,) = findings
        assert finding.id == "slow_responses" and "6 requests wait" in finding.message
        assert "answered only after 16.4 s" in finding.evidence
    else:
        assert findings == []


def test_seeding_a_probe_that_does_not_exist_fails() -> None:
    with pytest.raises(ValueError, match="modles"):
        Facts.seeded(DiagnoseOptions(), modles=HttpAnswer("GET", "u", 200))
