"""How vLLM's OpenAI-compatible API answers, read one way for the doctor, the Locust load
profile and the benchmarks: SSE decoding (`sse`) and per-request timing (`measurement`)."""
