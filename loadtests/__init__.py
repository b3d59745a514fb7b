"""Locust load profiles for vLLM, their metric maths, and sweeps across server settings."""
