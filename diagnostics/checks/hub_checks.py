"""The model's Hugging Face repo: exists, and readable with this machine's token."""

from __future__ import annotations

from diagnostics.checks.base import Check
from diagnostics.facts import Facts
from diagnostics.findings import Finding, Outcome, Severity
from diagnostics.log_explanations import EXPLAIN
from picoclaw_vllm.finding_ids import FindingId


def check_hub(facts: Facts) -> Outcome:
    if not facts.options.check_hub:
        return Outcome.skip("Hub checks turned off (--no-hub)")
    answer = facts.hub()
    if answer is None:
        return Outcome.skip("the model is not a Hugging Face repo id (local path or alias)")
    where = f"{answer.endpoint}/{answer.repo} (token: {'yes' if answer.token_used else 'none'})"
    if answer.state == "ok":
        return Outcome.ok(f"{where}: readable, {answer.detail}")
    if answer.state == "offline":
        return Outcome.skip("HF_HUB_OFFLINE is set: the Hub was not asked")
    if answer.state == "unreachable":
        return Outcome.of(
            Finding(
                FindingId.HF_HUB_UNREACHABLE,
                Severity.INFO,
                "the Hugging Face Hub could not be reached; repo access not checked",
                evidence=f"{where}: {answer.detail}",
                remedy="check network/proxy (HF_ENDPOINT for a mirror); vLLM needs the Hub "
                "only when the model is not cached",
            )
        )
    if answer.state == "token_rejected":
        return Outcome.of(
            Finding(
                FindingId.HF_TOKEN_REJECTED,
                Severity.FAIL,
                "the Hugging Face Hub rejects the token (HF_TOKEN or the saved login): "
                "vLLM cannot download the model with it",
                evidence=f"{where}: {answer.detail}",
                remedy="set a valid token (HF_TOKEN=hf_... or `hf auth login`), or unset "
                "HF_TOKEN for a public model",
            )
        )
    if answer.state in ("gated_no_token", "gated_no_access"):
        message, remedy = EXPLAIN[FindingId.HF_GATED]({"repo": answer.repo})
        if answer.state == "gated_no_token":
            message = f"{answer.repo} is gated and no Hugging Face token is set"
        return Outcome.of(
            Finding(FindingId.HF_GATED, Severity.FAIL, message, f"{where}: {answer.detail}", remedy)
        )
    message, remedy = EXPLAIN[FindingId.HF_REPO_NOT_FOUND]({"repo": answer.repo})
    return Outcome.of(
        Finding(
            FindingId.HF_REPO_NOT_FOUND, Severity.FAIL, message, f"{where}: {answer.detail}", remedy
        )
    )


CHECKS = (
    Check("hub", "Hugging Face repo", "Hugging Face", check_hub, (),
          (FindingId.HF_GATED, FindingId.HF_REPO_NOT_FOUND, FindingId.HF_TOKEN_REJECTED,
           FindingId.HF_HUB_UNREACHABLE)),
)  # fmt: skip
