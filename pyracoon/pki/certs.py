"""Reading certificates and private keys from files, and the permission check on secrets.

racoon.conf names them with ``certificate_type x509 "host_cert.pem" "host_priv.pem"``,
``ca_type x509 "cacert.pem"`` and ``peers_certfile x509 "peer.pem"``; relative names are taken
under ``path certificate``. Files may be PEM or DER. The memo's operator reused Apache's
``server.key`` and had to strip its passphrase first: racoon has nobody to ask for one, so an
encrypted key is refused with the command that fixes it, instead of a bare decode error. A key file
that group or others can read is refused the way racoon refuses such a psk.txt ("... has weak
file permission"), with the mode and the fix in the message.

This is the only module of :mod:`pyracoon.pki` that reads files (plus the CA directory lookup in
:mod:`pyracoon.pki.cadir`); everything else works on bytes and objects.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from .der import DerError, tbs_issuer_and_subject
from .errors import (
    CertificateLoadError,
    EncryptedPrivateKeyError,
    PrivateKeyLoadError,
    WeakFilePermissionError,
)
from .name import DistinguishedName

#: Permission bits a secret file must not have: any access by group or others (as racoon).
WEAK_PERMISSION_BITS = stat.S_IRWXG | stat.S_IRWXO


def resolve_path(name: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None) -> Path:
    """A racoon.conf file name: absolute as written, else under ``path certificate``."""
    path = Path(name)
    if base_dir is not None and not path.is_absolute():
        return Path(base_dir) / path
    return path


def check_file_permission(path: str | os.PathLike[str], *, what: str = "file") -> None:
    """Refuse a secret file that group or others may access.

    Used for private keys here and meant for psk.txt too. Raises
    :class:`~pyracoon.pki.errors.WeakFilePermissionError` naming the file and its mode; an
    unreadable file raises ``OSError`` as usual, and so does a directory or anything else that
    is not a regular file (``IsADirectoryError``): advising ``chmod 600`` on a directory would
    send the user the wrong way, since the configured name is what is wrong.
    """
    path = Path(path)
    st = path.stat()
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"{path} is not a regular file", str(path))
    mode = stat.S_IMODE(st.st_mode)
    if mode & WEAK_PERMISSION_BITS:
        who = []
        if mode & stat.S_IRWXG:
            who.append("group")
        if mode & stat.S_IRWXO:
            who.append("others")
        raise WeakFilePermissionError(
            path,
            mode,
            f"{path} has weak file permission: mode {mode:04o} lets {' and '.join(who)} access "
            f"this {what}; run 'chmod 600 {path}'",
        )


def _read(path: Path, what: str, error: type[CertificateLoadError | PrivateKeyLoadError]) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(path, f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def parse_certificates(data: bytes, *, source: str = "<data>") -> list[x509.Certificate]:
    """All certificates in ``data``: every PEM block, or one DER certificate."""
    # The parser's own words ("ParseError { kind: ShortData ... }") mean nothing to the person
    # who configured the file; they stay on the exception chain for debugging.
    if b"-----BEGIN" in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise CertificateLoadError(
                source,
                f"{source} has a PEM block that is not an X.509 certificate (a key, a CSR, or "
                "damaged base64?)",
            ) from exc
        return certs
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CertificateLoadError(
            source, f"{source} is neither a PEM nor a DER certificate"
        ) from exc


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every certificate in a file (a PEM bundle may hold several)."""
    path = Path(path)
    return parse_certificates(_read(path, "certificate", CertificateLoadError), source=str(path))


_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


def parse_crls(data: bytes, *, source: str = "<data>") -> list[x509.CertificateRevocationList]:
    """All CRLs in ``data``: every PEM ``X509 CRL`` block, or one DER CRL."""
    try:
        if b"-----BEGIN" in data:
            return [x509.load_pem_x509_crl(block) for block in _PEM_CRL.findall(data)]
        return [x509.load_der_x509_crl(data)]
    except ValueError as exc:
        raise CertificateLoadError(source, f"{source}: bad CRL: {exc}") from exc


def load_crls(path: str | os.PathLike[str]) -> list[x509.CertificateRevocationList]:
    """Every CRL in a file (the CA directory names them ``<issuer hash>.r0``, ``.r1``, ...)."""
    path = Path(path)
    return parse_crls(_read(path, "CRL", CertificateLoadError), source=str(path))


def load_certificate(path: str | os.PathLike[str]) -> x509.Certificate:
    """The first certificate in a PEM or DER file."""
    return load_certificates(path)[0]


