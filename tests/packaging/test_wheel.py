"""What a user who only ``pip install``s gets: the wheel carries conf/, rc.d/ and the docs, and
``pyracoon-files`` prints and installs them from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyracoon import files

TOP = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("wheel")
    # from a clean copy of the source: a build/ left in the checkout would leak into the wheel
    src = tmp_path_factory.mktemp("src") / "pyracoon"
    shutil.copytree(TOP, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    (found,) = out.glob("pyracoon-*.whl")
    yield found


def test_the_wheel_carries_the_sample_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in files.shared_files(TOP):
        assert f"pyracoon/share/{name}" in names, name
    for must in ("conf/racoon.conf", "conf/ipsec.conf.host1", "rc.d/racoon.sh",
                 "rc.d/pyipsec.sh", "rc.d/pyracoon.service", "docs/memo.md", "README.md"):
        assert f"pyracoon/share/{must}" in names, must  # fmt: skip
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "pyracoon-files = pyracoon.files:main" in zipfile.ZipFile(wheel).read(
        entry_points
    ).decode()


def test_pyracoon_files_from_an_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    """Unpacked as pip would install it (no checkout beside it): list, show, install."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = dict(os.environ, PYTHONPATH=str(site))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pyracoon.files", *args], env=env, cwd=tmp_path,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    assert run("path").stdout.strip() == str(site / "pyracoon" / "share")
    assert "conf/racoon.conf" in run("list").stdout.splitlines()
    shown = run("show", "conf/racoon.conf")
    assert shown.stdout == (TOP / "conf" / "racoon.conf").read_text()
    missing = run("show", "conf/nothing.conf")
    assert missing.returncode == 1 and "no such file: conf/nothing.conf" in missing.stderr
    target = tmp_path / "etc"
    done = run("install", str(target))
    assert done.returncode == 0, done.stderr
    assert (target / "conf" / "ipsec.conf.host1").read_text() == (
        TOP / "conf" / "ipsec.conf.host1"
    ).read_text()
    bindir = Path(sys.executable).parent
    racoon_sh = (target / "rc.d" / "racoon.sh").read_text()
    assert f'installed_pyracoon="{bindir / "pyracoon"}"' in racoon_sh
    assert f'installed_pysetkey="{bindir / "pysetkey"}"' in (
        target / "rc.d" / "pyipsec.sh"
    ).read_text()
    assert f"ExecStart={bindir / 'pyracoon'} " in (target / "rc.d" / "pyracoon.service").read_text()
    assert os.access(target / "rc.d" / "racoon.sh", os.X_OK)
    again = run("install", str(target))
    assert again.returncode == 1 and "nothing was copied" in again.stderr


def test_an_installed_rc_script_runs_the_installing_environments_program(tmp_path: Path) -> None:
    """PATH without the venv, no settings: the copy knows where its pysetkey is."""
    files.install(tmp_path / "etc")
    out = subprocess.run(
        ["sh", str(tmp_path / "etc" / "rc.d" / "pyipsec.sh"), "status"],
        env={"PATH": "/usr/bin:/bin", "RC_CONF": "/nonexistent", "PYRACOON_KERNEL": "unix:/none"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # it ran pysetkey (which then found no kernel), rather than failing to find pysetkey
    assert "no simulated kernel at /none" in out.stderr, out.stderr
