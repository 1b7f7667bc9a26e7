"""Builders for test PKIs: keys, CAs, intermediates, host certificates, and names of any encoding.

Keys are cached per label so a test run generates only a handful of RSA keys. ``with_raw_subject``
splices an arbitrary DER Name into a certificate (the signature no longer matches, which is fine
for ``openssl x509 -hash``): cryptography's Name builder cannot express every string type or an
unsorted multi-valued RDN, and the hash tests need exactly those.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from pyracoon.pki.der import children, encode_tlv, read_tlv

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
OPENSSL = shutil.which("openssl")

_KEYS: dict[str, object] = {}


def key(label: str, kind: str = "ec"):
    """A private key, cached by label ("rsa" keys are 2048-bit, "ec" P-256, "ed25519")."""
    cache_key = f"{kind}:{label}"
    if cache_key not in _KEYS:
        if kind == "rsa":
            _KEYS[cache_key] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "ec":
            _KEYS[cache_key] = ec.generate_private_key(ec.SECP256R1())
        elif kind == "ed25519":
            _KEYS[cache_key] = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(kind)
    return _KEYS[cache_key]


def name(*pairs: tuple[str, str]) -> x509.Name:
    """``name(("C", "JP"), ("O", "Example CA"))``."""
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "L": NameOID.LOCALITY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "CN": NameOID.COMMON_NAME,
        "emailAddress": NameOID.EMAIL_ADDRESS,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in pairs])


@dataclass
class Issued:
    cert: x509.Certificate
    key: object

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL
            if isinstance(self.key, rsa.RSAPrivateKey)
            else serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def issue(
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    subject_key=None,
    ca: bool = False,
    path_length: int | None = None,
    not_before: datetime = NOW - timedelta(days=30),
    not_after: datetime = NOW + timedelta(days=365),
    key_usage: dict[str, bool] | None = None,
    basic_constraints: bool = True,
    san: list[x509.GeneralName] | None = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    pss: bool = False,
    extra_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    key_ids: bool = True,
    serial: int | None = None,
) -> Issued:
    """Issue a certificate; ``issuer=None`` makes it self-signed. The hash defaults to SHA-256."""
    hash_algorithm = hash_algorithm or hashes.SHA256()
    subject_key = subject_key if subject_key is not None else key(subject.rfc4514_string())
    signer_key = issuer.key if issuer else subject_key
    issuer_name = issuer.cert.subject if issuer else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(subject_key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if key_usage is None and ca:
        key_usage = {"key_cert_sign": True, "crl_sign": True}
    if key_usage is not None:
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
            ),
            False,
        )
        flags.update(key_usage)
        builder = builder.add_extension(
            x509.KeyUsage(**flags, encipher_only=False, decipher_only=False), critical=True
        )
    if key_ids:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    for ext, critical in extra_extensions:
        builder = builder.add_extension(ext, critical=critical)
    if isinstance(signer_key, ed25519.Ed25519PrivateKey):
        cert = builder.sign(signer_key, None)
    elif pss:
        cert = builder.sign(
            signer_key,
            hash_algorithm,
            rsa_padding=padding.PSS(
                mgf=padding.MGF1(hash_algorithm), salt_length=padding.PSS.DIGEST_LENGTH
            ),
        )
    else:
        cert = builder.sign(signer_key, hash_algorithm)
    return Issued(cert, subject_key)


def with_raw_subject(cert: x509.Certificate, subject_der: bytes) -> bytes:
    """DER of ``cert`` with its subject replaced by ``subject_der`` (signature left stale)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    outer = read_tlv(der)
    tbs, sig_alg, sig = children(outer)
    fields = children(tbs)
    index = 1 if fields[0].tag == 0xA0 else 0
    parts = [f.raw for f in fields]
    parts[index + 4] = subject_der
    new_tbs = encode_tlv(0x30, b"".join(parts))
    return encode_tlv(0x30, new_tbs + sig_alg.raw + sig.raw)


def openssl_hash(path: Path, *, old: bool = False, inform: str = "PEM") -> str:
    assert OPENSSL is not None
    option = "-subject_hash_old" if old else "-hash"
    out = subprocess.run(
        [OPENSSL, "x509", "-inform", inform, "-noout", option, "-in", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def openssl_link(ca_dir: Path, filename: str) -> Path:
    """The memo's ``ln -s cacert.pem `openssl x509 -noout -hash -in cacert.pem`.0`` (next free
    index on a collision, like c_rehash)."""
    digest = openssl_hash(ca_dir / filename)
    index = 0
    while (ca_dir / f"{digest}.{index}").is_symlink():
        index += 1
    link = ca_dir / f"{digest}.{index}"
    link.symlink_to(filename)
    return link


def install(directory: Path, filename: str, issued: Issued) -> Path:
    """Write a CA certificate into a CA directory and link it under its hash (our helper)."""
    from pyracoon.pki import CaDirectory

    path = directory / filename
    path.write_bytes(issued.pem)
    CaDirectory(directory).link(filename)
    return path


def chmod(path: Path, mode: int) -> Path:
    os.chmod(path, mode)
    return path
