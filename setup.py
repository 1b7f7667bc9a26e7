"""Build step that pyproject.toml cannot say: ship the repository's conf/, rc.d/ and docs/.

They live at the top of the checkout, where the README and the tests name them, and outside
the ``pyracoon`` package, which is all setuptools would put in a wheel. A user who only
``pip install``s still needs the memo's configurations, the rc scripts and the documents they
cite, so ``build_py`` copies them into the wheel as ``pyracoon/share/`` (read at run time by
``pyracoon.files`` and ``pyracoon-files``). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TOP = Path(__file__).resolve().parent
SHARED = ("conf", "rc.d", "docs", "README.md")


class BuildPyWithShare(build_py):
    """``build_py``, then the shared files under ``pyracoon/share`` in the build tree."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "pyracoon" / "share"
        for name in SHARED:
            source = TOP / name
            if source.is_dir():
                shutil.copytree(
                    source, target / name, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            elif source.exists():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithShare})
