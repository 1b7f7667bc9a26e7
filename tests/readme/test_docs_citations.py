"""The documents the code cites are there, and say what the citation promises.

Docstrings and comments send the reader to ``docs/NAME.md``, often to a section by its heading:
``docs/config.md ("The support table")``, ``(docs/racoon.md, "sainfo")``, several at once as in
``docs/racoon.md ("remote", "Bugs not copied")``.  A citation of a file that does not exist, or
of a heading that was renamed, sends a reader nowhere, so every one is checked here -- in
pyracoon/, tests/, and between the documents themselves (``[racoon.md](racoon.md), "Bugs not
copied"``).  The same files may not lean on anything outside the repository.

The support table of docs/config.md is pyracoon/config/support.py in prose; it must list the
same directives, in the same class, with the same words.  ``python
tests/readme/test_docs_citations.py`` prints the table as it should be.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
if str(TOP) not in sys.path:  # run as a script to print the support table
    sys.path.insert(0, str(TOP))

from pyracoon.config.support import ACTED_UPON, REPORTED  # noqa: E402

DOCS = TOP / "docs"
TEXT_SUFFIXES = {".py", ".md", ".sh", ".toml", ".cfg", ".txt", ".service", ""}
# spelled in pieces so that this file does not match itself
OUTSIDE = ("racoon" + "-facts", ".." + "/shared")

#: ``docs/NAME.md`` (or, inside docs/, a Markdown link to ``NAME.md``), optionally followed by
#: ``("Section", ...)`` or ``, "Section"``; whitespace, newlines included, is collapsed first.
CITATION = re.compile(
    r"(?:\bdocs/|\]\((?:docs/)?)(?P<name>[A-Za-z0-9_-]+)\.md(?:#[\w-]*)?\)?`?"
    r"(?:\s*[(,]\s*(?P<sections>\"[^\"\n]+\"(?:\s*,\s*\"[^\"\n]+\")*))?"
)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def cited_files() -> list[Path]:
    """Every Python file of pyracoon/ and tests/ (but this one, whose examples are broken on
    purpose), the documents and the README."""
    files = [TOP / "README.md", *sorted(DOCS.glob("*.md"))]
    for top in ("pyracoon", "tests"):
        files += sorted(
            p for p in (TOP / top).rglob("*")
            if p.is_file() and p.suffix == ".py" and "__pycache__" not in p.parts
            and p != Path(__file__).resolve()
        )
    return files


def citations(text: str) -> list[tuple[str, list[str]]]:
    """(document name, quoted sections) for each citation in ``text``."""
    flat = re.sub(r"\s+", " ", text)
    found = []
    for match in CITATION.finditer(flat):
        sections = re.findall(r"\"([^\"]+)\"", match.group("sections") or "")
        found.append((match.group("name"), sections))
    return found


def headings(doc: Path) -> set[str]:
    """A document's headings, as written and without their backticks."""
    names = set(HEADING.findall(doc.read_text()))
    return names | {name.replace("`", "") for name in names}


def broken_citations(label: str, text: str) -> list[str]:
    """What is wrong with the citations in ``text`` (from ``label``), one line each."""
    problems = []
    for name, sections in citations(text):
        doc = DOCS / f"{name}.md"
        if not doc.exists() and (TOP / f"{name}.md").exists():
            doc = TOP / f"{name}.md"  # a link from docs/ to the README
        if not doc.exists():
            problems.append(f"{label}: cites docs/{name}.md, which does not exist")
            continue
        known = headings(doc)
        missing = [s for s in sections if s not in known]
        if missing:
            problems.append(f"{label}: cites docs/{name}.md {missing}, which are not its headings")
    return problems


def test_the_citation_pattern_reads_every_form() -> None:
    text = (
        'see docs/config.md ("The support table") and docs/racoon.md\n    ("remote", '
        '"Bugs not copied"); (docs/racoon.md, "sainfo"); ``docs/engine.md`` for the design; '
        '"docs/memo.md", "README.md"; [racoon.md](racoon.md), "Bugs not copied"'
    )
    assert citations(text) == [
        ("config", ["The support table"]),
        ("racoon", ["remote", "Bugs not copied"]),
        ("racoon", ["sainfo"]),
        ("engine", []),
        ("memo", []),
        ("racoon", ["Bugs not copied"]),
    ]


