"""Fixtures shared by every test package: a simulated kernel served by a real subprocess."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyracoon_testing import KernelProcess, start_kernel


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: Unix socket paths must stay under 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="pyr") as d:
        yield Path(d)


@pytest.fixture
def kernel_server(short_tmp: Path) -> Iterator[KernelProcess]:
    """A simulated kernel in its own process, on the real clock."""
    k = start_kernel(str(short_tmp / "k.sock"))
    yield k
    k.stop()


@pytest.fixture
def manual_kernel_server(short_tmp: Path) -> Iterator[KernelProcess]:
    """A simulated kernel whose clock moves only with ``pyracoon-kernel advance``."""
    k = start_kernel(str(short_tmp / "k.sock"), "--manual-clock")
    yield k
    k.stop()
