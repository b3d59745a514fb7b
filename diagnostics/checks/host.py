"""The doctor's own host: a starved one makes every timing and timeout a verdict on the host,
not on the server, so it is named (host_starved) with what was measured."""

from __future__ import annotations

from diagnostics.checks.base import Check
from diagnostics.deadline import NotJudged
from diagnostics.facts import Facts
from diagnostics.findings import Finding, Outcome, Severity
from diagnostics.probes.host_load import CPU_WINDOW_S, TIMER_SLEEP_S, HostLoad
from picoclaw_vllm.finding_ids import FindingId

# Idle on the 2-core test host: start-up to main() 0.3-0.5 s, timer lag under 1 ms; shared
# with other jobs (load average 8) a bare start-up took up to 4.7 s, below these. Starved
# (the engine on both cores, tests/engine_cpu.py): start-up 1.4-53 s. The timer-lag threshold
# is a judgement (10x a 10 ms sleep), not yet measured under starvation.
STARTUP_STARVED_S = 8.0
TIMER_LAG_STARVED_S = 0.100
# a CPU vLLM that uses nearly every core leaves none to its clients
VLLM_SHARE_CROWDED = 0.85
REMEDY = (
    "run the doctor (and PicoClaw) from another host, or give a CPU vLLM its own cores: "
    "taskset -c 1-N vllm serve ... / docker run --cpuset-cpus 1-N --cpus N, leaving at least "
    "one core to the API server and its clients (a CPU vLLM busy decoding uses every core it "
    "is given); then run the doctor again"
)


def _evidence(load: HostLoad, startup_s: float | None) -> list[str]:
    seen = []
    if startup_s is not None:
        seen.append(f"start-up to the doctor's first line {startup_s:.2f} s (idle: about 0.4 s)")
    seen.append(
        f"a {TIMER_SLEEP_S * 1000:.0f} ms sleep overslept by {load.timer_lag_s * 1000:.1f} ms "
        f"(median of 5, worst {load.worst_lag_s * 1000:.1f} ms; idle: under 1 ms)"
    )
    if load.load_1m is not None:
        seen.append(f"load average {load.load_1m:.1f} on {load.cores} cores")
    if load.vllm_cores is not None:
        pids = ",".join(str(p) for p in load.vllm_pids)
        seen.append(
            f"the local vLLM (pid {pids} and children) used {load.vllm_cores:.1f} of "
            f"{load.cores} cores"
        )
    return seen


def check_host(facts: Facts) -> Outcome:
    try:
        load = facts.host_load()
    except NotJudged as e:
        # half a second of sleeps that did not end within its share of the budget is itself
        # the doctor starved (measured under an unpinned overloaded CPU vLLM on 2 cores)
        return Outcome.of(
            Finding(
                FindingId.HOST_STARVED,
                Severity.FAIL,
                f"this host is starved of CPU: the doctor's own {CPU_WINDOW_S:g} s load "
                "measurement did not finish in time, so its timings judge the host, not the "
                "server",
                evidence=str(e).removeprefix("not judged: ")
                + (
                    f"; start-up to the doctor's first line {facts.options.startup_s:.2f} s"
                    if facts.options.startup_s is not None
                    else ""
                ),
                remedy=REMEDY,
            )
        )
    startup = facts.options.startup_s
    seen = _evidence(load, startup)
    signs = []
    if startup is not None and startup > STARTUP_STARVED_S:
        signs.append(f"start-up {startup:.1f} s > {STARTUP_STARVED_S:g} s")
    if load.timer_lag_s > TIMER_LAG_STARVED_S:
        lag, limit = load.timer_lag_s * 1000, TIMER_LAG_STARVED_S * 1000
        signs.append(f"timer lag {lag:.0f} ms > {limit:.0f} ms")
    if not signs:
        return Outcome.ok(*seen)
    crowded = load.vllm_cores is not None and load.vllm_cores >= VLLM_SHARE_CROWDED * load.cores
    cause = " by the local vLLM" if crowded else ""
    return Outcome.of(
        Finding(
            FindingId.HOST_STARVED,
            Severity.FAIL,
            f"this host is starved of CPU{cause} ({'; '.join(signs)}): the doctor's timings "
            "and timeouts judge the host, not the server",
            evidence="; ".join(seen),
            remedy=REMEDY,
        ),
        notes=seen,
    )


CHECKS = (
    Check("host", "Doctor's host not starved", "Host", check_host, (), (FindingId.HOST_STARVED,)),
)
