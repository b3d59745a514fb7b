"""What PicoClaw sends: the model name, its prompt against the context, and its real request."""

from __future__ import annotations

from diagnostics.checks.base import Check, config_where, max_tokens_line, model_line
from diagnostics.facts import Facts, Target, unanswered
from diagnostics.findings import Finding, Outcome, Severity
from diagnostics.http_signatures import CATALOG_REPORTED, catalog_finding, kind_of
from diagnostics.probes.http import HttpAnswer
from diagnostics.remedies import ENGINE_DEAD_REMEDY
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.vllm_api.metrics import GENERATION_TOKENS, QUEUE_TIME, Metrics

# queueing explains a timed-out probe when requests waited this share of --timeout on average
QUEUE_SHARE_OF_TIMEOUT = 0.5


def check_model(facts: Facts) -> Outcome:
    t = facts.target()
    served = facts.served()
    names = [m.id for m in served]
    listing = ", ".join(names) or "(none)"
    first = names[0] if names else "<served name>"
    if t.provider not in (None, "vllm") and t.model_configured:
        return Outcome.of(
            Finding(
                FindingId.MODEL_NOT_FOUND,
                Severity.FAIL,
                f"PicoClaw routes {t.model_configured!r} to provider {t.provider!r}, not vLLM",
                evidence=f"first path segment {t.model_configured.split('/')[0]!r} names a "
                f"PicoClaw provider; vLLM serves: {listing}",
                remedy=model_line(t, t.model_configured if t.model_configured in names else first),
            )
        )
    if t.model and t.model in names:
        return Outcome.ok(f"{t.model_configured!r} -> sends {t.model!r}; served: {listing}")
    if not t.model:
        return Outcome.of(
            Finding(
                FindingId.MODEL_NOT_FOUND,
                Severity.FAIL,
                "no model configured: PicoClaw has no model name to send",
                evidence=f"{config_where(t)}: agents.defaults.model(_name) absent; "
                f"vLLM serves: {listing}",
                remedy=model_line(t, first),
            )
        )
    evidence = f"PicoClaw sends model {t.model!r}; GET /v1/models lists: {listing}"
    chat = facts.chat()
    if chat.status == 404:
        evidence += f"; {chat.describe()}"
    return Outcome.of(
        Finding(
            FindingId.MODEL_NOT_FOUND,
            Severity.FAIL,
            f"the server does not serve {t.model!r}",
            evidence=evidence,
            remedy=f"{model_line(t, first)}; or start vLLM with --served-model-name {t.model}",
        )
    )


# An agent session needs room for this many iterations of history beyond the first request,
# or it fails within a turn or two (PicoClaw allows up to 50 per user message).
MIN_HEADROOM_ITERATIONS = 10


