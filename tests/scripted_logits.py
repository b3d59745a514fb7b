"""A test-only vLLM logits processor: the tiny random model writes a scripted answer.

Loaded by the vLLM environment's interpreter (`--logits-processors scripted_logits:ScriptedAnswer`
with this folder on PYTHONPATH, set only for that server), never by the project itself.

The script is a JSON file named by $SCRIPTED_LOGITS_FILE, read again for every new request:
    [{"trigger": "text in the prompt's tail", "text": "what the model answers"}, ...]
A request whose prompt ends (last TAIL_TOKENS tokens, i.e. the last user message and the
generation prompt) with a trigger gets that text, token by token, then EOS; every other request
is left alone. So a test changes what the model "writes" by rewriting the file, without a
restart, and PicoClaw's ordinary requests (another last message) stay noise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

SCRIPT_ENV = "SCRIPTED_LOGITS_FILE"
TAIL_TOKENS = 200


def read_scripts() -> list[dict[str, str]]:
    path = os.environ.get(SCRIPT_ENV)
    if not path or not Path(path).exists():
        return []
    data: Any = json.loads(Path(path).read_text())
    return [d for d in data if isinstance(d, dict) and "trigger" in d and "text" in d]


class ScriptedAnswer(LogitsProcessor):
    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(vllm_config.model_config.tokenizer)
        self.eos = self.tokenizer.eos_token_id
        # batch row -> (the scripted token ids, the request's live output ids)
        self.rows: dict[int, tuple[list[int], list[int]]] = {}

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        return None

    def is_argmax_invariant(self) -> bool:
        return False

    def _script_for(self, prompt_ids: list[int] | None) -> list[int] | None:
        if not prompt_ids:
            return None
        tail = self.tokenizer.decode(prompt_ids[-TAIL_TOKENS:])
        for script in read_scripts():
            if script["trigger"] in tail:
                ids: list[int] = self.tokenizer.encode(script["text"], add_special_tokens=False)
                return [*ids, self.eos]
        return None

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.rows.pop(index, None)
        for index, _params, prompt_ids, output_ids in batch_update.added:
            script = self._script_for(prompt_ids)
            if script is None:
                self.rows.pop(index, None)
            else:
                self.rows[index] = (script, output_ids)
        for a, b, direction in batch_update.moved:
            row_a, row_b = self.rows.pop(a, None), self.rows.pop(b, None)
            if row_a is not None:
                self.rows[b] = row_a
            if row_b is not None and direction == MoveDirectionality.SWAP:
                self.rows[a] = row_b

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        for index, (script, output_ids) in self.rows.items():
            if index >= logits.shape[0]:
                continue
            step = min(len(output_ids), len(script) - 1)
            logits[index] = float("-inf")
            logits[index, script[step]] = 0.0
        return logits
