"""picoclaw-vllm: troubleshooting and benchmarking for vLLM servers used from PicoClaw."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("picoclaw-vllm")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
