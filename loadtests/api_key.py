"""Which API key a load test sends: the one PicoClaw's traffic would carry.

Given, else VLLM_API_KEY, else PicoClaw's config read the way the doctor reads it
(picoclaw_vllm.picoclaw.config: both formats, `.security.yml` first). The key is only ever
returned, never printed or logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from picoclaw_vllm.picoclaw import config as picoclaw_config


def resolve_api_key(
    given: str | None, env: Mapping[str, str] | None = None, config_path: Path | None = None
) -> str | None:
    env = os.environ if env is None else env
    if given or env.get("VLLM_API_KEY"):
        return picoclaw_config.api_key(given, picoclaw_config.PicoclawConfig(None, "none"), env)[0]
    home = env.get("PICOCLAW_HOME")
    path = config_path or (Path(home) / "config.json" if home else None)
    config = picoclaw_config.load(path)
    if isinstance(config, picoclaw_config.ConfigProblem):
        return None
    return picoclaw_config.api_key(None, config, env)[0]
