"""Prefix caching: PicoClaw resends its system prompt and tool schemas (thousands of tokens)
with every call; without the prefix cache each call prefills them again."""

from __future__ import annotations

from diagnostics.checks.base import Check
from diagnostics.facts import Facts
from diagnostics.findings import Finding, Outcome, Severity
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.vllm_api.metrics import PREFIX_HITS, PREFIX_QUERIES, PROMPT_TOKENS

REMEDY = (
    "restart vLLM with --enable-prefix-caching (the default of vLLM's V1 engine: drop "
    "--no-enable-prefix-caching), and --enable-prompt-tokens-details to see "
    "usage.prompt_tokens_details.cached_tokens in each answer"
)


def _cached_tokens(answer_json: object) -> int | None:
    """usage.prompt_tokens_details.cached_tokens (vLLM sends it with
    --enable-prompt-tokens-details only)."""
    usage = answer_json.get("usage") if isinstance(answer_json, dict) else None
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return cached if isinstance(cached, int) and not isinstance(cached, bool) else None


def _warn(message: str, evidence: str) -> Outcome:
    return Outcome.of(
        Finding(FindingId.PREFIX_CACHE_OFF, Severity.WARN, message, evidence, REMEDY),
    )


def check_prefix_cache(facts: Facts) -> Outcome:
    answer = facts.answered(facts.chat_again(), "PicoClaw's request sent a second time")
    if not answer.ok:
        return Outcome.skip(f"not judged: the repeated request failed ({answer.describe()})")
    sent = f"PicoClaw's request ({answer.method} {answer.url}) sent again after the first"
    cached = _cached_tokens(answer.json())
    if cached is not None:
        if cached > 0:
            return Outcome.ok(f"{sent}: {cached} prompt tokens from the prefix cache "
                              "(source: usage.prompt_tokens_details.cached_tokens)")  # fmt: skip
        return _warn(
            "PicoClaw's repeated request reused no cached prompt tokens: every agent call "
            "prefills its whole prompt again",
            f"{sent} -> usage.prompt_tokens_details.cached_tokens 0",
        )
    before, after = facts.metrics_before(), facts.metrics_prefix()
    if before is None or after is None:
        return Outcome.skip("not judged: no cached_tokens in the answer and /metrics unread")
    delta = {
        name: (a - b)
        for name in (PREFIX_QUERIES, PREFIX_HITS, PROMPT_TOKENS)
        if (a := after.total(name)) is not None and (b := before.total(name)) is not None
    }
    prompt, queries = delta.get(PROMPT_TOKENS, 0.0), delta.get(PREFIX_QUERIES, 0.0)
    hits = delta.get(PREFIX_HITS, 0.0)
    source = f"/metrics before and after: {PROMPT_TOKENS} +{prompt:.0f}, {PREFIX_QUERIES} "
    source += f"+{queries:.0f}, {PREFIX_HITS} +{hits:.0f}"
    if hits > 0:
        return Outcome.ok(f"{sent}: prefix cache hits +{hits:.0f} tokens (source: {source})")
    if prompt <= 0:
        return Outcome.skip("not judged: /metrics counted none of the doctor's prompt tokens yet")
    why = "looked nothing up" if queries <= 0 else "found nothing"
    return _warn(
        f"vLLM's prefix cache {why} for PicoClaw's repeated request: every agent call "
        "prefills its system prompt and tool schemas again",
        f"{sent}; {source}",
    )


CHECKS = (
    Check("prefix_cache", "Prefix cache reused", "Performance", check_prefix_cache,
          ("completion",), (FindingId.PREFIX_CACHE_OFF,)),
)  # fmt: skip
