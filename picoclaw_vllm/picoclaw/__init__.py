"""What PicoClaw sends to vLLM, read from its source: request bodies, tools, system prompt."""
