"""Fixtures of the interop suite: namespaces, certificates, the fake-kernel plugin, results.

Every test here is marked ``interop`` (``pytest -m "not interop"`` leaves them out).  They need
root (network namespaces) and the third-party tools; a missing tool skips the tests that need
it, with the reason -- except in CI (``CI`` set), where ``.ci/run`` installs everything and a
missing piece is a failure, so that the matrix cannot silently shrink.

``PYRACOON_INTEROP_RESULTS=FILE`` makes the session write what it proved to FILE (JSON), which
``make_table.py`` renders as the README's Interoperability table.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import interop_charon
import pytest
from interop_charon import CHARON, PLUGINDIR, REQUIRED_PLUGINS, build_fake_kernel
from interop_lab import V4, V6, NetnsPair, tool_missing, unavailable

from pyracoon.lab import Issued, issue

_results: list[dict] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.interop)


def require(*tools: str) -> None:
    if os.geteuid() != 0:
        unavailable("needs root for network namespaces")
    missing = tool_missing("ip", *tools)
    if missing:
        unavailable(f"missing tools: {', '.join(missing)}")


def require_charon() -> None:
    require("swanctl")
    if not CHARON.exists():
        unavailable(f"{CHARON} missing (apt-get install strongswan-charon)")
    missing = [
        name for name, package in REQUIRED_PLUGINS.items()
        if not (PLUGINDIR / f"libstrongswan-{name}.so").exists()
    ]  # fmt: skip
    if missing:
        packages = sorted({REQUIRED_PLUGINS[m] for m in missing})
        unavailable(
            f"charon plugin(s) {', '.join(missing)} missing from {PLUGINDIR} "
            f"(apt-get install {' '.join(packages)}): without openssl charon has no 3DES/AES "
            "and answers INVALID-KEY-INFORMATION"
        )


@pytest.fixture(autouse=True)
def _charons_of_this_test() -> Iterator[None]:
    interop_charon.started.clear()
    yield


@pytest.fixture
def net() -> Iterator[NetnsPair]:
    require()
    pair = NetnsPair()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def tmpdir_short() -> Iterator[Path]:
    """A short directory: Unix socket paths (kernel, vici) must stay under 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="pyi") as d:
        yield Path(d)


@dataclass
class Certs:
    ca: Issued
    pyracoon: Issued
    peer: Issued


@pytest.fixture(scope="session")
def certs() -> Certs:
    ca = issue("interop CA")
    return Certs(
        ca,
        issue("pyracoon", ca, san=[V4[0], V6[0]]),
        issue("peer", ca, san=[V4[1], V6[1]]),
    )


_plugin: list[tuple[Path | None, str]] = []


@pytest.fixture
def fake_kernel() -> Path:
    """The no-op kernel-ipsec plugin, built once per session (skip/fail when it cannot be)."""
    require_charon()
    if not _plugin:
        _plugin.append(build_fake_kernel())
    so, why = _plugin[0]
    if so is None:
        unavailable(f"the fake-kernel plugin for charon could not be built: {why}")
    assert so is not None
    return so


@pytest.fixture
def record() -> Iterator[list[dict]]:
    """Rows a test proved; kept only when the test passes."""
    rows: list[dict] = []
    yield rows
    _results.extend(rows)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    # a failing test's rows must not reach the table: drop them before the fixture teardown
    if call.when == "call" and call.excinfo is not None:
        rows = getattr(item, "funcargs", {}).get("record")
        if isinstance(rows, list):
            rows.clear()
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    # a failure against charon shows charon's side too: its log says why it refused
    if report.when == "call" and report.failed:
        for title, text in interop_charon.report_sections():
            report.sections.append((title, text))


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("PYRACOON_INTEROP_RESULTS")
    if out and _results:
        rows = sorted(_results, key=lambda r: json.dumps(r, sort_keys=True))
        Path(out).write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
