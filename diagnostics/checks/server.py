"""Reaching the server: something answers, at the right path, alive, and accepting the key."""

from __future__ import annotations

from urllib.parse import urlsplit

from diagnostics.checks.base import Check, config_where, key_line
from diagnostics.deadline import NotJudged
from diagnostics.facts import Facts
from diagnostics.findings import Finding, Outcome, Severity
from diagnostics.http_signatures import kind_of
from diagnostics.probes.http import HttpAnswer
from diagnostics.probes.processes import VllmProcess
from diagnostics.remedies import ENGINE_DEAD_REMEDY
from diagnostics.server_runs import ServerLog, read_server_log
from picoclaw_vllm.finding_ids import FindingId

KIND_LABELS = {
    "refused": "connection refused",
    "dns": "DNS lookup failed",
    "connect_timeout": "connect timed out",
    "no_answer": "no answer within the timeout",
    "deadline": "no answer before the diagnosis's deadline",
    "stream_timeout": "a stream that did not end within the timeout",
    "tls": "TLS error",
    "wrong_scheme": "wrong URL scheme",
    "protocol": "not an HTTP server",
    "closed": "connection closed without an answer",
}
# a local vLLM that has not listened for longer than this is not "still starting"
STARTING_MAX_S = 600.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]"}

_CONNECTION_REMEDY = {
    "refused": "start vLLM (python -m vllm.entrypoints.openai.api_server --model MODEL "
    "--port {port} --enable-auto-tool-choice --tool-call-parser PARSER, see diagnose --list: "
    "tool_choice_rejected) or fix the port in api_base; check: curl {api_base}/models",
    "dns": "fix the host name in api_base, or use the server's IP address",
    "connect_timeout": "check the host is up and that no firewall drops port {port} "
    "(nc -vz {host} {port})",
    "no_answer": "the server accepts connections but is wedged or something else holds "
    "port {port}: check its log and `ss -ltnp 'sport = :{port}'`; restart vLLM",
    "deadline": "the server accepts connections but answers too slowly for the doctor's "
    "--deadline: check its load and log, or rerun with a longer --deadline",
    "tls": "use the scheme the server speaks (vLLM serves plain http:// unless given "
    "--ssl-keyfile) or fix the proxy's certificate",
    "wrong_scheme": '{where}: "api_base": "{fixed}" (vLLM speaks plain http:// by default)',
    "protocol": "point api_base at vLLM's HTTP port, not another service",
    "closed": "if vLLM runs in Docker: docker logs CONTAINER and wait for 'Application startup "
    "complete'; otherwise check what listens on port {port} (ss -ltnp 'sport = :{port}')",
}


def _port(api_base: str) -> int:
    parts = urlsplit(api_base)
    try:
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return 8000


def suggested_api_base(api_base: str) -> str:
    """api_base as PicoClaw needs it: http:// (unless https:// works) and a path ending in /v1.
    The one fix both the scheme and the path checks give."""
    scheme, sep, rest = api_base.partition("://")
    if not sep:
        scheme, rest = "http", api_base
    elif scheme.lower() not in ("http", "https"):
        scheme = "http"
    host, slash, path = rest.partition("/")
    path, qmark, query = (slash + path).partition("?")
    path = path.rstrip("/")
    cut = path.find("/v1/")
    path = path[: cut + 3] if cut >= 0 else path if path.endswith("/v1") else f"{path}/v1"
    return f"{scheme}://{host}{path}{qmark}{query}"


def _unexpected(answer: HttpAnswer, api_base: str) -> Finding | None:
    if answer.redirect:
        return Finding(
            FindingId.UNEXPECTED_ANSWER,
            Severity.FAIL,
            f"{answer.url} redirects ({answer.status}) to {answer.location or 'nowhere'}: "
            "PicoClaw's POST to /chat/completions does not survive a redirect",
            evidence=answer.describe(),
            remedy="point api_base at the address vLLM really answers on (where the redirect "
            "leads, if that is vLLM), not at a redirecting proxy",
        )
    if answer.failure is not None or (answer.status in (401, 404) and not answer.is_html):
        return None
    data = answer.json()
    if answer.status in (502, 503, 504) and (answer.is_html or data is None):
        return Finding(
            FindingId.UNEXPECTED_ANSWER,
            Severity.FAIL,
            f"a proxy answers {answer.status} instead of vLLM: the vLLM behind it is down",
            evidence=answer.describe(),
            remedy=f"start vLLM or fix the proxy's upstream address; then curl {api_base}/models",
        )
    if answer.is_html or (answer.ok and not isinstance(data, dict)):
        kind = "an HTML page" if answer.is_html else "a body that is not JSON"
        return Finding(
            FindingId.UNEXPECTED_ANSWER,
            Severity.FAIL,
            f"{answer.url} answers {answer.status} with {kind}: not vLLM's API",
            evidence=answer.describe(),
            remedy="point api_base at vLLM's OpenAI-compatible server (http://HOST:PORT/v1)",
        )
    return None


