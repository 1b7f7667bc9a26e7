"""backupsa: racoon's line format, a restore that really works, and the file's permissions."""

from __future__ import annotations

import ipaddress
import os
import time

import pytest

from pyracoon.crypto.algorithms import auth_by_sadb_id, cipher_by_sadb_id
from pyracoon.daemon.backupsa import (
    BackupError,
    append,
    compact,
    entry_from_install,
    forget,
    parse_line,
    restore,
    truncate,
)
from pyracoon.kernel import ops
from pyracoon.kernel.memory import InMemoryKernel
from pyracoon.kernel.sadb import AuthAlg, EncAlg, SaType

T0 = time.mktime((2003, 1, 25, 16, 24, 59, 0, 0, -1))


def update(spi=0x0FC56D0A, addtime=180) -> ops.InstallSa:
    return ops.InstallSa(
        7,
        True,
        ops.SaId(
            ops.Proto.ESP,
            spi,
            ipaddress.ip_address("2001:240:7:100::1:6"),
            ipaddress.ip_address("2001:240:7:101:260:1dff:fef2:7648"),
        ),
        ops.Mode.TRANSPORT,
        0,
        4,
        cipher_by_sadb_id(EncAlg.THREEDESCBC),
        bytes(range(24)),
        auth_by_sadb_id(AuthAlg.SHA1HMAC),
        bytes(range(100, 120)),
        hard=ops.Lifetime(addtime=addtime),
    )


def test_line_layout_is_racoons():
    line = entry_from_install(update(), T0).format()
    assert line.startswith(
        "Jan 25 16:24:59 2003%2001:240:7:100::1:6 2001:240:7:101:260:1dff:fef2:7648 "
        "3 264596746 1 0 4 3 24 3 20 0 0 0 180 0 7 0001020304050607 08090a0b0c0d0e0f "
    )
    assert line.endswith(" 1011121314151617 6465666768696a6b 6c6d6e6f70717273 74757677")
    back = parse_line(line)
    assert back == entry_from_install(update(), T0)


def test_restore_reduces_lifetime_skips_expired_and_bad_lines(tmp_path):
    path = str(tmp_path / "backupsa")
    append(path, entry_from_install(update(0x1001, 180), T0))
    append(path, entry_from_install(update(0x1002, 30), T0))
    with open(path, "a") as f:
        f.write("# a comment\nJan 99 junk%1 2 3\n")
    assert os.stat(path).st_mode & 0o777 == 0o600
    results = restore(path, T0 + 60)
    assert [r.line for r in results] == [1, 2, 4]
    first = results[0].request
    assert not first.update and first.sa.spi == 0x1001
    assert first.hard.addtime == 120
    assert first.soft.addtime == 96
    assert results[1].request is None and "expired" in results[1].note
    assert results[2].request is None and ":4: bad date" in results[2].note

    kernel = InMemoryKernel(lambda: T0 + 60)
    sock = kernel.open()
    assert sock.call(first).errno == 0
    got = kernel.sad[(SaType.ESP, first.sa.dst, 0x1001)]
    assert got.key_encrypt.key == bytes(range(24)) and got.key_auth.key == bytes(range(100, 120))


def test_weak_permissions_are_refused(tmp_path):
    path = tmp_path / "backupsa"
    path.write_text("")
    path.chmod(0o644)
    with pytest.raises(BackupError, match="weak file permission: mode 0644"):
        restore(str(path), T0)
    with pytest.raises(BackupError, match="chmod 600"):
        append(str(path), entry_from_install(update(), T0))


def test_truncate_empties_the_file(tmp_path):
    path = str(tmp_path / "backupsa")
    append(path, entry_from_install(update(), T0))
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


DST = ipaddress.ip_address("2001:240:7:101:260:1dff:fef2:7648")


def test_a_tombstone_keeps_a_deleted_sa_from_coming_back(tmp_path):
    """racoon -B restores every SA ever recorded that is still within its lifetime; a rekey's
    old SAs then come back with stale SPIs. The tombstone (a comment to racoon) stops that."""
    path = str(tmp_path / "backupsa")
    append(path, entry_from_install(update(0x1001, 600), T0))
    append(path, entry_from_install(update(0x1002, 600), T0 + 10))
    forget(path, SaType.ESP, DST, 0x1001)
    assert open(path).read().splitlines()[-1] == f"#deleted 3 {DST} {0x1001}"
    results = restore(path, T0 + 60)
    assert [(r.line, r.request is not None) for r in results] == [(1, False), (2, True)]
    assert "spi=4097 was deleted later, skipped" in results[0].note
    assert results[1].request.sa.spi == 0x1002
    # the same SPI installed again after its tombstone is restored
    append(path, entry_from_install(update(0x1001, 600), T0 + 20))
    assert sorted(r.request.sa.spi for r in restore(path, T0 + 60) if r.request) == [
        0x1001,
        0x1002,
    ]


def test_only_the_newest_line_of_an_sa_counts(tmp_path):
    path = str(tmp_path / "backupsa")
    append(path, entry_from_install(update(0x1001, 100), T0))
    append(path, entry_from_install(update(0x1001, 600), T0 + 30))
    results = restore(path, T0 + 60)
    assert [r.request is not None for r in results] == [False, True]
    assert results[1].request.hard.addtime == 570


def test_compact_keeps_the_live_sas_only_and_stays_private(tmp_path):
    path = str(tmp_path / "backupsa")
    for spi in range(0x2000, 0x2010):
        append(path, entry_from_install(update(spi, 600), T0))
    for spi in range(0x2000, 0x200C):
        forget(path, SaType.ESP, DST, spi)
    live = [(SaType.ESP, DST, spi) for spi in range(0x200C, 0x2010)]
    compact(path, live)
    lines = open(path).read().splitlines()
    assert len(lines) == 4 and not any(line.startswith("#") for line in lines)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert [r.request.sa.spi for r in restore(path, T0 + 1)] == list(range(0x200C, 0x2010))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".backupsa.")]


def test_a_bad_tombstone_is_reported_not_fatal(tmp_path):
    path = str(tmp_path / "backupsa")
    append(path, entry_from_install(update(0x1001, 600), T0))
    with open(path, "a") as f:
        f.write("#deleted three ::1 x\n")
    results = restore(path, T0 + 1)
    assert results[0].request is not None
    assert results[1].request is None and ":2: bad tombstone" in results[1].note


def test_the_daemon_rewrites_the_file_when_tombstones_outnumber_live_sas(tmp_path):
    """Daemon._backup_forget: a tombstone per deletion, a rewrite once they pass the live SAs
    (and 64), so the file follows the SAs held instead of growing by two lines a rekey."""
    from types import SimpleNamespace

    from pyracoon.daemon.service import Daemon

    path = str(tmp_path / "backupsa")
    daemon = SimpleNamespace(
        config=SimpleNamespace(paths=SimpleNamespace(backupsa=path)),
        installed={},
        log=SimpleNamespace(error=lambda text: pytest.fail(text)),
        _backup_tombstones=0,
    )
    for spi in range(1, 201):  # 200 rekeys: each installs one SA and deletes the one before
        append(path, entry_from_install(update(spi, 600), T0))
        daemon.installed[(SaType.ESP, DST, spi)] = object()
        if spi > 1:
            del daemon.installed[(SaType.ESP, DST, spi - 1)]
            Daemon._backup_forget(daemon, (SaType.ESP, DST, spi - 1))
    lines = open(path).read().splitlines()
    assert len(lines) <= 2 * 65 + 2
    assert [r.request.sa.spi for r in restore(path, T0 + 1) if r.request] == [200]
