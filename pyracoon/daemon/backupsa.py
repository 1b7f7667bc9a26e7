"""``path backupsa``: a record of every SA pyracoon installs, to restore them after a crash.

racoon appends one line per UPDATE and ADD it sends, and ``racoon -B`` reads them back -- but
0.8.2 reads the file before it has parsed the configuration, so the path is still unset and the
restore always fails (racoon's backupsa.c; the memo: "with backupsa, things still go wrong
after a restart"). This module keeps racoon's line format, so existing files stay readable, and
the daemon calls ``restore`` *after* the configuration is parsed.

A line::

    Mon DD HH:MM:SS YYYY%SRC DST SATYPE SPI MODE REQID WSIZE E_TYPE E_KEYLEN A_TYPE A_KEYLEN
    FLAGS L_ALLOC L_BYTES L_ADDTIME L_USETIME SEQ KEYMAT

(on one line): local time as strftime ``%b %d %T %Y``, numeric addresses, decimal numbers, the
SPI in host order, key lengths in bytes, SADB algorithm ids, and KEYMAT -- the encryption key
then the authentication key -- in hex with a space after every 8 bytes. ``#`` starts a comment.

The file holds keys: it is created 0600 and refused when group or others may read it. A clean
shutdown truncates it, because the SAs it lists are flushed then.

racoon's file only grows (two lines per rekey), so ``racoon -B`` puts back SAs that were
deleted long ago and whose lifetime has not run out, and traffic goes to stale SPIs. pyracoon
appends a tombstone when an SA it installed is deleted or hard-expires::

    #deleted SATYPE DST SPI

-- a comment to racoon, which skips ``#`` lines, so the file stays readable by it -- and
``restore`` drops every earlier line of that SA. When tombstones outnumber the live SAs the
file is rewritten with the live SAs only (atomically, 0600), so its size follows the SAs held,
and the rewrite costs O(1) per deletion on average.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pyracoon.engine.quick import soft_lifetime
from pyracoon.kernel import ops
from pyracoon.kernel.pfkey_codec import SadbNumbers, install_of_numbers, sadb_numbers, sadb_satype
from pyracoon.pki.certs import check_file_permission
from pyracoon.pki.errors import WeakFilePermissionError

TIME_FORMAT = "%b %d %H:%M:%S %Y"
TOMBSTONE = "#deleted"
"""Starts the line that says an SA recorded above has gone (the module says why)."""

SaKey = tuple[int, ipaddress.IPv4Address | ipaddress.IPv6Address, int]
"""(satype, destination, spi): how the kernel names an SA."""


class BackupError(Exception):
    """A backupsa line or file that cannot be used; says which line and why."""


@dataclass(frozen=True)
class BackupEntry:
    """One recorded SA."""

    created: float
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    satype: int
    spi: int
    mode: int
    reqid: int
    wsize: int
    e_type: int
    e_keylen: int
    a_type: int
    a_keylen: int
    flags: int
    l_alloc: int
    l_bytes: int
    l_addtime: int
    l_usetime: int
    seq: int
    keymat: bytes

    def format(self) -> str:
        when = time.strftime(TIME_FORMAT, time.localtime(self.created))
        hexmat = " ".join(self.keymat[i : i + 8].hex() for i in range(0, len(self.keymat), 8))
        fields = [
            self.src, self.dst, self.satype, self.spi, self.mode, self.reqid, self.wsize,
            self.e_type, self.e_keylen, self.a_type, self.a_keylen, self.flags, self.l_alloc,
            self.l_bytes, self.l_addtime, self.l_usetime, self.seq,
        ]  # fmt: skip
        return f"{when}%" + " ".join(str(f) for f in fields) + (f" {hexmat}" if hexmat else "")

    def add_request(self, remaining_addtime: int) -> ops.InstallSa:
        """The ADD that puts this SA back, with ``remaining_addtime`` seconds to live.

        ``BackupError`` when the line names an SA type, mode or algorithm this version does not
        know (a file written by another racoon).
        """
        hard = ops.Lifetime(self.l_alloc, self.l_bytes, remaining_addtime, self.l_usetime)
        soft = soft_lifetime(hard)
        numbers = SadbNumbers(self.satype, self.mode, self.e_type, self.a_type, self.flags)
        keys = (
            self.keymat[: self.e_keylen],
            self.keymat[self.e_keylen : self.e_keylen + self.a_keylen],
        )
        try:
            return install_of_numbers(
                numbers, self.seq, (self.spi, self.src, self.dst), self.reqid, self.wsize, keys,
                hard, soft,
            )  # fmt: skip
        except ValueError as e:
            raise BackupError(str(e)) from None


def sa_key(sa: ops.SaId) -> SaKey:
    """How this file names ``sa`` (its tombstones and its newest-line-wins rule)."""
    return (sadb_satype(sa.proto), sa.dst, sa.spi)


def entry_from_install(req: ops.InstallSa, created: float) -> BackupEntry:
    """The record of an UPDATE or ADD the daemon is about to send, in racoon's SADB numbers."""
    n = sadb_numbers(req)
    e, a, hard = req.enc_key, req.auth_key, req.hard
    return BackupEntry(
        created, req.sa.src, req.sa.dst, n.satype, req.sa.spi, n.mode, req.reqid, req.replay,
        n.encrypt, len(e), n.auth, len(a), n.flags, hard.allocations, hard.bytes, hard.addtime,
        hard.usetime, req.seq, e + a,
    )  # fmt: skip


