"""backupsa: racoon's line format, a restore that really works, and the file's permissions."""

from __future__ import annotations

import ipaddress
import os
import time

import pytest

from pyracoon.daemon.backupsa import (
    BackupError,
    append,
    entry_from_message,
    parse_line,
    restore,
    truncate,
)
from pyracoon.kernel.memory import InMemoryKernel
from pyracoon.kernel.pfkey import SA, SA2, Address, Key, Lifetime, Message
from pyracoon.kernel.sadb import AuthAlg, EncAlg, ExtType, MsgType, SaType

T0 = time.mktime((2003, 1, 25, 16, 24, 59, 0, 0, -1))


def update(spi=0x0FC56D0A, addtime=180) -> Message:
    m = Message(MsgType.UPDATE, SaType.ESP, seq=7)
    m.add(SA(spi, 4, 0, AuthAlg.SHA1HMAC, EncAlg.THREEDESCBC, 0))
    m.add(SA2(1, 0, 0))
    m.add(Address(ExtType.ADDRESS_SRC, ipaddress.ip_address("2001:240:7:100::1:6")))
    m.add(Address(ExtType.ADDRESS_DST, ipaddress.ip_address("2001:240:7:101:260:1dff:fef2:7648")))
    m.add(Key(ExtType.KEY_ENCRYPT, bytes(range(24))))
    m.add(Key(ExtType.KEY_AUTH, bytes(range(100, 120))))
    m.add(Lifetime(ExtType.LIFETIME_HARD, addtime=addtime))
    return m


def test_line_layout_is_racoons():
    line = entry_from_message(update(), T0).format()
    assert line.startswith(
        "Jan 25 16:24:59 2003%2001:240:7:100::1:6 2001:240:7:101:260:1dff:fef2:7648 "
        "3 264596746 1 0 4 3 24 3 20 0 0 0 180 0 7 0001020304050607 08090a0b0c0d0e0f "
    )
    assert line.endswith(" 1011121314151617 6465666768696a6b 6c6d6e6f70717273 74757677")
    back = parse_line(line)
    assert back == entry_from_message(update(), T0)


def test_restore_reduces_lifetime_skips_expired_and_bad_lines(tmp_path):
    path = str(tmp_path / "backupsa")
    append(path, entry_from_message(update(0x1001, 180), T0))
    append(path, entry_from_message(update(0x1002, 30), T0))
    with open(path, "a") as f:
        f.write("# a comment\nJan 99 junk%1 2 3\n")
    assert os.stat(path).st_mode & 0o777 == 0o600
    results = restore(path, T0 + 60)
    assert [r.line for r in results] == [1, 2, 4]
    first = results[0].message
    assert first.type == MsgType.ADD and first.sa.spi == 0x1001
    assert first.lifetime(ExtType.LIFETIME_HARD).addtime == 120
    assert first.lifetime(ExtType.LIFETIME_SOFT).addtime == 96
    assert results[1].message is None and "expired" in results[1].note
    assert results[2].message is None and ":4: bad date" in results[2].note

    kernel = InMemoryKernel(lambda: T0 + 60)
    sock = kernel.open()
    assert sock.request(first).errno == 0
    got = kernel.sad[(SaType.ESP, first.dst.addr, 0x1001)]
    assert got.key_encrypt.key == bytes(range(24)) and got.key_auth.key == bytes(range(100, 120))


def test_weak_permissions_are_refused(tmp_path):
    path = tmp_path / "backupsa"
    path.write_text("")
    path.chmod(0o644)
    with pytest.raises(BackupError, match="weak file permission: mode 0644"):
        restore(str(path), T0)
    with pytest.raises(BackupError, match="chmod 600"):
        append(str(path), entry_from_message(update(), T0))


def test_truncate_empties_the_file(tmp_path):
    path = str(tmp_path / "backupsa")
    append(path, entry_from_message(update(), T0))
    truncate(path)
    assert os.path.getsize(path) == 0
    assert restore(path, T0) == []


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("no percent sign", "no '%'"),
        ("Jan 25 16:24:59 2003%1.1.1.1 2.2.2.2 3", "fields after the date"),
        ("Jan 25 16:24:59 2003%1.1.1.1 ::2 " + "0 " * 15, "different families"),
        ("Jan 25 16:24:59 2003%1.1.1.1 2.2.2.2 " + "0 " * 6 + "5 " + "0 " * 8, "KEYMAT has 0"),
        ("Jan 25 16:24:59 2003%1.1.1.1 2.2.2.2 " + "x " * 15, "not a number"),
    ],
)
def test_bad_lines_say_why(line, why):
    with pytest.raises(BackupError, match=why):
        parse_line(line)
