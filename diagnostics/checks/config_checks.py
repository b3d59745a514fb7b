"""The PicoClaw config itself: readable, and with a fallback when vLLM is down."""

from __future__ import annotations

from diagnostics.checks.base import Check, config_where
from diagnostics.facts import Facts
from diagnostics.findings import Finding, Outcome, Severity
from picoclaw_vllm.finding_ids import FindingId
from picoclaw_vllm.picoclaw.config import ConfigProblem


def check_config(facts: Facts) -> Outcome:
    config = facts.config()
    if isinstance(config, ConfigProblem):
        where = f"{config.path}:{config.line}:{config.column}"
        return Outcome.of(
            Finding(
                FindingId.CONFIG_INVALID,
                Severity.FAIL,
                f"PicoClaw cannot read its config: {config.message}",
                evidence=f"{where}: {config.message}",
                remedy=f"fix {config.path} at line {config.line}, column {config.column} "
                "(validate with: python -m json.tool < FILE)",
            )
        )
    t = facts.target()
    if config.warnings:
        return Outcome.of(
            *(
                Finding(
                    FindingId.CONFIG_IGNORED,
                    Severity.WARN,
                    warning,
                    evidence=f"{config.path}: {warning}",
                    remedy=f"edit {config.path} so that it says what PicoClaw should use",
                )
                for warning in config.warnings
            )
        )
    if config.path is None:
        return Outcome.ok(
            f"no config at {config_where(t)}: using flags and PicoClaw's defaults",
            f"api_base {t.api_base}, model {t.model_configured}, key from {t.key_source}",
        )
    return Outcome.ok(
        f"{config.path} ({config.format} format)",
        f"api_base {t.api_base}, model {t.model_configured} -> sends {t.model!r}, "
        f"key from {t.key_source}, max_tokens {t.max_tokens}",
    )


def check_fallbacks(facts: Facts) -> Outcome:
    t = facts.target()
    fallbacks = t.config.fallbacks
    where = config_where(t)
    if not fallbacks:
        return Outcome.of(
            Finding(
                FindingId.FALLBACK_MISSING,
                Severity.WARN,
                "no model_fallbacks: when vLLM is down PicoClaw has nowhere else to go",
                evidence=f"{where}: agents.defaults.model_fallbacks is empty or absent",
                remedy=f'{where}: "agents": {{"defaults": {{"model_fallbacks": '
                '["openrouter/meta-llama/llama-3.2-3b-instruct"]}} and '
                '"providers": {"openrouter": {"api_key": "sk-or-..."}}',
            )
        )
    keyless = [f for f in fallbacks if not f.has_key]
    if keyless:
        names = ", ".join(f"{f.name} (provider {f.provider or '?'})" for f in keyless)
        providers = sorted({f.provider or "?" for f in keyless})
        return Outcome.of(
            Finding(
                FindingId.FALLBACK_MISSING,
                Severity.WARN,
                f"fallback without an API key: {names}",
                evidence=f"{where}: no api_key for provider(s) {', '.join(providers)}",
                remedy=f'{where}: "providers": {{"{providers[0]}": {{"api_key": "<key>"}}}}'
                " (current format: api_keys in that model_list entry or .security.yml)",
            )
        )
    return Outcome.ok(*(f"fallback {f.name} ({f.provider})" for f in fallbacks))


CHECKS = (
    Check("config", "PicoClaw config", "PicoClaw config", check_config, (),
          (FindingId.CONFIG_INVALID, FindingId.CONFIG_IGNORED)),
    Check(
        "fallbacks", "Fallback models", "PicoClaw config", check_fallbacks, ("config",),
        (FindingId.FALLBACK_MISSING,),
    ),
)  # fmt: skip
