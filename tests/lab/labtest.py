"""What the kernel-lab tests share besides fixtures."""

from __future__ import annotations

import os

import pytest

#: In CI user-mode-linux is installed and we are root: an absent lab is a failure there.
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def lab_unavailable(reason: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"kernel lab prerequisite missing in CI: {reason}")
    pytest.skip(reason)
