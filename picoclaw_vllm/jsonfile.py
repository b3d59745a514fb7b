"""Reading the JSON (and text) files a user hands the tool: every way one can be wrong is a
`BadFile` with one line that names the file and the cause, never a traceback.

Strict JSON as Go (PicoClaw) and every other reader parses it: NaN and Infinity are refused,
nesting deeper than Python can follow is named as such, binary files are "not UTF-8 text".
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 1024 * 1024


class BadFile(ValueError):
    """str() is the one-line reason; line and column point into the file when known."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


def os_reason(e: OSError) -> str:
    """An OSError in plain words (a symlink loop is not "no such file")."""
    reasons = {
        errno.ELOOP: "a symbolic link loop",
        errno.ENOENT: "no such file",
        errno.EISDIR: "is a folder, not a file",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }
    return reasons.get(e.errno or 0, e.strerror or str(e))


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The file as UTF-8 text, or BadFile (unreadable, too big, binary)."""
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise BadFile(os_reason(e)) from None
    if len(data) > max_bytes:
        raise BadFile(f"larger than {max_bytes // (1024 * 1024)} MB: not a file this tool reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadFile(
            f"not UTF-8 text (a binary file?): byte {e.start} cannot be decoded"
        ) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(text: str) -> Any:
    """Strict JSON, or BadFile with line and column."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise BadFile(f"not valid JSON: {e.msg}", e.lineno, e.colno) from None
    except RecursionError:
        raise BadFile("not usable JSON: nested too deeply") from None
    except ValueError as e:  # NaN / Infinity
        name = str(e).split()[0]
        line, column = _position(text, name)
        raise BadFile(f"not valid JSON: {e}", line, column) from None


def read_json(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    return loads(read_text(path, max_bytes))


def _position(text: str, token: str) -> tuple[int, int]:
    index = text.find(token)
    if index < 0:
        return 1, 1
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def key_position(text: str, key: str) -> tuple[int, int]:
    """(line, column) of the first `"key":` in a JSON text; (1, 1) when not found."""
    return _position(text, json.dumps(key))
