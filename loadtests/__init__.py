"""The Locust load profile for vLLM: what runs inside the Locust process (`locust -f
loadtests/chat.py`). The sweep engine that runs it step by step is the `sweeps` package."""