def check_context(facts: Facts) -> Outcome:
    t = facts.target()
    served = {m.id: m for m in facts.served()}
    size = facts.prompt_size()
    limit = size.max_model_len or (served[t.model].max_model_len if t.model in served else None)
    if limit is None:
        return Outcome.skip("the server does not report max_model_len")
    prompt = size.tokens
    where = _max_tokens_origin(t)
    if t.max_tokens > limit:
        answer = facts.context_probe()
        also = f" (and its first prompt alone is {prompt} tokens)" if prompt else ""
        if answer.ok:
            return Outcome.of(
                Finding(
                    FindingId.CONTEXT_OVERFLOW,
                    Severity.WARN,
                    f"{where} {t.max_tokens} exceeds the server's max_model_len {limit}, yet "
                    "the server accepted it: answers are cut where the context ends",
                    evidence=answer.describe()[:600],
                    remedy=f"{max_tokens_line(t, _suggested(limit, prompt))} (max_tokens + "
                    f"prompt must fit in {limit})",
                )
            )
        return Outcome.of(
            Finding(
                FindingId.CONTEXT_OVERFLOW,
                Severity.FAIL,
                f"{where} {t.max_tokens} exceeds the server's max_model_len {limit}{also}: "
                "vLLM answers every PicoClaw request 400",
                evidence=answer.describe()[:600],
                remedy=f"{max_tokens_line(t, _suggested(limit, prompt))} (max_tokens + prompt "
                f"must fit in {limit}); or restart vLLM with --max-model-len "
                f"{_round_up(t.max_tokens + (prompt or 0))} if memory allows",
            )
        )
    if prompt is None:
        return Outcome.ok(
            f"max_tokens {t.max_tokens} <= max_model_len {limit}",
            f"PicoClaw's prompt not measured: {size.source}",
        )
    first = (
        f"PicoClaw's first request is {prompt} prompt tokens (system prompt, "
        f"{len(picoclaw_request.default_tools())} tool schemas, one user message; "
        "the server's /tokenize)"
    )
    if prompt >= limit:
        return Outcome.of(
            Finding(
                FindingId.CONTEXT_OVERFLOW,
                Severity.FAIL,
                f"{first}, more than max_model_len {limit}: vLLM answers every PicoClaw "
                "request 400",
                evidence=f"POST /tokenize -> count {prompt}, max_model_len {limit}",
                remedy=f"restart vLLM with --max-model-len "
                f"{_round_up(prompt + t.max_tokens)} (prompt {prompt} + max_tokens "
                f"{t.max_tokens}) if memory allows, or serve a model with a longer context",
            )
        )
    room = limit - prompt
    per = size.iteration_tokens
    iterations = room // per if per else None
    cut = (
        f"; prompt + max_tokens = {prompt + t.max_tokens} > {limit}: vLLM 0.32 accepts such a "
        f"request and ends the answer where the context ends (after {room} tokens now)"
        if prompt + t.max_tokens > limit
        else ""
    )
    note = (
        f"{first}; max_model_len {limit} leaves {room} tokens of history"
        + (f", about {iterations} agent iterations of {per} tokens" if iterations else "")
        + cut
    )
    if per and iterations is not None and iterations < MIN_HEADROOM_ITERATIONS:
        return Outcome.of(
            Finding(
                FindingId.CONTEXT_HEADROOM,
                Severity.WARN,
                f"room for only about {iterations} agent iterations: every iteration resends "
                f"the growing history, and the one past {limit} tokens fails with 400",
                evidence=note,
                remedy=f"restart vLLM with --max-model-len "
                f"{_round_up(prompt + MIN_HEADROOM_ITERATIONS * per + t.max_tokens)} if memory "
                "allows (prompt + history + max_tokens), or serve a model with a longer context",
            )
        )
    return Outcome.ok(note)


def _max_tokens_origin(t: Target) -> str:
    if t.config.path is None:
        return "PicoClaw's default max_tokens (no config)"
    if not t.config.max_tokens_set:
        return f"PicoClaw's default max_tokens (none set in {t.config.path})"
    return f"max_tokens from {t.config.path}"


