"""One vLLM server setting, and the command-line arguments it becomes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ServerSettings:
    model: str
    served_model_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_num_seqs: int | None = None
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    dtype: str | None = None
    api_key: str | None = field(default=None, repr=False)
    extra_args: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The model name clients must send."""
        return self.served_model_name or self.model

    def with_(self, **changes: object) -> ServerSettings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def vllm_args(self, *, bind: bool = True) -> list[str]:
        """vLLM's own arguments. The API key is never among them: it travels as VLLM_API_KEY.

        bind=False leaves out --host/--port (a container listens on its image's default).
        """
        args = ["--model", self.model]
        if self.served_model_name:
            args += ["--served-model-name", self.served_model_name]
        if bind:
            args += ["--host", self.host, "--port", str(self.port)]
        if self.max_model_len is not None:
            args += ["--max-model-len", str(self.max_model_len)]
        if self.max_num_seqs is not None:
            args += ["--max-num-seqs", str(self.max_num_seqs)]
        if self.tensor_parallel_size != 1:
            args += ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.gpu_memory_utilization is not None:
            args += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        if self.dtype:
            args += ["--dtype", self.dtype]
        return args + list(self.extra_args)

    def label(self) -> str:
        seqs = self.max_num_seqs if self.max_num_seqs is not None else "default"
        return f"max-num-seqs={seqs} tp={self.tensor_parallel_size}"