def parse_line(line: str) -> BackupEntry:
    """One line back into an entry; ``BackupError`` says what is wrong with it."""
    when, sep, rest = line.partition("%")
    if not sep:
        raise BackupError("no '%' between the date and the SA")
    try:
        created = time.mktime(time.strptime(when.strip(), TIME_FORMAT))
    except ValueError:
        raise BackupError(
            f"bad date {when.strip()!r} (expected like 'Jan 25 16:24:59 2003')"
        ) from None
    words = rest.split()
    if len(words) < 17:
        raise BackupError(f"{len(words)} fields after the date, expected at least 17")
    try:
        src, dst = ipaddress.ip_address(words[0]), ipaddress.ip_address(words[1])
    except ValueError as e:
        raise BackupError(str(e)) from None
    try:
        nums = [int(w) for w in words[2:17]]
        keymat = bytes.fromhex("".join(words[17:]))
    except ValueError as e:
        raise BackupError(f"not a number or hex: {e}") from None
    (satype, spi, mode, reqid, wsize, e_type, e_keylen, a_type, a_keylen, flags, l_alloc,
     l_bytes, l_addtime, l_usetime, seq) = nums  # fmt: skip
    entry = BackupEntry(
        created, src, dst, satype, spi, mode, reqid, wsize, e_type, e_keylen, a_type, a_keylen,
        flags, l_alloc, l_bytes, l_addtime, l_usetime, seq, keymat,
    )  # fmt: skip
    if entry.e_keylen + entry.a_keylen != len(keymat):
        raise BackupError(
            f"KEYMAT has {len(keymat)} bytes, the key lengths say {entry.e_keylen + entry.a_keylen}"
        )
    if src.version != dst.version:
        raise BackupError("source and destination of different families")
    return entry


def check_permissions(path: str) -> None:
    """Refuse a backup file others could read: it holds every SA's keys."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise BackupError(f"{path} is not a regular file")
    try:
        check_file_permission(path, what="file of SA keys")
    except WeakFilePermissionError as e:
        raise BackupError(str(e)) from None


def append(path: str, entry: BackupEntry) -> None:
    """Add one line, creating the file 0600 if needed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        check_permissions(path)
        os.write(fd, (entry.format() + "\n").encode())
    finally:
        os.close(fd)