def check_connection(facts: Facts) -> Outcome:
    t = facts.target()
    answer = facts.models()
    health = facts.health()
    failed = answer if answer.failure is not None else None
    if failed is None or failed.failure is None:
        unexpected = _unexpected(answer, t.api_base) or _unexpected(facts.models_v1(), t.api_base)
        if unexpected is not None:
            return Outcome.of(unexpected)
        notes = [answer.describe(), health.describe()]
        return Outcome.ok(*(n[:200] for n in notes))
    failure = failed.failure
    if failure.kind == "deadline":  # no time was left to ask: nothing is known of the server
        raise NotJudged(f"not judged: {failure.message} (see host_starved, slow_responses)")
    parts = urlsplit(t.api_base)
    port = _port(t.api_base)
    if failure.kind == "refused" and (parts.hostname or "") in LOCAL_HOSTS:
        for proc in facts.maybe(facts.processes) or []:
            if proc.port == port:
                return _not_listening(facts, proc, port, failure.message)
    remedy = _CONNECTION_REMEDY.get(failure.kind, "check the address in api_base")
    return Outcome.of(
        Finding(
            FindingId.CONNECTION_REFUSED,
            Severity.FAIL,
            f"cannot reach vLLM at {t.api_base}: {KIND_LABELS.get(failure.kind, failure.kind)}",
            evidence=failed.describe(),
            remedy=remedy.format(
                port=port,
                host=parts.hostname,
                api_base=t.api_base,
                where=config_where(t),
                fixed=suggested_api_base(t.api_base.replace("https://", "http://", 1)),
            ),
        )
    )


def _log_of(facts: Facts, proc: VllmProcess) -> ServerLog | None:
    given = facts.server_log()
    if given is not None:
        return given
    path = proc.log_file()
    if path is None:
        return None
    try:
        return read_server_log(path=path, source=str(path))
    except OSError:
        return None


def _not_listening(facts: Facts, proc: VllmProcess, port: int, refused: str) -> Outcome:
    """A local vLLM holds the port but refuses: still starting only if young and loading."""
    age = proc.running_for_s
    log = _log_of(facts, proc)
    newest = log.newest if log is not None and not log.scan.nothing_read else None
    state = newest.outcome if newest is not None else None
    evidence = f"{refused}; local process (pid {proc.pid}, {age:.0f} s old): {proc.cmdline[:160]}"
    if log is not None and newest is not None:
        evidence += f"; its log {log.scan.source}: {state} ({newest.where(len(log.starts))})"
    young = age <= STARTING_MAX_S
    if young and state in (None, "starting"):
        confirmed = "its log is still loading" if state else "no log was found to confirm it"
        return Outcome(
            findings=[
                Finding(
                    FindingId.CONNECTION_REFUSED,
                    Severity.WARN,
                    f"vLLM is still starting: pid {proc.pid} has run for {age:.0f} s and does "
                    f"not listen on port {port} yet ({confirmed})",
                    evidence=evidence,
                    remedy="wait until its log shows 'Application startup complete' "
                    "(model download and load can take minutes), then rerun",
                )
            ],
            halt=True,
        )
    if state in ("died", "startup_failed", "stopped"):
        why = {"died": "its engine died", "startup_failed": "its start-up failed",
               "stopped": "it is shutting down"}[state]  # fmt: skip
        remedy = "read the Server log finding below for the cause; stop this process "
        remedy += f"(kill {proc.pid}) and start vLLM again"
    elif not young:
        why = f"it has run for {age:.0f} s (over {STARTING_MAX_S:.0f} s) without listening"
        remedy = f"look at its log for where it hangs; stop it (kill {proc.pid}) and restart"
    else:
        why = "its log says it was ready, yet the port refuses"
        remedy = f"check the port it listens on (ss -ltnp | grep {proc.pid}); restart it"
    return Outcome.of(
        Finding(
            FindingId.CONNECTION_REFUSED,
            Severity.FAIL,
            f"vLLM pid {proc.pid} does not listen on port {port}: {why}",
            evidence=evidence,
            remedy=remedy,
        )
    )


