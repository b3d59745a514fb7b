"""Prompts for load tests: synthetic ones of an exact token length, or read from a file.

Synthetic prompts are seeded random English words cut to length with the server's own
tokenizer (`POST /tokenize` and `/detokenize`), so `usage.prompt_tokens` of each request
equals the length asked for, chat template included. Every prompt of a pool differs from the
start, so prefix caching cannot share them.

Files: JSONL with one `{"prompt": "..."}` (or `"text"`, or `"messages": [...]`) per line, or
ShareGPT-style JSON/JSONL items `{"conversations": [{"from": "human", "value": "..."}, ...]}`
(the first human turn is the prompt).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from loadtests.request_builder import Endpoint
from picoclaw_vllm import jsonfile

Prompt = str | list[dict[str, str]]

_WORD_TEXT = (
    "time year people way day man thing woman life child world school state family student "
    "group country problem hand part place case week company system program question work "
    "government number night point home water room mother area money story fact month lot "
    "right study book eye job word business issue side kind head house service friend father "
    "power hour game line end member law car city community name president team minute idea "
    "kid body information back parent face others level office door health person art war "
    "history party result change morning reason research girl guy moment air teacher force"
)
WORDS = tuple(_WORD_TEXT.split())


class Tokenizer(Protocol):
    def count(self, text: str) -> int:
        """Tokens the server counts for this text sent as a request (template included)."""

    def token_ids(self, text: str) -> list[int]:
        """The text's own tokens, no special tokens."""

    def detokenize(self, ids: list[int]) -> str: ...


@dataclass
class ServerTokenizer:
    """The server's tokenizer over HTTP (`/tokenize`, `/detokenize` need no API key)."""

    base_url: str
    model: str
    endpoint: Endpoint
    client: httpx.Client

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post(f"{self.base_url.rstrip('/')}{path}", json=payload)
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def count(self, text: str) -> int:
        if self.endpoint == "chat":
            payload: dict[str, Any] = {
                "model": self.model,
                "messages": [{"role": "user", "content": text}],
                "add_generation_prompt": True,
            }
        else:
            payload = {"model": self.model, "prompt": text}
        return int(self._post("/tokenize", payload)["count"])

    def token_ids(self, text: str) -> list[int]:
        payload = {"model": self.model, "prompt": text, "add_special_tokens": False}
        return [int(t) for t in self._post("/tokenize", payload)["tokens"]]

    def detokenize(self, ids: list[int]) -> str:
        return str(self._post("/detokenize", {"model": self.model, "tokens": ids})["prompt"])


class PromptError(ValueError):
    pass


def random_text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _cut(tokenizer: Tokenizer, ids: list[int], tokens: int, overhead: int, tries: int) -> str:
    """Decode the first ids so that the request counts exactly `tokens` (usually 1 try)."""
    take = tokens - overhead
    for _ in range(tries):
        text = tokenizer.detokenize(ids[:take])
        counted = tokenizer.count(text)
        if counted == tokens:
            return text
        take += tokens - counted
        if not 0 < take <= len(ids):
            break
    raise PromptError(f"could not cut a prompt to exactly {tokens} tokens")


def _overhead(tokenizer: Tokenizer, tokens: int) -> int:
    overhead = tokenizer.count("")
    if tokens <= overhead:
        raise PromptError(
            f"a prompt of {tokens} tokens is too short: the request format alone takes {overhead}"
        )
    return overhead


def exact_prompt(tokenizer: Tokenizer, tokens: int, rng: random.Random, tries: int = 8) -> str:
    """Random words whose request counts exactly `tokens` tokens on the server."""
    overhead = _overhead(tokenizer, tokens)
    ids = tokenizer.token_ids(random_text(rng, 2 * tokens + 16))
    return _cut(tokenizer, ids, tokens, overhead, tries)


def synthetic_prompts(tokenizer: Tokenizer, tokens: int, count: int, seed: int) -> list[str]:
    """`count` prompts of exactly `tokens` tokens, cut from disjoint stretches of one random
    text: 2 + 2 * count tokenizer calls in all."""
    rng = random.Random(seed)
    overhead = _overhead(tokenizer, tokens)
    stride = 2 * tokens + 16
    ids = tokenizer.token_ids(random_text(rng, stride * count))
    if len(ids) < stride * count:
        raise PromptError("the random text is shorter in tokens than expected")
    return [
        _cut(tokenizer, ids[i * stride : (i + 1) * stride], tokens, overhead, 8)
        for i in range(count)
    ]


def _prompt_of(item: Any) -> Prompt | None:
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return None
    for key in ("prompt", "text"):
        if isinstance(item.get(key), str):
            return str(item[key])
    messages = item.get("messages")
    if isinstance(messages, list) and messages:
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    conversations = item.get("conversations")
    if isinstance(conversations, list):
        for turn in conversations:
            if isinstance(turn, dict) and turn.get("from") in ("human", "user"):
                return str(turn.get("value", ""))
    return None


def load_prompt_file(path: Path) -> list[Prompt]:
    """Prompts from a JSONL file or a JSON list (ShareGPT-style items accepted)."""
    try:
        text = jsonfile.read_text(path)
        stripped = text.lstrip()
        items: list[Any] = (
            _as_list(jsonfile.loads(text))
            if stripped.startswith("[")
            else [jsonfile.loads(line) for line in text.splitlines() if line.strip()]
        )
    except jsonfile.BadFile as e:
        raise PromptError(f"{path}: {e}") from None
    try:
        prompts = [p for p in map(_prompt_of, items) if p]
    except (KeyError, TypeError) as e:
        raise PromptError(f"{path}: a messages entry lacks role or content ({e})") from None
    if not prompts:
        raise PromptError(f"{path}: no prompts found (expected prompt/text/messages/conversations)")
    return prompts


def _as_list(data: Any) -> list[Any]:
    return data if isinstance(data, list) else [data]


class PromptPool:
    """Hands out prompts in a seeded shuffled order, cycling."""

    def __init__(self, prompts: list[Prompt], seed: int) -> None:
        if not prompts:
            raise PromptError("no prompts")
        self._prompts = list(prompts)
        random.Random(seed).shuffle(self._prompts)
        self._next = 0

    def __len__(self) -> int:
        return len(self._prompts)

    def take(self) -> Prompt:
        prompt = self._prompts[self._next % len(self._prompts)]
        self._next += 1
        return prompt


PromptFactory = Callable[[], PromptPool]