def load_private_key(
    path: str | os.PathLike[str], *, check_permissions: bool = True
) -> PrivateKeyTypes:
    """Load an unencrypted PEM or DER private key (PKCS#1, SEC1 or PKCS#8).

    With ``check_permissions`` (the default) a key readable by group or others is refused first.
    """
    path = Path(path)
    if check_permissions:
        try:
            check_file_permission(path, what="private key")
        except OSError as exc:
            raise PrivateKeyLoadError(
                path, f"cannot read private key {path}: {exc.strerror or exc}"
            ) from exc
    data = _read(path, "private key", PrivateKeyLoadError)
    is_pem = b"-----BEGIN" in data
    if is_pem and (b"ENCRYPTED" in data):
        raise _encrypted(path)
    loader = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    try:
        return loader(data, password=None)
    except TypeError as exc:  # cryptography: "Password was not given but private key is encrypted"
        raise _encrypted(path) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PrivateKeyLoadError(
            path,
            f"{path} holds no private key we can read: it is not an unencrypted PEM or DER key "
            "(PKCS#1, SEC1 or PKCS#8)",
        ) from exc


def _encrypted(path: Path) -> EncryptedPrivateKeyError:
    return EncryptedPrivateKeyError(
        path,
        f"private key {path} is protected by a passphrase, which racoon cannot ask for; remove "
        f"the passphrase, e.g. 'openssl rsa -in {path} -out {path}' (or 'openssl pkey' for "
        f"non-RSA keys), then 'chmod 600 {path}'",
    )


@dataclass(frozen=True)
class LocalCredentials:
    """Our side of ``certificate_type x509 "cert" "key"``: the certificate and its private key."""

    certificate: x509.Certificate
    private_key: PrivateKeyTypes
    certificate_path: Path
    key_path: Path


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_credentials(
    certificate_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    check_permissions: bool = True,
) -> LocalCredentials:
    """Load ``certificate_type x509`` files (relative names under ``path certificate``) and make
    sure the key belongs to the certificate: a swapped key file would otherwise only show up as
    the peer's "signature does not verify", far from the cause."""
    cert_path = resolve_path(certificate_file, base_dir)
    key_path = resolve_path(key_file, base_dir)
    cert = load_certificate(cert_path)
    key = load_private_key(key_path, check_permissions=check_permissions)
    check_key_pair(cert, key, cert_path, key_path)
    return LocalCredentials(cert, key, cert_path, key_path)


def check_key_pair(
    cert: x509.Certificate,
    key: PrivateKeyTypes,
    cert_path: str | Path,
    key_path: str | Path,
) -> None:
    """``PrivateKeyLoadError`` unless ``key`` is the private half of ``cert``'s public key: for
    files already loaded (the daemon's start-up checks what the engine's credentials read)."""
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise PrivateKeyLoadError(
            key_path,
            f"private key {key_path} does not belong to certificate {cert_path} "
            f"({describe(cert)}); check the two names in certificate_type",
        )


@functools.lru_cache(maxsize=512)
def certificate_subject(cert: x509.Certificate) -> DistinguishedName:
    """The Subject exactly as encoded in the certificate (ID payloads carry these bytes)."""
    try:
        return DistinguishedName.from_der(tbs_issuer_and_subject(cert.tbs_certificate_bytes)[1])
    except DerError:
        return DistinguishedName.from_der(cert.subject.public_bytes())


@functools.lru_cache(maxsize=512)
def certificate_issuer(cert: x509.Certificate) -> DistinguishedName:
    """The Issuer exactly as encoded in the certificate (CERT-REQUEST payloads carry these)."""
    try:
        return DistinguishedName.from_der(tbs_issuer_and_subject(cert.tbs_certificate_bytes)[0])
    except DerError:
        return DistinguishedName.from_der(cert.issuer.public_bytes())


def crl_issuer(crl: x509.CertificateRevocationList) -> DistinguishedName:
    """The issuer of a CRL, as a comparable name."""
    return DistinguishedName.from_der(crl.issuer.public_bytes())


def certificate_request_authority(
    *,
    peers_certificate: x509.Certificate | None = None,
    ca_certificate: x509.Certificate | None = None,
) -> DistinguishedName | None:
    """The Certification Authority name racoon puts in its CERT-REQUEST (racoon's isakmp_ident.c):
    the issuer of ``peers_certfile`` if configured, else the subject of ``ca_type``, else none
    (the engine then sends a CR without an authority, or none at all)."""
    if peers_certificate is not None:
        return certificate_issuer(peers_certificate)
    if ca_certificate is not None:
        return certificate_subject(ca_certificate)
    return None


def describe(cert: x509.Certificate) -> str:
    """A short label for messages: the subject in racoon.conf text form, quoted."""
    return f"'{certificate_subject(cert).rfc2253()}'"
