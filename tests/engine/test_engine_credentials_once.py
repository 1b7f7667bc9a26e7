"""Start-up reads each certificate and key once: the daemon's checks load the engine's
``Credentials`` and hand them over, instead of the engine reading every file again."""

from __future__ import annotations

from pathlib import Path

import pytest
from certs import build_pki
from test_engine_failures import A, B, certconf

import pyracoon.engine.credentials as credentials_module
from pyracoon.config import parse_string
from pyracoon.daemon.cli import StartupError, check_key_files
from pyracoon.engine import Engine


def _counting_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every certificate and key file the credentials module opens, in order."""
    opened: list[str] = []
    real_cert, real_key = credentials_module.load_certificate, credentials_module.load_private_key

    def cert(path: str) -> object:
        opened.append(str(path))
        return real_cert(path)

    def key(path: str) -> object:
        opened.append(str(path))
        return real_key(path)

    monkeypatch.setattr(credentials_module, "load_certificate", cert)
    monkeypatch.setattr(credentials_module, "load_private_key", key)
    return opened


def test_start_up_checks_and_engine_share_one_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    config = parse_string(certconf(B, A, d))
    opened = _counting_loads(monkeypatch)
    creds = check_key_files(config)
    engine = Engine(config, credentials=creds)
    assert engine.settings.credentials is creds
    assert sorted(opened) == sorted({str(d / f"{A}.pem"), str(d / f"{A}.key")})


def test_engine_without_credentials_still_loads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    opened = _counting_loads(monkeypatch)
    Engine(parse_string(certconf(B, A, d)))
    assert str(d / f"{A}.key") in opened


def test_key_of_another_certificate_stops_the_start(tmp_path: Path) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    (d / f"{A}.key").write_bytes((d / f"{B}.key").read_bytes())
    with pytest.raises(StartupError) as caught:
        check_key_files(parse_string(certconf(B, A, d)))
    assert str(caught.value).startswith(
        f"remote {B}[500]: private key {d / f'{A}.key'} does not belong to certificate "
        f"{d / f'{A}.pem'}"
    )


def test_credentials_of_another_configuration_are_refused(tmp_path: Path) -> None:
    d = build_pki(tmp_path / "pki", {A: A, B: B})
    creds = check_key_files(parse_string(certconf(B, A, d)))
    with pytest.raises(ValueError, match="not those of its config"):
        Engine(parse_string(certconf(B, A, d)), credentials=creds)
