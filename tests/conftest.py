"""Fixtures shared by every test package: a simulated kernel served by a real subprocess."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """The path of one of our console scripts in the venv running the tests."""
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or name


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


def _accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        try:
            s.connect(path)
        except OSError:
            return False
        return True


def start_kernel(path: str, *extra: str) -> KernelProcess:
    proc = subprocess.Popen(
        [tool("pyracoon-kernel"), "--listen", path, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 15
    while not _accepts(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise RuntimeError(f"pyracoon-kernel did not start: {err}")
        time.sleep(0.02)
    return KernelProcess(path, proc)


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
