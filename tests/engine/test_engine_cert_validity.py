"""Our own certificate's validity is checked at start and reload: the owner hears of an expired
(or not yet valid, or soon expiring) certificate from us, not only from a peer's refusal."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from certs import NOT_BEFORE, build_pki
from test_engine_failures import A, B, certconf

from pyracoon.config import parse_string
from pyracoon.engine import Engine, LogEvent, PskTable
from pyracoon.engine.events import Level

END = NOT_BEFORE + timedelta(days=3650)  # certs.py's certificates end then


def warnings_at(tmp_path: Path, when: datetime, *, reload: bool = False) -> list[str]:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    config = parse_string(certconf(B, A, d))
    engine = Engine(config, psk=PskTable({}), wall_clock=lambda now: when)
    if reload:
        engine.start(0.0)
        engine.events()
        engine.reload(config, 1.0)
    else:
        engine.start(0.0)
    return [e.text for e in engine.events() if isinstance(e, LogEvent) and e.level == Level.WARNING]


def test_a_valid_certificate_says_nothing(tmp_path: Path) -> None:
    assert warnings_at(tmp_path, NOT_BEFORE + timedelta(days=400)) == []


@pytest.mark.parametrize("reload", [False, True])
def test_an_expired_certificate_is_a_warning_at_start_and_reload(
    tmp_path: Path, reload: bool
) -> None:
    (line,) = warnings_at(tmp_path, END + timedelta(days=1), reload=reload)
    assert line == (
        f"our certificate {tmp_path / 'pki' / (A + '.pem')} expired on "
        f"{END:%Y-%m-%d %H:%M:%S} UTC: peers will refuse it (INVALID-CERT-AUTHORITY or "
        "AUTHENTICATION-FAILED); renew it"
    )


def test_a_certificate_not_yet_valid_points_at_the_clock(tmp_path: Path) -> None:
    (line,) = warnings_at(tmp_path, NOT_BEFORE - timedelta(days=1))
    assert "is not valid before 2026-01-01 00:00:00 UTC" in line
    assert "is this host's clock right?" in line


def test_a_certificate_about_to_expire_is_announced(tmp_path: Path) -> None:
    (line,) = warnings_at(tmp_path, END - timedelta(days=10, hours=1))
    assert line.endswith("in 10 day(s): renew it before then")
