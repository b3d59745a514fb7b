"""The sweep engine: vLLM started per server setting, the Locust load profile (loadtests/)
run as a subprocess per load step, `/metrics` sampled, one results row per step."""
