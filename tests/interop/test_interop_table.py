"""The README's Interoperability table is the rendering of the committed results.json."""

from __future__ import annotations

import json
from pathlib import Path

from make_table import BEGIN, RESULTS, main, render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_generated_from_results() -> None:
    assert main(["--check", str(README)]) == 0, "run tests/interop/make_table.py --readme README.md"


def test_roles_of_one_scenario_share_a_row() -> None:
    rows = json.loads(RESULTS.read_text())
    table = render(rows)
    assert table.count("\n") == 2 + len(
        {tuple(v for k, v in sorted(r.items()) if k != "role") for r in rows}
    )
    assert BEGIN in README.read_text()
    # every charon scenario of the matrix was proven in both roles
    charon = [line for line in table.splitlines() if "SPIs+keys equal" in line]
    assert len(charon) == 5 and all("initiates, responds" in line for line in charon), table
