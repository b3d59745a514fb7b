"""Which `--tool-call-parser` fits which model family, and the flags that enable tool calling.

From vLLM's tool-calling documentation (docs/features/tool_calling.md) for the vLLM version
this project runs (0.32); every parser name here is registered in that version (a test reads
the installed vLLM's registry). First match wins, so specific families come first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ParserFit:
    family: str
    pattern: str  # regular expression, matched case-insensitively against the model name
    parser: str
    note: str = ""


PARSERS: tuple[ParserFit, ...] = (
    ParserFit("Qwen3-Coder", r"qwen3[-_.]?coder", "qwen3_xml"),
    ParserFit("Qwen2.5 / Qwen3 / QwQ", r"qwen|qwq", "hermes"),
    ParserFit("Hermes 2 Pro / Hermes 3", r"hermes", "hermes"),
    ParserFit("Llama 4", r"llama[-_ ]?4", "llama4_pythonic"),
    ParserFit(
        "Llama 3.1 / 3.2 / 3.3",
        r"llama[-_ ]?3",
        "llama3_json",
        "vLLM's docs add --chat-template examples/tool_chat_template_llama3.1_json.jinja",
    ),
    ParserFit(
        "Mistral / Mixtral / Ministral",
        r"mi[sx]tral|ministral|magistral|devstral",
        "mistral",
        "vLLM's docs add --tokenizer-mode mistral for Mistral's own checkpoints",
    ),
    ParserFit("IBM Granite 4", r"granite[-_.]?4", "granite4"),
    ParserFit("IBM Granite 20B FC", r"granite-20b-functioncalling", "granite-20b-fc"),
    ParserFit("IBM Granite 3.x", r"granite", "granite"),
    ParserFit("InternLM 2.5", r"internlm", "internlm"),
    ParserFit("AI21 Jamba", r"jamba", "jamba"),
    ParserFit("Salesforce xLAM", r"xlam", "xlam"),
    ParserFit("DeepSeek-V3.1", r"deepseek[-_]?v3\.1", "deepseek_v31"),
    ParserFit("DeepSeek-V3 / R1", r"deepseek[-_]?(v3|r1)", "deepseek_v3"),
    ParserFit("Kimi K2", r"kimi[-_]?k2", "kimi_k2"),
    ParserFit("GLM-4.5 / 4.6", r"glm[-_]?4\.[56]", "glm45"),
    ParserFit("GLM-4.7", r"glm[-_]?4\.7", "glm47"),
    ParserFit("gpt-oss", r"gpt-oss", "openai"),
    ParserFit("MiniMax-M2", r"minimax[-_]?m2", "minimax_m2"),
    ParserFit("Phi-4-mini", r"phi-?4-?mini", "phi4_mini_json"),
    ParserFit("OLMo 3", r"olmo[-_]?3", "olmo3"),
    ParserFit("Hunyuan A13B", r"hunyuan", "hunyuan_a13b"),
    ParserFit("Seed-OSS", r"seed-oss", "seed_oss"),
    ParserFit("LongCat", r"longcat", "longcat"),
)
# What Qwen- and Hermes-style chat templates use; the tiny local model's template too.
DEFAULT_PARSER = "hermes"
FLAG_AUTO = "--enable-auto-tool-choice"


# The call markup a model writes, and the parser whose format it is (vLLM 0.32's parsers).
MARKUP_PARSERS = {
    "<tool_call>": "hermes",
    "[TOOL_CALLS]": "mistral",
    "<|python_tag|>": "llama3_json",
    "{": "llama3_json",  # a bare {"name": ..., "parameters": ...} object
}


def markup_parser(markup: str | None) -> str | None:
    """The parser whose format this call markup is (`<tool_call>` -> hermes), if known."""
    if not markup:
        return None
    return next((p for m, p in MARKUP_PARSERS.items() if markup.startswith(m)), None)


def fit(model: str | None) -> ParserFit | None:
    """The parser vLLM's docs give for the model's family, or None when the name says nothing."""
    for p in PARSERS:
        if model and re.search(p.pattern, model, re.IGNORECASE):
            return p
    return None


def tool_flags(model: str | None, written: str | None = None) -> list[str]:
    """The flags for the model's family; for a name that says nothing, the parser of the
    markup the model was seen writing (`written`), else the default."""
    found = fit(model)
    parser = found.parser if found else (written or DEFAULT_PARSER)
    return [FLAG_AUTO, "--tool-call-parser", parser]


def parser_advice(model: str | None, written: str | None = None) -> str:
    found = fit(model)
    if found is None and written:
        return (
            f"the model writes the {written} parser's call format; the model's family, per "
            "vLLM's tool-calling docs, decides"
        )
    if found is None:
        return (
            f"pick the parser for your model's family from vLLM's tool-calling docs "
            f"(e.g. hermes for Qwen/Hermes, llama3_json for Llama 3.1-3.3, mistral for "
            f"Mistral; `{DEFAULT_PARSER}` is shown here)"
        )
    note = f"; {found.note}" if found.note else ""
    return f"{found.family} models use --tool-call-parser {found.parser}{note}"


def launch_commands(
    model: str | None, served_name: str | None = None, written: str | None = None
) -> str:
    """The seed page's three ways of running vLLM, with the tool-calling flags added."""
    m = model or "MODEL"
    flags = " ".join(tool_flags(model, written))
    served = f" --served-model-name {served_name}" if served_name and served_name != m else ""
    return (
        f"docker run --gpus all -v ~/.cache/huggingface:/root/.cache/huggingface "
        f"-p 8000:8000 --ipc=host vllm/vllm-openai:latest --model {m}{served} {flags}"
        f" | python -m vllm.entrypoints.openai.api_server --model {m}{served} "
        f"--host 0.0.0.0 --port 8000 {flags}"
        f" | systemd: append `{flags}` to the ExecStart= line after --model {m}, then "
        "systemctl daemon-reload && systemctl restart vllm"
    )
