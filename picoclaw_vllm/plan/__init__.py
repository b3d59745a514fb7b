"""`picoclaw-vllm plan`: the vLLM flags that fit a model, its GPUs and PicoClaw, before the first
start. model_source reads config.json and the tokenizer, gpus the GPUs, picoclaw_needs what
PicoClaw sends, arithmetic the memory plan (picoclaw_vllm.model_memory is its estimator),
launch the commands and PicoClaw entry, render the text and JSON, command the CLI."""
