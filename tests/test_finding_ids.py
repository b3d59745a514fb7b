"""Every finding kind (picoclaw_vllm.finding_ids.FindingId) has a catalog entry and is emitted
somewhere, and findings are made with the enum, never a bare string: a typo fails mypy, and a
kind nobody reports or nobody describes fails here."""

from __future__ import annotations

import ast
from pathlib import Path

from diagnostics.catalog import CATALOG
from diagnostics.runner import CHECKS
from picoclaw_vllm.finding_ids import FindingId

SOURCE = Path(__file__).resolve().parent.parent / "diagnostics"
# where the kinds are declared and described, not emitted
DECLARING = {SOURCE / "finding_ids.py", SOURCE / "catalog.py"}
# calls whose first argument is a finding id
ID_TAKING_CALLS = {"Finding", "LogCause", "Signature", "_sig"}


def _trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text()) for path in sorted(SOURCE.rglob("*.py"))}


def referenced_kinds() -> set[str]:
    """Every `FindingId.X` named outside the declaring modules."""
    found: set[str] = set()
    for path, tree in _trees().items():
        if path in DECLARING:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "FindingId"
            ):
                found.add(node.attr)
    return found


def test_every_kind_has_a_catalog_entry() -> None:
    assert set(CATALOG) == set(FindingId)
    assert all(entry.id is kind for kind, entry in CATALOG.items())


def test_every_kind_is_emitted_somewhere() -> None:
    unused = {kind.name for kind in FindingId} - referenced_kinds()
    assert not unused, f"finding kinds no check emits: {unused}"


def test_every_emitted_kind_is_declared() -> None:
    undeclared = referenced_kinds() - {kind.name for kind in FindingId}
    assert not undeclared, f"FindingId members used but not declared: {undeclared}"


def test_no_finding_is_made_with_a_bare_string_id() -> None:
    bare = []
    for path, tree in _trees().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else None
            first = node.args[0]
            if name in ID_TAKING_CALLS and isinstance(first, ast.Constant):
                bare.append(f"{path.name}:{node.lineno}: {name}({first.value!r}, ...)")
    assert not bare, bare


def test_every_check_declares_kinds() -> None:
    for check in CHECKS:
        assert all(isinstance(kind, FindingId) for kind in check.finding_ids), check.name
