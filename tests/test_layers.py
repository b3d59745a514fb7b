"""The packages' imports only point down: picoclaw_vllm (the shared ground: URLs, processes,
vLLM's API, log signatures and metrics, NVML, PicoClaw's config and requests, the run layout)
imports none of the rooms; loadtests imports only the ground; diagnostics, sweeps and reports
import the ground (and sweeps the load profile it runs); only the command layer (picoclaw_vllm's
cli and acceptance_command, and each room's command.py / *_command.py) imports across the rooms."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GROUND = "picoclaw_vllm"
MAY_IMPORT = {
    GROUND: {GROUND},
    "loadtests": {GROUND, "loadtests"},
    "diagnostics": {GROUND, "diagnostics"},
    "sweeps": {GROUND, "loadtests", "sweeps"},
    "reports": {GROUND, "reports"},
    "benchmarks": {GROUND, "loadtests", "sweeps", "benchmarks"},
}
COMMAND_LAYER = {"picoclaw_vllm.cli", "picoclaw_vllm.__main__", "picoclaw_vllm.acceptance_command"}


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_command(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module in COMMAND_LAYER or last == "command" or last.endswith("_command")


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def layering_violations(root: Path = ROOT) -> list[str]:
    bad: list[str] = []
    for room, allowed in MAY_IMPORT.items():
        for path in sorted((root / room).rglob("*.py")):
            module = _module(path, root)
            if _is_command(module):
                continue
            for imported in sorted(_imports(ast.parse(path.read_text()))):
                top = imported.split(".")[0]
                if top in MAY_IMPORT and top not in allowed:
                    bad.append(f"{module} imports {imported}")
    return bad


def test_imports_only_point_down() -> None:
    assert layering_violations() == []


def test_the_rule_catches_upward_and_sideways_imports(tmp_path: Path) -> None:
    files = {
        "picoclaw_vllm/urls.py": "from diagnostics.catalog import entry\n",
        "picoclaw_vllm/cli.py": "import reports.gates\nimport sweeps.engine\n",
        "reports/gates.py": "from sweeps import run_layout\nfrom picoclaw_vllm import urls\n",
        "sweeps/command.py": "import reports.gates\n",
        "loadtests/chat.py": "import sweeps.config\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert layering_violations(tmp_path) == [
        "picoclaw_vllm.urls imports diagnostics.catalog",
        "loadtests.chat imports sweeps.config",
        "reports.gates imports sweeps",
    ]
