"""Build a tiny random-weight Llama that vLLM can serve, with no download.

Run by the vLLM environment's own interpreter (it has transformers and tokenizers):
    python build_tiny_model.py OUTPUT_DIR
Kept free of imports from this project so that interpreter can run it as a plain file.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Renders tools, assistant tool calls and tool results the way Hermes-style templates do,
# so a PicoClaw request's tool schemas and history count in the prompt as on a real model.
CHAT_TEMPLATE = (
    "{% if tools %}<|system|><tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>\n"
    "{% endif %}"
    "{% for m in messages %}<|{{ m['role'] }}|>"
    "{% if m['content'] is string %}{{ m['content'] }}{% endif %}"
    "{% for c in m.get('tool_calls') or [] %}<tool_call>{{ c['function'] | tojson }}</tool_call>"
    "{% endfor %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# Written to .complete: a model built by an older version of this file is rebuilt.
MODEL_VERSION = "tiny-llama v2: 65536 positions, tool-aware chat template"
MAX_POSITIONS = 65536
CORPUS = [
    "PicoClaw talks to vLLM through its OpenAI compatible API.",
    "The quick brown fox jumps over the lazy dog while the server streams tokens.",
    "Throughput and latency are measured with time to first token and inter token latency.",
    "Tensor parallel size and max num seqs change how many requests run at once.",
    "Hello, how are you today? I am a tiny random model and my answers are noise.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?-_/()[]{}",
]


def build(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(1234)
    out.mkdir(parents=True, exist_ok=True)
    special = ["<unk>", "<s>", "</s>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    (out / ".complete").write_text(MODEL_VERSION + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: build_tiny_model.py OUTPUT_DIR", file=sys.stderr)
        raise SystemExit(2)
    build(Path(sys.argv[1]))
