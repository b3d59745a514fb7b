"""What the plan gives to paste: vLLM's flags, the docker run line, the python -m line, the
systemd unit, the PicoClaw model_list entry and the acceptance command that checks the plan."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from picoclaw_vllm.model_memory import attention
from picoclaw_vllm.picoclaw import request as picoclaw_request
from picoclaw_vllm.plan.arithmetic import Plan
from picoclaw_vllm.vllm_api import tool_parsers

LLAMA3_TOOL_TEMPLATE = "examples/tool_chat_template_llama3.1_json.jinja"
PORT = 8000
VLLM_PYTHON = "/opt/vllm/bin/python"  # where the systemd unit and acceptance expect vLLM


@dataclass(frozen=True)
class ToolCalling:
    parser: str
    family: str  # "" when neither the name nor config.json says
    flags: tuple[str, ...]
    note: str


def tool_calling(model: str, config: dict[str, Any]) -> ToolCalling:
    """The doctor's parser table, matched on the model's name, then on its model_type."""
    found = tool_parsers.fit(model) or tool_parsers.fit(str(config.get("model_type") or ""))
    parser = found.parser if found else tool_parsers.DEFAULT_PARSER
    flags: tuple[str, ...] = (tool_parsers.FLAG_AUTO, "--tool-call-parser", parser)
    if parser == "llama3_json":
        flags += ("--chat-template", LLAMA3_TOOL_TEMPLATE)
    return ToolCalling(
        parser,
        found.family if found else "",
        flags,
        tool_parsers.parser_advice(model if found else None),
    )


def vllm_flags(plan: Plan, model: str, served: str, tools: ToolCalling) -> list[str]:
    chosen = plan.chosen
    assert chosen is not None
    i = plan.inputs
    flags = ["--model", model]
    if served != model:
        flags += ["--served-model-name", served]
    flags += [
        "--max-model-len",
        str(chosen.max_model_len),
        "--max-num-seqs",
        str(chosen.max_num_seqs),
    ]
    if chosen.tp > 1:
        flags += ["--tensor-parallel-size", str(chosen.tp)]
    if i.kv_cache_gib is None:
        flags += ["--gpu-memory-utilization", f"{i.gpu_memory_utilization:g}"]
    if i.kv_cache_dtype != "auto":
        flags += ["--kv-cache-dtype", i.kv_cache_dtype]
    if i.dtype_flag:
        flags += ["--dtype", i.dtype_flag]
    return flags + list(tools.flags)


def environment(plan: Plan) -> dict[str, str]:
    gib = plan.inputs.kv_cache_gib
    return {"VLLM_CPU_KVCACHE_SPACE": f"{gib:g}"} if gib is not None else {}


def _quote(word: str) -> str:
    # a leading ~ stays unquoted so the shell expands it
    return word if re.fullmatch(r"[~\w@%+=:,./-]+", word) else shlex.quote(word)


def _line(words: list[str]) -> str:
    return " ".join(_quote(w) for w in words)


def commands(plan: Plan, model: str, served: str, tools: ToolCalling) -> dict[str, str]:
    flags = vllm_flags(plan, model, served, tools)
    env = environment(plan)
    env_words = [f"{k}={v}" for k, v in env.items()]
    local = model.startswith(("/", ".", "~"))
    mount = ["-v", f"{model}:{model}:ro"] if local else []
    docker_env = [w for k in env for w in ("-e", f"{k}={env[k]}")]
    docker = [
        "docker",
        "run",
        "--gpus",
        "all",
        "-v",
        "~/.cache/huggingface:/root/.cache/huggingface",
        *mount,
        "-p",
        f"{PORT}:{PORT}",
        "--ipc=host",
        "-e",
        "HF_TOKEN",
        *docker_env,
        "vllm/vllm-openai:latest",
        *flags,
    ]
    serve = [
        "python",
        "-m",
        "vllm.entrypoints.openai.api_server",
        *flags,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
    ]
    unit = "\n".join(
        [
            "[Unit]",
            f"Description=vLLM OpenAI-compatible server for {served}",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            *(f"Environment={w}" for w in env_words),
            "# HF_TOKEN=... and VLLM_API_KEY=... go here, not on the command line",
            "EnvironmentFile=-/etc/vllm/vllm.env",
            "ExecStart=" + VLLM_PYTHON.removesuffix("python") + _line(serve),
            "Restart=on-failure",
            "TimeoutStartSec=900",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]
    )
    return {
        # vllm/vllm-openai is a GPU image: a CPU plan has no docker line
        "docker": "" if env else _line(docker),
        "python": _line([*env_words, *serve]),
        "systemd": unit,
    }


def picoclaw_entry(plan: Plan, served: str, api_base: str) -> dict[str, Any]:
    needs = plan.inputs.needs
    chosen = plan.chosen
    assert chosen is not None
    return {
        "version": 3,
        "model_list": [
            {
                "model_name": "vllm-local",
                "model": f"vllm/{served}",
                "api_base": api_base,
                "request_timeout": int(picoclaw_request.DEFAULT_REQUEST_TIMEOUT_S),
            }
        ],
        "agents": {
            "defaults": {
                "model_name": "vllm-local",
                "max_tokens": needs.max_tokens,
                # a reduced plan: PicoClaw stops before its history outgrows the context
                "max_tool_iterations": min(needs.iterations, chosen.iterations_fit),
            }
        },
    }


def sweep_around(seqs: int) -> list[int]:
    return sorted({max(1, seqs // 2), seqs, seqs * 2})


def acceptance(plan: Plan, model: str, served: str, tools: ToolCalling) -> str:
    chosen = plan.chosen
    assert chosen is not None
    i = plan.inputs
    sessions = i.needs.sessions
    loads = sorted({sessions, chosen.max_num_seqs, chosen.max_num_seqs * 2})
    words = ["picoclaw-vllm", "acceptance", "--model", model]
    if i.kv_cache_gib is None:  # a GPU host: the vLLM of the systemd unit, not the CPU one
        words += ["--python", VLLM_PYTHON]
    if served != model:
        words += ["--served-model-name", served]
    words += [
        "--max-num-seqs",
        ",".join(str(s) for s in sweep_around(chosen.max_num_seqs)),
        "--tensor-parallel-size",
        str(chosen.tp),
        "--max-model-len",
        str(chosen.max_model_len),
    ]
    if i.kv_cache_gib is None:
        words += ["--gpu-memory-utilization", f"{i.gpu_memory_utilization:g}"]
    words += [f"--vllm-arg={tools.flags[0]}", "--vllm-arg", " ".join(tools.flags[1:3])]
    if len(tools.flags) > 3:
        words += ["--vllm-arg", " ".join(tools.flags[3:5])]
    if i.kv_cache_dtype != "auto":
        words += ["--vllm-arg", f"--kv-cache-dtype {i.kv_cache_dtype}"]
    words += [
        "--workload",
        "agent",
        "--concurrency",
        ",".join(str(n) for n in loads),
        "--target-concurrency",
        str(sessions),
    ]
    prefix = " ".join(f"{k}={v}" for k, v in environment(plan).items())
    return (prefix + " " if prefix else "") + _line(words)


def heads_line(config: dict[str, Any]) -> str:
    shape = attention(config)
    if shape is None:
        return "unknown"
    return f"{shape.heads} attention heads, {shape.kv_heads} KV heads"


def as_json_text(entry: dict[str, Any]) -> str:
    return json.dumps(entry, indent=2)
