"""Every HASH/MAC comparison is constant-time, through one function, and none is forgotten."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyracoon
from pyracoon.crypto.hashes import digests_equal

PACKAGE = Path(pyracoon.__file__).parent
#: the functions that compute a value a peer's HASH payload is compared with
HASH_FUNCTIONS = {
    "hash_i",
    "hash_r",
    "quick_mode_hash1",
    "quick_mode_hash2",
    "quick_mode_hash3",
    "quick_mode_hash4",
    "informational_hash",
    "_peer_hash",
    "prf",
    "mac",
}


def test_digests_equal() -> None:
    assert digests_equal(b"\x01" * 20, bytearray(b"\x01" * 20))
    assert not digests_equal(b"\x01" * 20, b"\x01" * 19 + b"\x02")
    assert not digests_equal(b"\x01" * 20, b"\x01" * 16)
    assert not digests_equal(b"", b"\x00")


def _called(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    return None


def _offences(path: Path, root: Path = PACKAGE) -> list[str]:
    """``==``/``!=`` on a HASH value, or ``compare_digest`` outside ``digests_equal``."""
    tree = ast.parse(path.read_text())
    hashed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _called(node.value) in HASH_FUNCTIONS:
            hashed |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    out = []
    for node in ast.walk(tree):
        equality = isinstance(node, ast.Compare) and any(
            isinstance(o, ast.Eq | ast.NotEq) for o in node.ops
        )
        if equality:
            assert isinstance(node, ast.Compare)
            for side in (node.left, *node.comparators):
                if _called(side) in HASH_FUNCTIONS or (
                    isinstance(side, ast.Name) and side.id in hashed
                ):
                    out.append(f"{path.relative_to(root)}:{node.lineno}: == on a HASH value")
        if _called(node) == "compare_digest" and path.name != "hashes.py":
            out.append(f"{path.relative_to(root)}:{node.lineno}: compare_digest directly")
    return out


def test_no_hash_is_compared_with_eq_and_none_bypasses_the_helper() -> None:
    offences = [o for p in sorted(PACKAGE.rglob("*.py")) for o in _offences(p)]
    assert offences == []


@pytest.mark.parametrize(
    "code",
    ["expected = hash_i(a)\nif got != expected: pass\n", "if got == quick_mode_hash1(x): pass\n"],
)
def test_the_check_finds_a_plain_comparison(tmp_path: Path, code: str) -> None:
    f = tmp_path / "probe.py"
    f.write_text(code)
    assert _offences(f, tmp_path), code