def _suggested(limit: int, prompt: int | None) -> int:
    room = limit - (prompt or 0)
    return max(256, room // 2) if room > 512 else max(1, room)


def _round_up(tokens: int) -> int:
    """A --max-model-len to suggest: the next multiple of 1024."""
    return -(-tokens // 1024) * 1024


def check_completion(facts: Facts) -> Outcome:
    plain = facts.chat()
    stream = facts.chat_stream()
    for answer in (plain, stream.answer):
        if kind_of(answer) is FindingId.ENGINE_DEAD:
            return Outcome.of(
                Finding(
                    FindingId.ENGINE_DEAD,
                    Severity.FAIL,
                    "vLLM's engine crashed: requests fail with 500 EngineCore error",
                    evidence=answer.describe(),
                    remedy=ENGINE_DEAD_REMEDY,
                )
            )
        described = catalog_finding(answer)
        if described is not None:
            return Outcome.of(described)
    queued = _queued_timeout(facts, plain, stream.answer)
    if queued is not None:
        return Outcome.of(queued)
    if unanswered(plain) and unanswered(stream.answer):
        return Outcome.of(_unexplained_timeout(facts, plain))
    findings = []
    if not plain.ok or plain.json() is None:
        findings.append(_failed("non-streaming", plain))
    if not stream.answer.ok or stream.error_chunk or stream.chunks == 0:
        if stream.error_chunk:
            message = f"streaming request ended with an error chunk: {stream.error_chunk}"
        else:
            message = stream.answer.describe()
        findings.append(
            Finding(
                FindingId.COMPLETION_FAILED,
                Severity.FAIL,
                "a PicoClaw-shaped streaming request fails",
                evidence=message,
                remedy="read the server log for the cause; retry with curl -N "
                f"{facts.client.api_base}/chat/completions -d '{{...\"stream\": true}}'",
            )
        )
    if findings:
        return Outcome.of(*findings)
    ttft = f"{stream.ttft_s * 1000:.0f} ms" if stream.ttft_s is not None else "?"
    return Outcome.ok(
        f"non-streaming 1-token answer in {plain.elapsed_s * 1000:.0f} ms",
        f"streaming: first token after {ttft}",
    )


def _past_timeout(answer: HttpAnswer, timeout_s: float) -> str | None:
    """How an answer missed the timeout: none came (within --timeout or before the deadline),
    or it came later than the timeout (a CPU-starved client notices its timer only when it
    runs again, after the answer came)."""
    if answer.failure is not None and answer.failure.kind in ("no_answer", "deadline"):
        return answer.describe()
    if answer.ok and answer.elapsed_s > timeout_s:
        return f"{answer.method} {answer.url} answered only after {answer.elapsed_s:.1f} s"
    return None


ENGINE_HUNG_REMEDY = (
    "get the engine's stack before anything else: py-spy dump --pid <pid> of the EngineCore "
    "process (ps -eo pid,args | grep -i enginecore; pip install py-spy; add --native for C "
    "frames), and the API server's too; then restart vLLM (docker restart / systemctl restart, "
    "or kill the server's process group) and report the stack to vLLM with the log"
)


def _hung_engine(facts: Facts, late: list[str], seen: list[Metrics]) -> Finding | None:
    """No token for a 1-token request, /health 200, and vLLM's generated-token counter flat
    from before the request to after its timeout: the engine has stopped (vllm #39863); a
    queue would still produce tokens for the requests it runs."""
    if len(seen) != 2 or not facts.health().ok:
        return None
    before, after = (m.total(GENERATION_TOKENS) for m in seen)
    if before is None or after is None or after > before:
        return None
    running = max((m.running or 0 for m in seen), default=0.0)
    timeout = facts.options.timeout_s
    return Finding(
        FindingId.ENGINE_HUNG,
        Severity.FAIL,
        f"vLLM's engine is hung: /health answers 200 but a 1-token request got no token within "
        f"{timeout:g} s, and the engine generated no token meanwhile",
        evidence=f"{late[0]}; {facts.health().method} {facts.health().url} -> "
        f"{facts.health().status}; /metrics before the request and after its timeout: "
        f"{GENERATION_TOKENS} {before:.0f} -> {after:.0f} (flat), "
        f"vllm:num_requests_running up to {running:.0f}",
        remedy=ENGINE_HUNG_REMEDY,
    )


def _unexplained_timeout(facts: Facts, answer: HttpAnswer) -> Finding:
    """No answer within the timeout, with no queue nor hung engine seen: slowness whose cause
    the doctor could not see (a starved host hides the queue from it), never a broken
    request."""
    return Finding(
        FindingId.SLOW_RESPONSES,
        Severity.FAIL,
        f"no answer within {facts.options.timeout_s:g} s, and /metrics showed neither a queue "
        "nor a stopped engine (see host_starved: a starved doctor can miss both)",
        evidence=answer.describe(),
        remedy="retry with a longer --timeout; read the server's load (vllm:num_requests_* in "
        "/metrics, top); raise request_timeout in PicoClaw's config meanwhile",
    )


def _queued_timeout(facts: Facts, *answers: HttpAnswer) -> Finding | None:
    """A request that timed out while vLLM's queue is full is slowness, not breakage.

    The queue is read from /metrics twice, before the probes and after they timed out: on two
    busy CPU cores one scrape of the waiting gauge can miss the queue, and the queue-time
    histogram between the two scrapes says how long the requests finished meanwhile waited."""
    timeout = facts.options.timeout_s
    late = [m for a in answers if (m := _past_timeout(a, timeout))]
    if not late:
        return None
    seen = [m for m in (facts.metrics_before(), facts.metrics_after()) if m is not None]
    hung = _hung_engine(facts, late, seen) if all(unanswered(a) for a in answers) else None
    if hung is not None:
        return hung
    waiting = max((m.waiting or 0 for m in seen), default=0.0)
    running = max((m.running or 0 for m in seen), default=0.0)
    queue_s = seen[-1].histogram_mean_since(seen[0], QUEUE_TIME) if len(seen) == 2 else None
    long_queue = queue_s is not None and queue_s >= QUEUE_SHARE_OF_TIMEOUT * timeout
    if not waiting and not long_queue:
        return None
    waited = max(a.elapsed_s for a in answers)
    queue = []
    if waiting:
        queue.append(f"{waiting:.0f} requests wait in vLLM's queue while {running:.0f} run")
    if queue_s is not None:
        queue.append(
            f"requests finished meanwhile waited {queue_s:.1f} s on average in vLLM's queue"
        )
    t = facts.target()
    return Finding(
        FindingId.SLOW_RESPONSES,
        Severity.FAIL,  # PicoClaw's request would time out too: the agent gets no answer
        f"no answer within {timeout:g} s: {'; '.join(queue)}",
        evidence=f"{late[0]}; the probe waited {waited:.1f} s; /metrics (before the probes and "
        f"after): vllm:num_requests_waiting up to {waiting:.0f}, running up to {running:.0f}; "
        f"PicoClaw gives up after {t.request_timeout_s:g} s (request_timeout)",
        remedy="raise --max-num-seqs (if KV cache allows), add replicas, or lower the load; "
        "meanwhile raise request_timeout in PicoClaw's config",
    )


def _failed(kind: str, answer: HttpAnswer) -> Finding:
    if answer.failure is not None:
        evidence = answer.describe()
    else:
        evidence = f"{answer.method} {answer.url} -> {answer.status}: {answer.error_message()}"
    return Finding(
        FindingId.COMPLETION_FAILED,
        Severity.FAIL,
        f"a PicoClaw-shaped {kind} request fails"
        + (f" with {answer.status}" if answer.status else ""),
        evidence=evidence[:600],
        remedy="read the server log for the cause (diagnose --log FILE); the request is "
        "PicoClaw's: POST {api_base}/chat/completions with its system prompt, tools and "
        "tool_choice auto, max_tokens lowered to 1",
    )


MODEL_AND_CONTEXT = (
    Check("model", "Model name", "Requests", check_model, ("auth",), (FindingId.MODEL_NOT_FOUND,)),
    Check("context", "PicoClaw's prompt vs context", "Requests", check_context, ("model",),
          (FindingId.CONTEXT_OVERFLOW, FindingId.CONTEXT_HEADROOM)),
)  # fmt: skip
COMPLETION = (
    Check("completion", "PicoClaw-shaped request", "Requests", check_completion,
          ("model", "api_base", "health", "tools"),
          (FindingId.COMPLETION_FAILED, FindingId.ENGINE_DEAD, FindingId.SLOW_RESPONSES,
           FindingId.ENGINE_HUNG, *CATALOG_REPORTED)),
)  # fmt: skip
