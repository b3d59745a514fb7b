"""Secrets are masked wherever they stand alone, and ordinary words survive short keys."""

from __future__ import annotations

import pytest

from picoclaw_vllm.redact import MASK, redact, register_secret


def test_registered_key_is_masked_in_any_context() -> None:
    register_secret("k3y-Zq81-registered")
    text = 'Authorization: Bearer k3y-Zq81-registered, "api_key": "k3y-Zq81-registered"'
    out = redact(text)
    assert "k3y-Zq81-registered" not in out
    assert out.count(MASK) == 2


def test_short_key_does_not_eat_words_that_contain_it() -> None:
    register_secret("flag")
    assert redact("use the --max-num-seqs flagship setting") == (
        "use the --max-num-seqs flagship setting"
    )
    assert redact("key=flag") == f"key={MASK}"


def test_env_tokens_and_known_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnopqrstuvwx")
    out = redact("token hf_abcdefghijklmnopqrstuvwx and hf_OTHERTOKEN12345 and --api-key s3cr3t")
    assert "hf_" not in out
    assert "s3cr3t" not in out
