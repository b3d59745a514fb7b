"""Doctor: probes gather facts about a vLLM deployment, checks judge them into findings."""
