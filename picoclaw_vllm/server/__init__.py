"""Starting, waiting for and stopping vLLM servers (local process, Docker, or someone else's)."""
