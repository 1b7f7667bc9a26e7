"""``pyracoon-files``: the sample configurations, rc scripts and documents that come with pyracoon.

A checkout has them at its top (``conf/``, ``rc.d/``, ``docs/``, ``README.md``); a wheel
carries copies as ``pyracoon/share/`` (``setup.py`` puts them there), because a user who only
``pip install``s has no checkout to copy the memo's racoon.conf or the rc scripts from. This
module finds them in either place, and the command prints or installs them::

    pyracoon-files list                  every file, one relative name a line
    pyracoon-files show conf/racoon.conf one file on stdout
    pyracoon-files path                  the directory they are in
    pyracoon-files install DIR           copy them all into DIR (refusing to overwrite)

``install`` writes the absolute path of this installation's ``pyracoon`` and ``pysetkey`` into
the copied rc scripts and systemd unit, so that they run the programs of the environment that
installed them, whatever ``$PATH`` says at boot.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SHARED = ("conf", "rc.d", "docs", "README.md")
BIN = Path(sys.executable).parent


class FilesError(Exception):
    """A request ``pyracoon-files`` cannot carry out; the message is for a person."""


def share_root() -> Path:
    """Where the shared files are: the wheel's ``pyracoon/share``, else the checkout's top."""
    for root in (PACKAGE / "share", PACKAGE.parent):
        if (root / "conf" / "racoon.conf").is_file() and (root / "rc.d").is_dir():
            return root
    raise FilesError(
        f"the sample files are missing from this installation (looked in {PACKAGE / 'share'} "
        f"and {PACKAGE.parent}); reinstall pyracoon from its wheel or a checkout"
    )


def shared_files(root: Path | None = None) -> Iterator[Path]:
    """Every shared file, relative to the root, in a stable order."""
    root = root or share_root()
    for name in SHARED:
        top = root / name
        if top.is_file():
            yield Path(name)
        elif top.is_dir():
            for path in sorted(top.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    yield path.relative_to(root)


def read(name: str) -> bytes:
    """One shared file by its relative name (``conf/racoon.conf``)."""
    root = share_root()
    wanted = Path(name)
    if wanted not in set(shared_files(root)):
        raise FilesError(f"no such file: {name} ('pyracoon-files list' shows them)")
    return (root / wanted).read_bytes()


def _installed(relative: Path, data: bytes) -> bytes:
    """The copy ``install`` writes: rc scripts and the unit name this installation's programs."""
    if relative.parts[0] != "rc.d":
        return data
    text = data.decode()
    text = text.replace('installed_pyracoon=""', f'installed_pyracoon="{BIN / "pyracoon"}"')
    text = text.replace('installed_pysetkey=""', f'installed_pysetkey="{BIN / "pysetkey"}"')
    text = text.replace("ExecStart=/usr/local/bin/pyracoon ", f"ExecStart={BIN / 'pyracoon'} ")
    return text.encode()


def install(target: Path) -> list[Path]:
    """Copy every shared file under ``target``; nothing is overwritten (all checked first)."""
    root = share_root()
    names = list(shared_files(root))
    clash = [n for n in names if (target / n).exists()]
    if clash:
        raise FilesError(
            f"{target / clash[0]} exists ({len(clash)} of the files do); nothing was copied: "
            "choose an empty directory"
        )
    written = []
    for name in names:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(_installed(name, (root / name).read_bytes()))
        # a wheel keeps no file modes: scripts are made executable here, the rest read-only
        dest.chmod(0o755 if name.suffix == ".sh" else 0o644)
        written.append(dest)
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyracoon-files",
        description="Print or install pyracoon's sample configurations (the memo's conf/), "
        "rc scripts (rc.d/) and documents (docs/, README.md).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the files")
    sub.add_parser("path", help="print the directory they are in")
    show = sub.add_parser("show", help="print one file")
    show.add_argument("name", help="as 'list' prints it, e.g. conf/racoon.conf")
    inst = sub.add_parser("install", help="copy them all into DIR")
    inst.add_argument("dir", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            for name in shared_files():
                print(name)
        elif args.command == "path":
            print(share_root())
        elif args.command == "show":
            sys.stdout.flush()
            sys.stdout.buffer.write(read(args.name))
        else:
            written = install(args.dir)
            print(f"pyracoon-files: {len(written)} files installed under {args.dir}")
    except (FilesError, OSError) as e:
        print(f"pyracoon-files: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