def forget(path: str, satype: int, dst: object, spi: int) -> None:
    """Append the tombstone of one SA: ``restore`` will not put it back."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        check_permissions(path)
        os.write(fd, f"{TOMBSTONE} {satype} {dst} {spi}\n".encode())
    finally:
        os.close(fd)


def parse_tombstone(line: str) -> SaKey:
    words = line.split()
    if len(words) != 4 or words[0] != TOMBSTONE:
        raise BackupError(f"a tombstone is '{TOMBSTONE} SATYPE DST SPI', not {line!r}")
    try:
        return int(words[1]), ipaddress.ip_address(words[2]), int(words[3])
    except ValueError as e:
        raise BackupError(f"bad tombstone: {e}") from None


@dataclass(frozen=True)
class _Line:
    """One meaningful line of the file, parsed once: an SA, a tombstone, or why it is bad."""

    number: int
    text: str
    entry: BackupEntry | None = None
    gone: SaKey | None = None
    error: BackupError | None = None


def _read(path: str) -> tuple[list[_Line], dict[SaKey, int]]:
    """Every line that is not blank or a plain comment, and for each SA the line number of its
    newest record not tombstoned after it (the newest line of an SA is the one that counts)."""
    lines: list[_Line] = []
    live: dict[SaKey, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            text = raw.strip()
            try:
                if text.startswith(TOMBSTONE + " "):
                    gone = parse_tombstone(text)
                    live.pop(gone, None)
                    lines.append(_Line(n, text, gone=gone))
                elif text and not text.startswith("#"):
                    e = parse_line(text)
                    live[(e.satype, e.dst, e.spi)] = n
                    lines.append(_Line(n, text, entry=e))
            except BackupError as err:
                lines.append(_Line(n, text, error=err))
    return lines, live


def compact(path: str, keep: Iterable[SaKey]) -> None:
    """Rewrite the file with the newest line of each SA in ``keep`` (the SAs alive now)."""
    check_permissions(path)
    records, live = _read(path)
    newest = {live[key] for key in keep if key in live}
    lines = [r.text for r in records if r.number in newest]
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".backupsa.", dir=directory)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def truncate(path: str) -> None:
    """Empty the file at a clean shutdown (its SAs have just been flushed)."""
    if os.path.exists(path):
        with open(path, "r+b") as f:
            f.truncate(0)


@dataclass(frozen=True)
class Restored:
    """The outcome for one line of the file."""

    line: int
    request: ops.InstallSa | None
    note: str


def restore(path: str, now: float) -> list[Restored]:
    """The ADD requests that put back every SA still alive at ``now``.

    Lines whose SA has expired, was deleted later (a tombstone) or was recorded again later
    are skipped; the others get their addtime reduced by the time elapsed since they were
    written. A bad line is reported and skipped; it does not stop the
    others (racoon: "errors are per line").
    """
    check_permissions(path)
    out: list[Restored] = []
    records, live = _read(path)
    newest = set(live.values())
    for r in records:
        n, e = r.number, r.entry
        if r.error is not None:
            out.append(Restored(n, None, f"{path}:{n}: {r.error}"))
        elif e is None:  # a tombstone: already applied
            continue
        elif n not in newest:
            out.append(Restored(n, None, f"{path}:{n}: SA spi={e.spi} was deleted later, skipped"))
        elif e.l_addtime and e.created + e.l_addtime <= now:
            out.append(Restored(n, None, f"{path}:{n}: SA spi={e.spi} expired, skipped"))
        else:
            elapsed = max(0, int(now - e.created))
            remaining = max(1, e.l_addtime - elapsed) if e.l_addtime else 0
            try:
                request = e.add_request(remaining)
            except BackupError as err:
                out.append(Restored(n, None, f"{path}:{n}: {err}"))
                continue
            out.append(Restored(n, request, f"{path}:{n}: restoring spi={e.spi}"))
    return out
