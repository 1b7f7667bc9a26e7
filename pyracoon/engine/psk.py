"""The pre-shared key file (``path pre_shared_key``), looked up as racoon's getpsk() does.

racoon.conf(5), pre_shared_key: one ``ID<whitespace>SECRET`` per line, the secret running to the end
of the line (spaces included), ``#`` lines are comments, a secret starting ``0x`` is hex, and the
Debian ``*`` entry matches anyone.  The file must belong to us and grant nothing to group or others,
else racoon logs ``X has weak file permission`` and the lookup fails.

racoon re-reads the file on every lookup, so an edited psk.txt needs no reload.  We keep that
behaviour without a read per negotiation: each lookup stats the file and reads it again only when
its inode, size, mtime, mode or owner changed (the permission and owner checks run again then,
so a ``chmod`` that makes it weak takes effect at the next lookup too).

Which keys are tried (the part that surprises people; racoon.conf(5), pre_shared_key): main mode
knows only the peer's IP address when it needs SKEYID (the ID is still encrypted), aggressive mode
tries the peer's ID value first and the address only if ``verify_identifier`` is off.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pyracoon.pki.certs import check_file_permission
from pyracoon.pki.errors import WeakFilePermissionError

from .errors import NoPreSharedKey


def parse_psk_line(line: str) -> tuple[str, bytes] | None:
    """``(id, secret)`` of one psk.txt line, or None for a comment / blank / key-only line."""
    text = line.rstrip("\r\n")
    stripped = text.lstrip()
    if not stripped or stripped.startswith("#"):
        return None
    parts = stripped.split(None, 1)
    if len(parts) < 2:
        return None
    ident, secret = parts[0], parts[1].lstrip(" \t")
    if secret.startswith("0x"):
        digits = secret[2:].strip()
        if len(digits) % 2:
            digits = "0" + digits
        try:
            return ident, bytes.fromhex(digits)
        except ValueError:
            return ident, secret.encode()
    return ident, secret.encode()


@dataclass(frozen=True)
class PskLookup:
    """The result of one lookup: the key (never logged), and what was tried, for the log."""

    key: bytes | None
    matched_id: str | None
    tried: tuple[str, ...]
    path: str


class PskSource(Protocol):
    """Where phase 1 looks pre-shared keys up: :class:`PskFile`, :class:`PskTable`, or a
    test's own source; only ``lookup`` is ever called."""

    def lookup(self, keys: Sequence[str]) -> PskLookup: ...


class PskFile:
    """psk.txt at ``path``; ``check_owner`` requires our uid as owner (racoon does)."""

    def __init__(self, path: str | os.PathLike[str], *, check_owner: bool = True) -> None:
        self.path = Path(path)
        self.check_owner = check_owner
        self._signature: tuple[int, ...] | None = None
        self._cached: list[tuple[str, bytes]] = []
        #: How often the file was actually read (for the test of the stat-and-reload).
        self.reads = 0

    def _entries(self) -> list[tuple[str, bytes]]:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            self._signature = None
            raise NoPreSharedKey(
                f"failed to open pre_share_key file {self.path}", details=(str(exc),)
            ) from None
        signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid)
        if signature == self._signature:
            return self._cached
        self._signature = None
        entries = self._read()
        self._signature, self._cached = signature, entries
        return entries

    def _read(self) -> list[tuple[str, bytes]]:
        self.reads += 1
        try:
            check_file_permission(self.path, what="pre-shared key file")
        except WeakFilePermissionError as exc:
            raise NoPreSharedKey(
                f"{self.path} has weak file permission", details=(str(exc),)
            ) from None
        except OSError as exc:
            raise NoPreSharedKey(
                f"failed to open pre_share_key file {self.path}", details=(str(exc),)
            ) from None
        if self.check_owner and self.path.stat().st_uid != os.getuid():
            raise NoPreSharedKey(
                f"{self.path} has invalid owner uid",
                details=(f"chown {os.getuid()} {self.path}: it must belong to the daemon's user",),
            )
        out = []
        for line in self.path.read_text(errors="surrogateescape").splitlines():
            entry = parse_psk_line(line)
            if entry is not None:
                out.append(entry)
        return out

    def lookup(self, keys: Sequence[str]) -> PskLookup:
        """The secret of the first of ``keys`` present, then of a ``*`` entry."""
        entries = self._entries()
        for key in (*keys, "*"):
            for ident, secret in entries:
                if ident == key:
                    return PskLookup(secret, ident, tuple(keys), str(self.path))
        return PskLookup(None, None, tuple(keys), str(self.path))


class PskTable:
    """An in-memory psk.txt (tests, or a daemon that already read the file)."""

    def __init__(self, entries: dict[str, bytes | str], path: str = "<memory>") -> None:
        self.entries = {k: v.encode() if isinstance(v, str) else v for k, v in entries.items()}
        self.path = path

    def lookup(self, keys: Sequence[str]) -> PskLookup:
        """The secret of the first of ``keys`` present, then of a ``*`` entry."""
        for key in (*keys, "*"):
            if key in self.entries:
                return PskLookup(self.entries[key], key, tuple(keys), self.path)
        return PskLookup(None, None, tuple(keys), self.path)
