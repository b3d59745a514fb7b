"""Start the session test server by hand and keep it running (for iterating on tests):

.venv/bin/python tests/devserver.py 18000
PICOCLAW_VLLM_TEST_BASE_URL=http://127.0.0.1:18000 .venv/bin/pytest ...
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from conftest import dev_server_settings  # type: ignore[import-not-found]

from picoclaw_vllm.server.embedded import embedded_backend
from picoclaw_vllm.server.launcher import running_server


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # so `kill` also stops the server's group
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18000
    with running_server(
        dev_server_settings(port), embedded_backend(), log_path=Path(f"/tmp/devserver-{port}.log")
    ) as s:
        print(f"ready at {s.base_url} after {s.ready_after_s:.0f} s", flush=True)
        while True:
            time.sleep(3600)
