"""docs/architecture.md's package table says which packages each one imports; hold it to the code.

The layering rule -- wire, crypto, pki and kernel import nothing above them -- is what lets the
codecs and the crypto be read and tested alone, and a lazy import inside a function breaks it
as surely as one at the top, so every import statement counts, TYPE_CHECKING ones included.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
PACKAGES = ("wire", "crypto", "pki", "kernel", "config", "engine", "admin", "daemon", "setkey")
#: May import nothing above them (and nothing but ``crypto``'s algorithm table, for kernel).
LOWER = {"wire": set(), "crypto": set(), "pki": set(), "kernel": {"crypto"}}


def imported_packages(package: str) -> set[str]:
    """The other pyracoon packages (or top-level modules) that ``package`` imports."""
    found: set[str] = set()
    for path in (TOP / "pyracoon" / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom) and node.level >= 2:
                names = ["pyracoon." + (node.module or "")]  # from ..x import y
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "pyracoon" and len(parts) > 1 and parts[1] and parts[1] != package:
                    found.add(parts[1])
    return found


def documented_imports() -> dict[str, set[str]]:
    """``package -> the packages its row's last column names`` in docs/architecture.md."""
    text = (TOP / "docs" / "architecture.md").read_text()
    rows = {}
    for match in re.finditer(r"^\| `(\w+)` \| .* \| (.*) \|$", text, re.M):
        if match.group(1) in PACKAGES:
            named = set(re.findall(r"`(\w+)`", match.group(2)))
            rows[match.group(1)] = named & set(PACKAGES)  # not `AdminSock` and the like
    return rows


def test_the_table_has_a_row_for_every_package() -> None:
    assert set(documented_imports()) == set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_the_table_says_what_each_package_imports(package: str) -> None:
    assert documented_imports()[package] == imported_packages(package)


@pytest.mark.parametrize("package", sorted(LOWER))
def test_the_lower_layers_import_nothing_above_them(package: str) -> None:
    assert imported_packages(package) <= LOWER[package]
