"""Every finding the doctor can report: stable id, title, what it means (and a fixed remedy).

Ids never change meaning; `picoclaw-vllm diagnose --list` prints this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from picoclaw_vllm.finding_ids import FindingId


@dataclass(frozen=True)
class CatalogEntry:
    id: FindingId
    title: str
    description: str
    # the fix when it needs no facts of the case: an HTTP-answer signature of this kind is then
    # reported from its catalog entry alone (http_signatures.catalog_finding)
    remedy: str = ""


_ENTRIES: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        FindingId.CONFIG_INVALID,
        "PicoClaw config unreadable",
        "The PicoClaw config.json (or .security.yml) is not valid JSON/YAML or has the wrong "
        "shape; reported with file, line and column.",
    ),
    CatalogEntry(
        FindingId.CONFIG_IGNORED,
        "PicoClaw config read otherwise than it looks",
        "A value PicoClaw ignores or replaces: a null or empty api_base (the default is used), "
        "a legacy providers.vllm beside a model_list.",
    ),
    CatalogEntry(
        FindingId.CONNECTION_REFUSED,
        "vLLM server unreachable",
        "Nothing answers at api_base: port refused (or a local vLLM still loading), DNS failure, "
        "timeout, TLS error or wrong scheme; each is named.",
    ),
    CatalogEntry(
        FindingId.UNEXPECTED_ANSWER,
        "Something else answers at api_base",
        "An HTML page (e.g. a proxy's 502), a body that is not JSON, or another service "
        "answers where vLLM's API should be.",
    ),
    CatalogEntry(
        FindingId.API_BASE_PATH,
        "api_base does not end in /v1",
        "PicoClaw appends only /chat/completions to api_base, so it must end in /v1.",
    ),
    CatalogEntry(
        FindingId.AUTH_FAILED,
        "API key rejected",
        "The server runs with `--api-key` and answers 401: PicoClaw sends no key, or another one.",
    ),
    CatalogEntry(
        FindingId.MODEL_NOT_FOUND,
        "Model name not served",
        "The model PicoClaw sends (after stripping the vllm/ prefix) is not a served model name.",
    ),
    CatalogEntry(
        FindingId.CONTEXT_OVERFLOW,
        "PicoClaw's request does not fit the server's context",
        "PicoClaw's max_tokens (default 32768), or its first request alone (system prompt, tool "
        "schemas, one message, measured with the server's /tokenize), exceeds max_model_len: "
        "every request fails with 400.",
    ),
    CatalogEntry(
        FindingId.CONTEXT_HEADROOM,
        "Little room for the agent's history",
        "PicoClaw's first request fits, but max_model_len leaves room for only a few agent "
        "iterations: each resends the whole history, and the call past the limit fails with 400.",
    ),
    CatalogEntry(
        FindingId.TOOL_CHOICE_REJECTED,
        "Server rejects PicoClaw's tools",
        'PicoClaw sends its tools with tool_choice "auto"; vLLM started without '
        "--enable-auto-tool-choice and --tool-call-parser answers every such request 400.",
    ),
    CatalogEntry(
        FindingId.TOOL_CALL_UNPARSED,
        "Tool calls come back as text",
        "A forced tool call does not come back as structured message.tool_calls with JSON "
        "arguments (raw <tool_call>, [TOOL_CALLS] or <|python_tag|> markup left in content, or "
        "the call cut short): the parser does not fit the model, and PicoClaw never runs the tool.",
    ),
    CatalogEntry(
        FindingId.TOOL_PARSER_INVALID,
        "Tool-call parser stops the start-up",
        "The server log shows a --tool-call-parser the tokenizer cannot serve (its special "
        "tokens are missing), an unknown parser name, or --enable-auto-tool-choice without one.",
    ),
    CatalogEntry(
        FindingId.ENGINE_DEAD,
        "vLLM engine dead",
        "/health answers 503, or requests fail with 500 'EngineCore encountered an issue', or "
        "the server log shows the engine dying after it was ready: named with the failure "
        "just before the death, else 'killed by a signal, with no error of its own'.",
    ),
    CatalogEntry(
        FindingId.LEFTOVER_SERVER,
        "Server left by a killed picoclaw-vllm",
        "A vLLM server started by picoclaw-vllm whose tool is gone (killed): it still holds its "
        "port and memory; it is named with its process group so it can be stopped.",
    ),
    CatalogEntry(
        FindingId.OOM_KILLED,
        "Killed by the kernel's OOM killer",
        "The kernel log (journalctl -k, dmesg) or the server log holds 'Out of memory: Killed "
        "process N (VLLM::EngineCor)': the host ran out of RAM.",
    ),
    CatalogEntry(
        FindingId.REQUESTS_ABORTED,
        "Requests failed with the engine",
        "Requests the server log shows failing with an engine error (stream generator errors, "
        "EngineGenerateError), counted per start of the server.",
    ),
    CatalogEntry(
        FindingId.PREEMPTIONS,
        "Repeated preemptions",
        "The log warns again and again that requests were preempted: the KV cache runs full.",
    ),
    CatalogEntry(
        FindingId.CONTEXT_REJECTED,
        "Requests longer than the context",
        "The log counts 'This model's maximum context length is N tokens' rejections.",
    ),
    CatalogEntry(
        FindingId.SERVER_STOPPED,
        "Server shut down",
        "The server log ends with an orderly shutdown: the server is not running.",
    ),
    CatalogEntry(
        FindingId.LOG_UNREADABLE,
        "Server log not read",
        "The log given is empty or binary: nothing in it could be judged.",
    ),
    CatalogEntry(
        FindingId.ILLEGAL_MEMORY_ACCESS,
        "CUDA illegal memory access",
        "A GPU kernel crashed ('an illegal memory access was encountered').",
    ),
    CatalogEntry(
        FindingId.NCCL_ERROR,
        "NCCL error or timeout",
        "A collective between GPUs failed or timed out (NCCL watchdog, ProcessGroupNCCL).",
    ),
    CatalogEntry(
        FindingId.COMPLETION_FAILED,
        "PicoClaw-shaped request fails",
        "A 1-token chat completion sent exactly as PicoClaw sends it (streaming and not) fails.",
    ),
    CatalogEntry(
        FindingId.CHAT_TEMPLATE_MISSING,
        "Model has no chat template",
        "vLLM answers PicoClaw's chat requests 400 'you must provide a chat template if the "
        "tokenizer does not define one': a base model, and no --chat-template was given.",
        "serve the model's chat/instruct variant (its tokenizer defines a chat template), or "
        "restart vLLM with --chat-template FILE.jinja holding the model family's template (one "
        "that renders tools: PicoClaw sends them)",
    ),
    CatalogEntry(
        FindingId.SLOW_RESPONSES,
        "Slow responses",
        "Time to first token or inter-token latency above the thresholds; the cause is read from "
        "/metrics (queueing above --max-num-seqs in the waiting gauge or the queue-time "
        "histogram, KV cache pressure, preemptions), network round trip and GPU utilisation.",
    ),
    CatalogEntry(
        FindingId.CUDA_OOM,
        "CUDA out of memory",
        "The model, its KV cache and activations do not fit the GPU: seen in the log, or "
        "predicted from the model's size, --max-model-len and free GPU memory.",
    ),
    CatalogEntry(
        FindingId.GPU_MEMORY_IN_USE,
        "GPU memory held by something else",
        "vLLM refused to start because less memory is free than --gpu-memory-utilization asks "
        "for (CPU: 'Available memory on node'); other processes holding GPU memory are named.",
    ),
    CatalogEntry(
        FindingId.KV_CACHE_INSUFFICIENT,
        "No room for the KV cache",
        "The memory left after the weights cannot hold one request of --max-model-len tokens.",
    ),
    CatalogEntry(
        FindingId.HF_GATED,
        "Hugging Face repo gated or private",
        "The model's repo needs a token with granted access.",
    ),
    CatalogEntry(
        FindingId.HF_REPO_NOT_FOUND,
        "Hugging Face repo not found",
        "The model id names no repo (or a bad token hides it), or the local path does not exist.",
    ),
    CatalogEntry(
        FindingId.HF_TOKEN_REJECTED,
        "Hugging Face token rejected",
        "The Hub answers 401 to the token (HF_TOKEN or the saved login): it is invalid or "
        "revoked, and every download with it fails.",
    ),
    CatalogEntry(
        FindingId.HF_HUB_UNREACHABLE,
        "Hugging Face Hub unreachable",
        "The Hub could not be asked about the model; the Hub checks were skipped.",
    ),
    CatalogEntry(
        FindingId.TENSOR_PARALLEL_INVALID,
        "Tensor parallel size invalid",
        "--tensor-parallel-size does not divide the attention heads, or exceeds the GPUs.",
    ),
    CatalogEntry(
        FindingId.SHM_TOO_SMALL,
        "Shared memory too small",
        "NCCL could not create its /dev/shm segment (bus error): Docker without --ipc=host.",
    ),
    CatalogEntry(
        FindingId.PORT_IN_USE, "Port already in use", "Another process listens on vLLM's port."
    ),
    CatalogEntry(
        FindingId.NO_KERNEL_IMAGE,
        "vLLM build does not support this GPU",
        "CUDA 'no kernel image is available': the wheel/image was built for other GPU archs.",
    ),
    CatalogEntry(
        FindingId.FALLBACK_MISSING,
        "No usable fallback",
        "No model_fallbacks are configured, or a fallback's provider has no API key.",
    ),
    CatalogEntry(
        FindingId.LOG_ERROR,
        "Unrecognised error in the server log",
        "The log's first exception matches no known signature; it is shown as the cause.",
    ),
    CatalogEntry(
        FindingId.CHECK_CRASHED,
        "A check crashed",
        "A doctor check raised an unexpected error; the others still ran.",
    ),
    CatalogEntry(
        FindingId.TOOL_RESULT_REJECTED,
        "The turn after a tool result fails",
        "PicoClaw's second call of a turn (the assistant's tool_calls and a role \"tool\" "
        "message with the result) is rejected, while its first call works: the chat template "
        'has no tool-role support ("Conversation roles must alternate", "Unexpected '
        'message role"), so every agent turn stops after its first tool call.',
    ),
    CatalogEntry(
        FindingId.CONTROL_TOKENS_LEAKED,
        "Harmony control tokens in the answer",
        "<|channel|>, <|message|> or <|start|> (gpt-oss's Harmony format) appear in content or "
        "in a tool name: the server's tool or reasoning parser does not handle that format.",
    ),
    CatalogEntry(
        FindingId.ENGINE_HUNG,
        "vLLM's engine is hung",
        "/health and /v1/models answer 200, but a 1-token request gets no token within the "
        "timeout while vllm:generation_tokens_total stays flat: the engine core stopped "
        "(not a queue, which still generates tokens).",
        "py-spy dump --pid <EngineCore pid> for its stack, then restart vLLM",
    ),
    CatalogEntry(
        FindingId.HOST_STARVED,
        "The doctor's host is starved of CPU",
        "The doctor's own start-up or a 10 ms timer ran far slower than on an idle host: its "
        "timings and timeouts say more about this host than about the server. Evidence: the "
        "lag, the load average against the cores, a local vLLM's CPU share.",
        "run the doctor from another host; give a CPU vLLM its own cores (taskset -c, "
        "docker --cpus/--cpuset-cpus) and leave at least one core to everything else",
    ),
    CatalogEntry(
        FindingId.PREFIX_CACHE_OFF,
        "Prefix cache off",
        "PicoClaw's request sent twice reuses nothing the second time (vLLM's prefix-cache "
        "counters, or usage.prompt_tokens_details.cached_tokens): every agent call re-prefills "
        "the system prompt and tool schemas.",
        "restart vLLM with --enable-prefix-caching (and --enable-prompt-tokens-details to see "
        "cached_tokens in each answer's usage)",
    ),
)

CATALOG: dict[FindingId, CatalogEntry] = {e.id: e for e in _ENTRIES}


def entry(finding_id: FindingId) -> CatalogEntry:
    return CATALOG[finding_id]
