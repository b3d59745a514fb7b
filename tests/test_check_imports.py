"""A check never imports a sibling check: what two checks share lives outside diagnostics/checks
(catalog, remedies, log_explanations, http_signatures), and base.py holds only the Check type."""

from __future__ import annotations

import ast
from pathlib import Path

CHECKS_DIR = Path(__file__).resolve().parent.parent / "diagnostics" / "checks"
SHARED = {"diagnostics.checks.base"}


def imported_modules(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("relative import")
    return found


def test_checks_import_no_sibling_check() -> None:
    borrowed: dict[str, list[str]] = {}
    for path in sorted(CHECKS_DIR.glob("*.py")):
        own = f"diagnostics.checks.{path.stem}"
        siblings = {
            module
            for module in imported_modules(ast.parse(path.read_text()))
            if module == "relative import"
            or (module.startswith("diagnostics.checks.") and module != own)
        }
        siblings = {m for m in siblings if not any(m.startswith(s) for s in SHARED)}
        if siblings:
            borrowed[path.name] = sorted(siblings)
    assert not borrowed, f"checks importing sibling checks: {borrowed}"
