"""Prompts, request bodies, API key lookup, arrivals, options: the plain modules of chat.py."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest

from loadtests.api_key import resolve_api_key
from loadtests.arrivals import ArrivalSchedule, WarmupClock
from loadtests.options import parse_for_test
from loadtests.prompts import (
    PromptError,
    PromptPool,
    exact_prompt,
    load_prompt_file,
    synthetic_prompts,
)
from loadtests.request_builder import RequestSpec, api_path, body, headers


class FakeTokenizer:
    """One token per character, and a chat template worth 5 tokens."""

    overhead = 5

    def count(self, text: str) -> int:
        return len(text) + self.overhead

    def token_ids(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def detokenize(self, ids: list[int]) -> str:
        return "".join(map(chr, ids))


class TestPrompts:
    def test_exact_length_including_the_template(self) -> None:
        tok = FakeTokenizer()
        text = exact_prompt(tok, 64, random.Random(1))
        assert tok.count(text) == 64

    def test_prompts_differ_and_are_reproducible(self) -> None:
        a = [exact_prompt(FakeTokenizer(), 40, random.Random(3)) for _ in range(2)]
        rng = random.Random(7)
        b = [exact_prompt(FakeTokenizer(), 40, rng) for _ in range(2)]
        assert a[0] == a[1]  # same seed
        assert b[0] != b[1]

    def test_a_pool_is_exact_and_shares_no_prefix(self) -> None:
        tok = FakeTokenizer()
        pool = synthetic_prompts(tok, 30, 5, seed=2)
        assert [tok.count(p) for p in pool] == [30] * 5
        assert len({p[:10] for p in pool}) == 5

    def test_too_short_for_the_template(self) -> None:
        with pytest.raises(PromptError, match="too short"):
            exact_prompt(FakeTokenizer(), 5, random.Random(0))

    def test_jsonl_and_sharegpt_files(self, tmp_path: Path) -> None:
        jsonl = tmp_path / "p.jsonl"
        jsonl.write_text(
            '{"prompt": "hello"}\n\n{"text": "world"}\n'
            '{"messages": [{"role": "user", "content": "hi"}]}\n'
        )
        assert load_prompt_file(jsonl) == ["hello", "world", [{"role": "user", "content": "hi"}]]
        share = tmp_path / "sharegpt.json"
        share.write_text(
            json.dumps(
                [
                    {
                        "conversations": [
                            {"from": "human", "value": "Q1"},
                            {"from": "gpt", "value": "A"},
                        ]
                    },
                    {"conversations": [{"from": "gpt", "value": "no human turn"}]},
                ]
            )
        )
        assert load_prompt_file(share) == ["Q1"]

    def test_file_without_prompts(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"other": 1}\n')
        with pytest.raises(PromptError, match="no prompts"):
            load_prompt_file(bad)

    def test_pool_cycles_through_every_prompt(self) -> None:
        pool = PromptPool(["a", "b", "c"], seed=1)
        taken = [pool.take() for _ in range(6)]
        assert sorted(taken[:3]) == ["a", "b", "c"] and taken[3:] == taken[:3]


class TestRequests:
    def test_streamed_chat_body(self) -> None:
        b = body(RequestSpec("m", output_tokens=32), "hi")
        assert b["messages"] == [{"role": "user", "content": "hi"}]
        assert b["max_tokens"] == 32 and b["ignore_eos"] is True and b["stream"] is True
        assert b["stream_options"] == {"include_usage": True}

    def test_continuous_usage_stats_on_request(self) -> None:
        b = body(RequestSpec("m", usage_stats="continuous"), "hi")
        assert b["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
        assert "stream_options" not in body(RequestSpec("m", stream=False), "hi")

    def test_usage_stats_option_reaches_the_request(self) -> None:
        assert parse_for_test([]).usage_stats == "final"
        assert parse_for_test(["--usage-stats", "continuous"]).usage_stats == "continuous"
        with pytest.raises(SystemExit):
            parse_for_test(["--usage-stats", "sometimes"])

    def test_completions_without_stream(self) -> None:
        b = body(RequestSpec("m", endpoint="completions", stream=False), "hi")
        assert b["prompt"] == "hi" and "stream" not in b and "messages" not in b

    def test_paths_accept_a_v1_api_base(self) -> None:
        assert api_path("http://h:8000", "chat") == "/v1/chat/completions"
        assert api_path("http://h:8000/v1", "completions") == "/completions"

    def test_headers_carry_the_key_only_when_set(self) -> None:
        assert "Authorization" not in headers(None, stream=True)
        assert headers("k", stream=True)["Authorization"] == "Bearer k"


class TestApiKey:
    def test_order_given_env_config(self, tmp_path: Path) -> None:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"providers": {"vllm": {"api_key": "from-config"}}}))
        assert resolve_api_key("given", {"VLLM_API_KEY": "env"}, config) == "given"
        assert resolve_api_key(None, {"VLLM_API_KEY": "env"}, config) == "env"
        assert resolve_api_key(None, {}, config) == "from-config"
        assert resolve_api_key(None, {}, tmp_path / "missing.json") is None

    def test_picoclaw_home(self, tmp_path: Path) -> None:
        (tmp_path / "config.json").write_text(
            json.dumps(
                {
                    "model_list": [{"model_name": "x", "provider": "vllm", "api_keys": ["k1"]}],
                    "agents": {"defaults": {"model_name": "x"}},
                }
            )
        )
        assert resolve_api_key(None, {"PICOCLAW_HOME": str(tmp_path)}) == "k1"

    def test_model_list_format_takes_the_entry_picoclaw_uses(self, tmp_path: Path) -> None:
        config = {
            "version": 3,
            "model_list": [
                {"model_name": "gpt", "model": "openai/gpt-4o", "api_keys": ["other"]},
                {"model_name": "local", "model": "vllm/meta-llama/x", "api_keys": ["mine"]},
            ],
            "agents": {"defaults": {"model_name": "local"}},
        }
        (tmp_path / "config.json").write_text(json.dumps(config))
        assert resolve_api_key(None, {"PICOCLAW_HOME": str(tmp_path)}) == "mine"

    def test_security_yml_key_is_the_one_the_doctor_finds(self, tmp_path: Path) -> None:
        """The load profile and the doctor read one config the same way (.security.yml
        overrides config.json), so the key the doctor checks is the key the load sends."""
        from diagnostics.options import DiagnoseOptions
        from picoclaw_vllm.picoclaw.config import load

        config = {"version": 3, "agents": {"defaults": {"model_name": "local"}},
                  "model_list": [{"model_name": "local", "model": "vllm/x",
                                  "api_keys": ["in-config"]}]}  # fmt: skip
        (tmp_path / "config.json").write_text(json.dumps(config))
        (tmp_path / ".security.yml").write_text(
            "model_list:\n  local:\n    api_keys: [from-security]\n"
        )
        loaded = load(tmp_path / "config.json")
        assert not isinstance(loaded, type(None))
        from diagnostics.facts import build_target

        target = build_target(DiagnoseOptions(), loaded)  # type: ignore[arg-type]
        assert resolve_api_key(None, {"PICOCLAW_HOME": str(tmp_path)}) == "from-security"
        assert target.api_key == "from-security"


class TestArrivals:
    def test_poisson_gaps_average_one_over_rate(self) -> None:
        schedule = ArrivalSchedule(4.0, seed=1, clock=lambda: 0.0)
        gaps = [schedule.gap() for _ in range(20000)]
        assert statistics.fmean(gaps) == pytest.approx(0.25, rel=0.03)
        # exponential: std equals the mean
        assert statistics.pstdev(gaps) == pytest.approx(0.25, rel=0.05)

    def test_burstier_arrivals_vary_more(self) -> None:
        steady = ArrivalSchedule(4.0, burstiness=4.0, seed=1)
        gaps = [steady.gap() for _ in range(20000)]
        assert statistics.fmean(gaps) == pytest.approx(0.25, rel=0.03)
        assert statistics.pstdev(gaps) < 0.2

    def test_shared_schedule_users_take_successive_arrivals(self) -> None:
        now = [100.0]
        schedule = ArrivalSchedule(2.0, seed=5, clock=lambda: now[0])
        first = schedule.next_arrival()
        second = schedule.next_arrival()
        assert 100.0 < first < second
        now[0] = second + 10  # everybody busy: the next arrival is already late
        assert schedule.wait_for_next() == 0.0

    def test_bad_rate(self) -> None:
        with pytest.raises(ValueError):
            ArrivalSchedule(0.0)

    def test_warmup_clock(self) -> None:
        now = [0.0]
        clock = WarmupClock(2.0, clock=lambda: now[0])
        clock.start()
        assert clock.in_warmup()
        now[0] = 2.5
        assert not clock.in_warmup()
        assert clock.in_warmup(at=1.9)
        assert not WarmupClock(0.0).in_warmup()


class TestOptions:
    def test_defaults_and_rate_mode(self) -> None:
        o = parse_for_test([])
        assert (o.load_mode, o.stream, o.endpoint, o.output_tokens) == (
            "concurrency",
            True,
            "chat",
            128,
        )
        r = parse_for_test(["--load-mode", "rate", "--rate", "2.5", "--stream", "off"])
        assert (r.load_mode, r.rate, r.stream) == ("rate", 2.5, False)

    def test_rate_mode_needs_a_rate(self) -> None:
        with pytest.raises(ValueError, match="--rate"):
            parse_for_test(["--load-mode", "rate"])
