"""A starved host, a hung engine and a cold prefix cache, judged from seeded facts (no server):
what the doctor concludes from answers that did not come, from its own timer lag, from
/metrics counters. The real-server cases are in tests/test_diagnose_engine_state.py. The NVML
reader that stalls is a fake: there is no GPU here."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from diagnostics.checks.host import check_host
from diagnostics.checks.picoclaw_request import check_completion
from diagnostics.checks.prefix_cache import check_prefix_cache
from diagnostics.checks.tool_calling import CHECKS as TOOL_CHECKS
from diagnostics.deadline import NotJudged
from diagnostics.facts import Facts
from diagnostics.options import DiagnoseOptions
from diagnostics.probes.host_load import HostLoad, measure
from diagnostics.probes.http import ConnectionFailure, HttpAnswer, StreamTiming
from diagnostics.runner import _judge
from picoclaw_vllm.nvml import GpuSnapshot
from picoclaw_vllm.vllm_api import metrics

OPTIONS = DiagnoseOptions(api_base="http://127.0.0.1:9/v1", timeout_s=2.0)
NO_ANSWER = HttpAnswer(
    "POST", "http://127.0.0.1:9/v1/chat/completions", elapsed_s=2.0,
    failure=ConnectionFailure("no_answer", "127.0.0.1:9 sent no answer within 2 s"),
)  # fmt: skip
HEALTHY = HttpAnswer("GET", "http://127.0.0.1:9/health", 200)


def _metrics(generated: float, running: float = 1.0, waiting: float = 0.0) -> metrics.Metrics:
    return metrics.parse(
        f'vllm:generation_tokens_total{{engine="0"}} {generated}\n'
        f'vllm:num_requests_running{{engine="0"}} {running}\n'
        f'vllm:num_requests_waiting{{engine="0"}} {waiting}\n'
    )


def test_a_forced_call_that_got_no_answer_is_not_judged() -> None:
    """The measured failure: a forced call that timed out was blamed on the parser."""
    facts = Facts.seeded(OPTIONS, tool_call=NO_ANSWER)
    tool_call = next(c for c in TOOL_CHECKS if c.name == "tool_call")
    result = _judge(tool_call, facts, time.monotonic())
    assert result.outcome.findings == []
    assert result.outcome.skipped is not None
    assert result.outcome.skipped.startswith("not judged: no answer")
    assert "see slow_responses" in result.outcome.skipped


def test_answered_passes_an_answer_through() -> None:
    facts = Facts.seeded(OPTIONS)
    ok = HttpAnswer("POST", "u", 200, "{}")
    assert facts.answered(ok) is ok
    with pytest.raises(NotJudged):
        facts.answered(NO_ANSWER)


def _hung_facts(before: float, after: float, waiting: float = 0.0) -> Facts:
    return Facts.seeded(
        OPTIONS, health=HEALTHY, chat=NO_ANSWER, chat_stream=StreamTiming(NO_ANSWER),
        metrics_before=_metrics(before), metrics_after=_metrics(after, waiting=waiting),
    )  # fmt: skip


def test_no_token_with_flat_generation_is_a_hung_engine() -> None:
    (finding,) = check_completion(_hung_facts(120.0, 120.0)).findings
    assert finding.id == "engine_hung" and finding.severity == "fail"
    assert "120 -> 120 (flat)" in finding.evidence
    assert "py-spy dump --pid" in finding.remedy


def test_no_answer_while_tokens_flow_is_slowness_not_a_hang() -> None:
    (finding,) = check_completion(_hung_facts(120.0, 900.0, waiting=6.0)).findings
    assert finding.id == "slow_responses" and finding.severity == "fail"
    assert "6 requests wait" in finding.message


def test_no_answer_with_no_queue_seen_is_slowness_not_a_broken_request() -> None:
    (finding,) = check_completion(_hung_facts(120.0, 900.0)).findings
    assert finding.id == "slow_responses" and "host_starved" in finding.message


def _load(lag_s: float, vllm_cores: float | None = None) -> HostLoad:
    return HostLoad(lag_s, lag_s * 2, 7.5, 2, vllm_cores, (4242,) if vllm_cores else ())


@pytest.mark.parametrize(
    ("lag_s", "startup_s", "starved"),
    [(0.0004, 0.4, False), (0.2, 0.4, True), (0.0004, 12.0, True), (0.0004, None, False)],
)
def test_host_starvation_is_named_from_the_doctors_own_lag(
    lag_s: float, startup_s: float | None, starved: bool
) -> None:
    options = DiagnoseOptions(api_base=OPTIONS.api_base, startup_s=startup_s)
    outcome = check_host(Facts.seeded(options, host_load=_load(lag_s, vllm_cores=1.9)))
    assert [str(f.id) for f in outcome.findings] == (["host_starved"] if starved else [])
    if starved:
        (finding,) = outcome.findings
        assert "by the local vLLM" in finding.message
        assert "load average 7.5 on 2 cores" in finding.evidence
        assert "1.9 of 2 cores" in finding.evidence
        assert "taskset" in finding.remedy and "another host" in finding.remedy


def test_the_timer_lag_probe_measures_this_process() -> None:
    load = measure([])
    assert 0 <= load.timer_lag_s <= load.worst_lag_s and load.cores >= 1
    assert load.vllm_cores is None


class StalledNvml:
    """An NVML read that never returns in time (a fake: no GPU here)."""

    def read(self) -> GpuSnapshot:
        time.sleep(5)
        return GpuSnapshot(gpus=())


def test_a_stalled_local_probe_is_cut_at_its_share_of_the_budget() -> None:
    facts = Facts(DiagnoseOptions(api_base=OPTIONS.api_base, deadline_s=4.0,
                                  gpu_reader=StalledNvml()))  # fmt: skip
    start = time.monotonic()
    with pytest.raises(NotJudged, match=r"more than 0\.6 s \(15% of the 4 s budget"):
        facts.gpus()
    assert time.monotonic() - start < 2.0
    assert facts.maybe(facts.gpus) is None
    facts.close()


def _usage(cached: int) -> str:
    return f'{{"choices": [], "usage": {{"prompt_tokens_details": {{"cached_tokens": {cached}}}}}}}'


@pytest.mark.parametrize(("cached", "warned"), [(0, True), (1488, False)])
def test_prefix_cache_from_cached_tokens(cached: int, warned: bool) -> None:
    again = HttpAnswer("POST", "u", 200, _usage(cached))
    outcome = check_prefix_cache(Facts.seeded(OPTIONS, chat_again=again))
    assert [str(f.id) for f in outcome.findings] == (["prefix_cache_off"] if warned else [])
    text = " ".join(f.evidence for f in outcome.findings) + " ".join(outcome.notes)
    assert "cached_tokens" in text


def _counters(prompt: float, queries: float | None, hits: float | None) -> metrics.Metrics:
    lines = [f"vllm:prompt_tokens_total {prompt}"]
    if queries is not None:
        lines.append(f"vllm:prefix_cache_queries_total {queries}")
    if hits is not None:
        lines.append(f"vllm:prefix_cache_hits_total {hits}")
    return metrics.parse("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("after", "verdict"),
    [
        (_counters(4000, 3000, 2976), "pass"),
        (_counters(4000, 3000, 0), "found nothing"),
        (_counters(4000, 0, 0), "looked nothing up"),
        (_counters(1000, 0, 0), "not judged"),
    ],
)
def test_prefix_cache_from_the_counters(after: metrics.Metrics, verdict: str) -> None:
    again = HttpAnswer("POST", "u", 200, '{"choices": [], "usage": {"prompt_tokens": 1488}}')
    facts = Facts.seeded(
        OPTIONS, chat_again=again, metrics_before=_counters(1000, 0, 0), metrics_prefix=after
    )
    outcome = check_prefix_cache(facts)
    if verdict == "pass":
        assert outcome.findings == [] and outcome.skipped is None
        assert "hits +2976" in outcome.notes[0]
    elif verdict == "not judged":
        assert outcome.skipped is not None and outcome.skipped.startswith("not judged")
    else:
        (finding,) = outcome.findings
        assert finding.id == "prefix_cache_off" and verdict in finding.message
        assert "--enable-prefix-caching" in finding.remedy


def test_the_watchdog_ends_an_overrun_with_one_line_and_exit_1() -> None:
    code = textwrap.dedent(
        """
        import time
        from diagnostics.watchdog import Watchdog
        Watchdog(time.monotonic(), budget_s=0.3, grace_s=0.2).run(lambda: time.sleep(30) or 0)
        """
    )
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    wall = time.monotonic() - start
    assert proc.returncode == 1 and wall < 20
    (line,) = proc.stderr.strip().splitlines()
    assert "no diagnosis within the 0.3 s deadline + 0.2 s grace" in line
    assert "host_starved" in line


def test_the_watchdog_stays_silent_when_the_run_ends_in_time() -> None:
    code = textwrap.dedent(
        """
        import time
        from diagnostics.watchdog import Watchdog
        import threading

        def work():
            # a thread that would hold a normal exit for 30 s: the answer, once flushed, ends it
            threading.Thread(target=time.sleep, args=(30,)).start()
            print("done")
            return 4

        Watchdog(time.monotonic(), budget_s=0.5, grace_s=0.2).run(work)
        """
    )
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 4 and proc.stdout == "done\n" and proc.stderr == ""
    assert time.monotonic() - start < 20
