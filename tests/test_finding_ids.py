"""Every finding id the doctor can emit is declared in the catalog, and every declared id is
emitted somewhere: a typo in a check fails here, not in a user's report."""

from __future__ import annotations

import re
from pathlib import Path

from diagnostics.catalog import CATALOG
from diagnostics.runner import CHECKS

SOURCE = Path(__file__).resolve().parent.parent / "diagnostics"
# Finding("id", ...), Finding(\n "id", and data tables mapping signatures to ids
_EMITTED = re.compile(r'Finding\(\s*"([a-z_]+)"|_sig\(\s*"([a-z_]+)"')


def emitted_ids() -> set[str]:
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for match in _EMITTED.finditer(path.read_text()):
            found.add(match.group(1) or match.group(2))
    return found


def test_every_emitted_id_is_declared() -> None:
    undeclared = emitted_ids() - set(CATALOG)
    assert not undeclared, f"finding ids used but not in diagnostics/catalog.py: {undeclared}"


def test_every_check_declares_known_ids() -> None:
    for check in CHECKS:
        assert set(check.finding_ids) <= set(CATALOG), (check.name, check.finding_ids)


def test_every_declared_id_can_be_emitted() -> None:
    declared_by_checks = {fid for check in CHECKS for fid in check.finding_ids}
    unused = set(CATALOG) - emitted_ids() - declared_by_checks
    assert not unused, f"catalog ids no check emits: {unused}"
