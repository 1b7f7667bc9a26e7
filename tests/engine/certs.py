"""A tiny PKI for the rsasig tests: one CA, host certificates, a hashed CA directory."""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pyracoon.pki import CaDirectory

NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)


@cache
def rsa_key(label: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str, org: str = "Example") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_cert(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    san: list[str] = (),
) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    if san:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(a)) for a in san]),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def build_pki(
    directory: Path, hosts: dict[str, str], *, ca_name: str = "Example CA", link_ca: bool = True
) -> Path:
    """``directory`` gets cacert.pem (hash-linked), and NAME.pem / NAME.key per host.

    ``hosts`` maps a file name to the host's IP address (put in the subjectAltName).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = rsa_key("ca:" + ca_name)
    ca_subject = _name(ca_name, "Example CA")
    ca = make_cert(ca_subject, ca_key, ca_subject, ca_key, ca=True)
    (directory / "cacert.pem").write_bytes(_pem(ca))
    if link_ca:
        CaDirectory(directory).link("cacert.pem")
    for label, address in hosts.items():
        k = rsa_key("host:" + label)
        cert = make_cert(_name(label), k, ca_subject, ca_key, ca=False, san=[address])
        (directory / f"{label}.pem").write_bytes(_pem(cert))
        key_path = directory / f"{label}.key"
        key_path.write_bytes(
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        os.chmod(key_path, 0o600)
    return directory
