"""Fixtures of the kernel-lab suite: a real Linux kernel (user-mode-linux) with hosts in it.

Every test here is marked ``lab``. Without ``linux.uml`` or root the tests skip with the reason;
with ``CI`` set they fail instead, because ``.ci/run`` installs user-mode-linux and runs as root,
so an absent lab there means the proof silently shrank.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labtest import lab_unavailable

from pyracoon.kernellab import KernelLab, LabError, unavailable_reason


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.lab)


@pytest.fixture
def lab() -> Iterator[KernelLab]:
    """A freshly booted lab kernel; powered off after the test whatever happened."""
    reason = unavailable_reason()
    if reason:
        lab_unavailable(reason)
    k = KernelLab()
    try:
        k.boot()
    except LabError as e:
        lab_unavailable(str(e))
    try:
        yield k
    finally:
        k.stop_all()
        k.close()