def test_the_code_cites_the_documents_this_page_was_written_for() -> None:
    """The docstrings of pyracoon/config cite racoon.md and config.md by section: if the
    pattern stopped finding them, the test below would pass without checking anything."""
    cited = {
        (name, section)
        for path in sorted((TOP / "pyracoon" / "config").glob("*.py"))
        for name, sections in citations(path.read_text())
        for section in sections
    }
    assert {
        ("config", "The support table"),
        ("config", "How a statement is dispatched"),
        ("racoon", "racoon.conf grammar"),
        ("racoon", "Bugs not copied"),
        ("racoon", "sainfo"),
        ("racoon", "remote"),
    } <= cited


def test_every_cited_document_and_section_exists() -> None:
    problems = [
        line
        for path in cited_files()
        for line in broken_citations(str(path.relative_to(TOP)), path.read_text())
    ]
    assert not problems, "\n".join(problems)


def test_a_missing_document_or_heading_is_caught() -> None:
    """The check fails for what it is there to catch: a renamed heading, a missing file."""
    text = (
        '"""docs/config.md ("How a statement is dispatched"), docs/racoon.md\n'
        '    ("sainfo", "No such section"), docs/no_such_document.md."""'
    )
    assert broken_citations("x.py", text) == [
        "x.py: cites docs/racoon.md ['No such section'], which are not its headings",
        "x.py: cites docs/no_such_document.md, which does not exist",
    ]


def test_nothing_leans_on_files_outside_the_repository() -> None:
    """Walks the directories themselves, so files not yet committed are checked too."""
    paths = [TOP / "README.md"]
    for top in ("pyracoon", "tests", "docs"):
        paths += [
            p for p in (TOP / top).rglob("*")
            if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts
        ]
    offenders = []
    for path in paths:
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if any(word in line for word in OUTSIDE):
                offenders.append(f"{path.relative_to(TOP)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# ---------------------------------------------------------------------- the support table
def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def support_table_markdown() -> str:
    """docs/config.md's two support tables, as pyracoon/config/support.py gives them."""
    lines = ["### Acted upon", "", "| directive | carried in | acted on by |", "|---|---|---|"]
    for key, (attribute, who) in ACTED_UPON.items():
        carried = f"`{attribute}`" if attribute else "—"
        lines.append(f"| `{key}` | {carried} | {_cell(who)} |")
    lines += ["", "### Reported as not acted upon", "",
              "| directive | what racoon does with it |", "|---|---|"]
    for key, what in REPORTED.items():
        lines.append(f"| `{key}` | {_cell(what)} |")
    return "\n".join(lines) + "\n"


def _table_rows(markdown: str, heading: str) -> dict[str, str]:
    """``directive -> the rest of its row`` in the table under ``### heading``."""
    part = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^#|\Z)", markdown, re.M | re.S)
    assert part, f"docs/config.md has no '### {heading}' under 'The support table'"
    rows = {}
    for match in re.finditer(r"^\| `([^`]+)` \| (.*) \|$", part.group(1), re.M):
        assert match.group(1) not in rows, f"{match.group(1)} is listed twice under {heading}"
        rows[match.group(1)] = match.group(2)
    return rows


def _support_section(markdown: str) -> str:
    section = re.search(r"^## The support table\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert section, "docs/config.md has no '## The support table'"
    return section.group(1)


@pytest.mark.parametrize("heading", ["Acted upon", "Reported as not acted upon"])
def test_the_support_table_lists_what_support_py_says(heading: str) -> None:
    documented = _table_rows(_support_section((DOCS / "config.md").read_text()), heading)
    expected = _table_rows(support_table_markdown(), heading)
    missing = sorted(set(expected) - set(documented))
    extra = sorted(set(documented) - set(expected))
    reworded = sorted(k for k in set(expected) & set(documented) if expected[k] != documented[k])
    assert not (missing or extra or reworded), (
        f"docs/config.md, '{heading}': missing {missing}, not in support.py {extra}, "
        f"worded otherwise {reworded}; the table should read:\n\n{support_table_markdown()}"
    )


def test_the_support_table_check_sees_a_difference() -> None:
    table = support_table_markdown()
    first_reported = next(iter(REPORTED))
    broken = table.replace(f"| `{first_reported}` |", "| `no_such_directive` |")
    rows = _table_rows(broken, "Reported as not acted upon")
    assert "no_such_directive" in rows and first_reported not in rows
    assert set(_table_rows(table, "Acted upon")) == set(ACTED_UPON)
    assert set(_table_rows(table, "Reported as not acted upon")) == set(REPORTED)


if __name__ == "__main__":
    sys.stdout.write(support_table_markdown())
