"""Every error this tool raises on purpose, in one tree.

PicoclawVllmError            anything the CLI turns into a one-line message
├── UsageError               bad flags or arguments (exit 2)
├── ConfigError              a PicoClaw or SLO config that can't be read (exit 2)
├── SetupError               the local CPU vLLM environment could not be made
└── LaunchError              a vLLM server did not become ready
    (carries the log path and the log's tail so the doctor can name the cause)
"""

from __future__ import annotations

from pathlib import Path


class PicoclawVllmError(Exception):
    exit_code = 1


class UsageError(PicoclawVllmError):
    exit_code = 2


class ConfigError(PicoclawVllmError):
    exit_code = 2


class SetupError(PicoclawVllmError):
    pass


class LaunchError(PicoclawVllmError):
    def __init__(
        self,
        message: str,
        *,
        log_path: Path | None = None,
        log_text: str = "",
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.log_path = log_path
        self.log_text = log_text
        self.process_exit_code = exit_code
