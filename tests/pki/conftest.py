"""Fixtures for the pki tests: a root CA, an intermediate, host certificates and a CA directory."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from pki_factory import Issued, install, issue, key, name

from pyracoon.pki import CaDirectory, TrustStore


@pytest.fixture(scope="session")
def root() -> Issued:
    return issue(name(("C", "JP"), ("O", "Example CA")), ca=True, subject_key=key("root", "rsa"))


@pytest.fixture(scope="session")
def intermediate(root: Issued) -> Issued:
    return issue(
        name(("C", "JP"), ("O", "Example CA"), ("OU", "Hosts")),
        issuer=root,
        ca=True,
        subject_key=key("intermediate", "ec"),
    )


@pytest.fixture(scope="session")
def host(intermediate: Issued) -> Issued:
    return issue(
        name(("C", "JP"), ("O", "Example"), ("CN", "host1.example")),
        issuer=intermediate,
        key_usage={"digital_signature": True},
        san=[
            x509.DNSName("host1.example"),
            x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
        ],
        subject_key=key("host1", "rsa"),
    )


@pytest.fixture
def cert_dir(tmp_path: Path) -> Path:
    """An empty ``path certificate`` directory."""
    path = tmp_path / "cert"
    path.mkdir()
    return path


@pytest.fixture
def trust_root(cert_dir: Path, root: Issued) -> TrustStore:
    install(cert_dir, "cacert.pem", root)
    return TrustStore(CaDirectory(cert_dir))
