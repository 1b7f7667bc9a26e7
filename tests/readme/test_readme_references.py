"""Everything the repository cites is in the repository.

A user has the checkout (or the wheel's copy of conf/, rc.d/, docs/ and the README), nothing
more: no development machine's shared folder, no reference notes kept beside the checkout.
So no file may point outside it, and every file the README and docs point at must exist.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
# spelled in pieces so that this file does not match itself
OUTSIDE = ["racoon" + "-facts", "../" + "shared", "/work" + "/shared", "/work" + "/main"]
TEXT_SUFFIXES = {".py", ".md", ".sh", ".toml", ".service", ".cfg", ".in", ""}
DOCS = [TOP / "README.md", *sorted((TOP / "docs").glob("*.md"))]


def repository_files() -> list[Path]:
    """The tracked files (all files under the top when git is not available)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(TOP), "ls-files", "-z"], capture_output=True, check=True
        ).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [str(p.relative_to(TOP)) for p in TOP.rglob("*") if p.is_file()]
    return [TOP / n for n in names if (TOP / n).is_file()]


def test_no_file_cites_anything_outside_the_repository() -> None:
    offenders = []
    for path in repository_files():
        if path.suffix not in TEXT_SUFFIXES or path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if any(word in line for word in OUTSIDE):
                offenders.append(f"{path.relative_to(TOP)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_linked_or_named_file_exists(doc: Path) -> None:
    """Markdown links and backticked repository paths (``conf/...``, ``rc.d/...``...)."""
    text = doc.read_text()
    named = set(re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text))
    named |= set(
        re.findall(r"`((?:conf|rc\.d|docs|tests|pyracoon|bench|\.ci)/[\w./-]*[\w])`", text)
    )
    missing = []
    for name in sorted(named):
        if "://" in name or name.startswith("mailto:"):
            continue
        base = TOP if doc.name == "README.md" or name.startswith(("conf/", "rc.d/")) else doc.parent
        candidates = [base / name, TOP / name]
        if not any(c.exists() for c in candidates):
            missing.append(name)
    assert not missing, f"{doc.name} names files that are not in the repository: {missing}"


def test_memo_sections_cited_exist() -> None:
    """``memo §N`` and ``(§N)`` point into docs/memo.md, which must have a section N."""
    memo = (TOP / "docs" / "memo.md").read_text()
    sections = {int(n) for n in re.findall(r"^## (\d+)\.", memo, re.M)}
    for doc in DOCS:
        cited = {int(n) for n in re.findall(r"§(\d+)", doc.read_text())}
        assert cited <= sections, (doc.name, cited - sections)
    assert "docs/memo.md" in (TOP / "README.md").read_text()
