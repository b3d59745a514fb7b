"""Local NVIDIA GPUs through NVML, behind a reader protocol so tests can use recordings.

No driver or no NVML library means "not applicable", never an error.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from picoclaw_vllm import jsonfile
from picoclaw_vllm.procs import is_vllm_server

MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str
    used_mib: float


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_mib: float
    used_mib: float
    utilization_percent: float | None = None
    processes: tuple[GpuProcess, ...] = ()

    @property
    def free_mib(self) -> float:
        return self.total_mib - self.used_mib


@dataclass(frozen=True)
class GpuSnapshot:
    gpus: tuple[Gpu, ...] = ()
    driver_version: str | None = None
    not_applicable: str | None = None  # why there is nothing to read

    @classmethod
    def none(cls, reason: str) -> GpuSnapshot:
        return cls(not_applicable=reason)


def _is_vllm(proc: GpuProcess) -> bool:
    return "vllm" in proc.name.lower() or is_vllm_server(proc.name.split())


def other_processes(gpu: Gpu) -> list[GpuProcess]:
    """The processes holding memory on gpu that are not vLLM."""
    return [p for p in gpu.processes if not _is_vllm(p)]


class GpuReader(Protocol):
    def read(self) -> GpuSnapshot: ...


def _process_name(pid: int) -> str:
    try:
        proc = psutil.Process(pid)
        return " ".join(proc.cmdline()[:4]) or proc.name()
    except psutil.Error:
        return f"pid {pid}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlReader:
    """The real NVML, through nvidia-ml-py (`pynvml`)."""

    def read(self) -> GpuSnapshot:
        try:
            import pynvml
        except ImportError:
            return GpuSnapshot.none("nvidia-ml-py is not installed")
        try:
            pynvml.nvmlInit()
        except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return GpuSnapshot.none(f"no NVIDIA driver here ({type(e).__name__})")
        try:
            return self._read(pynvml)
        except Exception as e:
            return GpuSnapshot.none(f"NVML could not be read ({type(e).__name__}: {e})")
        finally:
            with contextlib.suppress(Exception):
                pynvml.nvmlShutdown()

    def _read(self, nvml: Any) -> GpuSnapshot:
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                util: float | None = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception:
                util = None
            procs = []
            try:
                for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    used = (p.usedGpuMemory or 0) / MIB
                    procs.append(GpuProcess(p.pid, _process_name(p.pid), used))
            except Exception:
                pass
            gpus.append(
                Gpu(i, _text(nvml.nvmlDeviceGetName(handle)), mem.total / MIB, mem.used / MIB,
                    util, tuple(procs))
            )  # fmt: skip
        return GpuSnapshot(tuple(gpus), _text(nvml.nvmlSystemGetDriverVersion()))


@dataclass
class RecordedReader:
    """NVML readings recorded earlier (a JSON document), for tests and offline analysis."""

    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> RecordedReader:
        """The recording at path, read and checked once: ValueError says what is wrong."""
        data = jsonfile.read_json(path)
        if not isinstance(data, dict):
            raise ValueError("a GPU recording is a JSON object with a list of gpus")
        reader = cls(data)
        try:
            reader.read()
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            detail = f"missing {e}" if isinstance(e, KeyError) else str(e)[:120]
            raise ValueError(
                f'not a GPU recording ({detail}): expected {{"gpus": [{{"index", "name", '
                '"memory_total_mib", "memory_used_mib", "processes": [...]}]}'
            ) from None
        return reader

    def read(self) -> GpuSnapshot:
        gpus = tuple(
            Gpu(
                index=int(g["index"]),
                name=str(g["name"]),
                total_mib=float(g["memory_total_mib"]),
                used_mib=float(g["memory_used_mib"]),
                utilization_percent=g.get("utilization_gpu_percent"),
                processes=tuple(
                    GpuProcess(int(p["pid"]), str(p["name"]), float(p["used_memory_mib"]))
                    for p in g.get("processes", [])
                ),
            )
            for g in self.data.get("gpus", [])
        )
        if not gpus:
            return GpuSnapshot.none(str(self.data.get("not_applicable", "no GPUs recorded")))
        return GpuSnapshot(gpus, self.data.get("driver_version"))