def check_api_base(facts: Facts) -> Outcome:
    t = facts.target()
    path = urlsplit(t.api_base).path.rstrip("/")
    if path.endswith("/v1"):
        return Outcome.ok(f"{t.api_base} ends in /v1")
    fixed = suggested_api_base(t.api_base)
    evidence = f"api_base {t.api_base}: PicoClaw posts to {t.api_base}/chat/completions"
    models_v1 = facts.models_v1()
    if models_v1.status is not None:
        evidence += f"; {facts.models().url} -> {facts.models().status}, "
        evidence += f"{models_v1.url} -> {models_v1.status}"
    return Outcome.of(
        Finding(
            FindingId.API_BASE_PATH,
            Severity.FAIL,
            "api_base does not end in /v1: every PicoClaw request will 404",
            evidence=evidence,
            remedy=f'{config_where(t)}: "api_base": "{fixed}" (or --api-base {fixed})',
        )
    )


def check_health(facts: Facts) -> Outcome:
    health = facts.health()
    if health.status in (500, 503):
        return Outcome.of(
            Finding(
                FindingId.ENGINE_DEAD,
                Severity.FAIL,
                f"/health answers {health.status}: vLLM's engine is dead or draining",
                evidence=health.describe(),
                remedy=ENGINE_DEAD_REMEDY,
            )
        )
    return Outcome.ok(health.describe(), "200 alone does not prove readiness (see completion)")


def check_auth(facts: Facts) -> Outcome:
    t = facts.target()
    answer = facts.models_v1() if facts.models().status == 404 else facts.models()
    if kind_of(answer) is not FindingId.AUTH_FAILED:
        note = "server accepts the request" + (" (no key needed)" if not t.api_key else "")
        return Outcome.ok(f"{answer.describe()[:160]}", note)
    if t.api_key:
        return Outcome.of(
            Finding(
                FindingId.AUTH_FAILED,
                Severity.FAIL,
                f"the server rejects the key PicoClaw sends (wrong key, from {t.key_source})",
                evidence=f"{answer.describe()} (Authorization: Bearer *** was sent)",
                remedy=f"use the exact value the server was given (`--api-key` or VLLM_API_KEY): "
                f"{key_line(t)}",
            )
        )
    if facts.client.sends_basic_auth:
        return Outcome.of(
            Finding(
                FindingId.AUTH_FAILED,
                Severity.FAIL,
                "the server rejects the user:password in api_base (sent as Basic auth)",
                evidence=f"{answer.describe()} (Authorization: Basic *** from api_base's "
                "user info was sent; no API key is set)",
                remedy=f"fix the user info in api_base, or give the key: {key_line(t)}",
            )
        )
    return Outcome.of(
        Finding(
            FindingId.AUTH_FAILED,
            Severity.FAIL,
            "the server requires an API key and PicoClaw sends none",
            evidence=f"{answer.describe()} (no Authorization header sent)",
            remedy=f"{key_line(t)}; to diagnose with the key: `--api-key` flag or VLLM_API_KEY",
        )
    )


def check_leftovers(facts: Facts) -> Outcome:
    """vLLM servers a killed picoclaw-vllm left running (they hold memory and ports)."""
    found = facts.leftovers()
    findings = [
        Finding(
            FindingId.LEFTOVER_SERVER,
            Severity.WARN,
            f"a vLLM server left running by a killed picoclaw-vllm: pid {left.pid}",
            evidence=left.describe(),
            remedy=f"stop it: kill -- -{left.pgid} (its whole process group); a sweep with "
            "--resume or a new sweep also stops it",
        )
        for left in found
    ]
    return Outcome.of(*findings) if findings else Outcome.ok("none")


CHECKS = (
    Check("connection", "Server reachable", "Server", check_connection, ("config",),
          (FindingId.CONNECTION_REFUSED, FindingId.UNEXPECTED_ANSWER)),
    Check("api_base", "api_base path", "Server", check_api_base, ("config",),
          (FindingId.API_BASE_PATH,)),
    Check("health", "Engine health", "Server", check_health, ("connection",),
          (FindingId.ENGINE_DEAD,)),
    Check("auth", "API key", "Server", check_auth, ("connection",), (FindingId.AUTH_FAILED,)),
    Check("leftovers", "Leftover servers", "Server", check_leftovers, (),
          (FindingId.LEFTOVER_SERVER,)),
)  # fmt: skip
