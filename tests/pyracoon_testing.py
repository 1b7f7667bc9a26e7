"""Helpers shared by every test package; conftest.py holds the fixtures that use them.

Not in conftest.py because several packages have a conftest.py and only one module can be
called ``conftest``.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass

from pyracoon.lab import program as tool  # one way to find our console scripts
from pyracoon.lab import wait_serving


@dataclass
class KernelProcess:
    """A running ``pyracoon-kernel --listen``; ``spec`` is what clients pass to ``--kernel``."""

    path: str
    proc: subprocess.Popen

    @property
    def spec(self) -> str:
        return f"unix:{self.path}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_kernel(path: str, *extra: str) -> KernelProcess:
    proc = subprocess.Popen(
        [tool("pyracoon-kernel"), "--listen", path, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if not wait_serving(path, proc):
        proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(f"pyracoon-kernel did not start: {err}")
    return KernelProcess(path, proc)
