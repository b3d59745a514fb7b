"""The GPUs a plan is for: given as `--gpus 2x24GiB`, or read from NVML (the doctor's reader)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from picoclaw_vllm.errors import UsageError
from picoclaw_vllm.nvml import GpuReader, NvmlReader

_UNITS = {"gib": 1.0, "gb": 1e9 / 1024**3, "mib": 1 / 1024, "mb": 1e6 / 1024**3}
_SPEC = re.compile(r"^\s*(?:(\d+)\s*[x×*]\s*)?(\d+(?:\.\d+)?)\s*(gib|gb|mib|mb)?\s*$", re.I)


@dataclass(frozen=True)
class GpuSet:
    count: int
    memory_gib: float  # each GPU's total memory (the smallest, when they differ)
    source: str
    free_gib: float | None = None  # the least free memory of one GPU, when NVML read it


def parse(spec: str) -> GpuSet:
    """`2x24GiB`, `1x80GB`, `24GiB` (one GPU), `2x24576MiB`; GiB when no unit is given."""
    m = _SPEC.match(spec)
    if not m:
        raise UsageError(f"--gpus {spec!r}: expected COUNTxSIZE, e.g. 1x24GiB or 2x80GB")
    count = int(m.group(1) or 1)
    size = float(m.group(2)) * _UNITS[(m.group(3) or "gib").lower()]
    if not 1 <= count <= 1024 or not 0 < size <= 100_000:
        raise UsageError(f"--gpus {spec!r}: 1 to 1024 GPUs of more than 0 GiB each")
    return GpuSet(count, size, f"--gpus {spec}")


class NoGpu(UsageError):
    """NVML found no GPU; the message says why."""


def from_nvml(reader: GpuReader | None = None) -> GpuSet:
    snapshot = (reader or NvmlReader()).read()
    if snapshot.not_applicable or not snapshot.gpus:
        raise NoGpu(f"no GPU found through NVML ({snapshot.not_applicable or 'no GPUs'})")
    smallest = min(snapshot.gpus, key=lambda g: g.total_mib)
    names = sorted({g.name for g in snapshot.gpus})
    return GpuSet(
        len(snapshot.gpus),
        smallest.total_mib / 1024,
        f"NVML: {len(snapshot.gpus)} x {', '.join(names)}",
        min(g.free_mib for g in snapshot.gpus) / 1024,
    )
