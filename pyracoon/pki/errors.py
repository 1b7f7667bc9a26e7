"""Typed errors of the X.509 trust layer.

Why a module of its own: every failure here ends up in two places, a log line a person reads and a
notify the peer receives. Each exception therefore carries a sentence that says what is wrong and
what to do about it (``str(exc)``), plus the machine-readable facts the engine needs: the OpenSSL
verify code racoon would log, the chain depth, the file and its mode, the ISAKMP notify type to
send back. Nothing in here imports the rest of pyracoon.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

# ISAKMP notify message types (RFC 2408 section 3.14.1). Kept here as plain numbers because pki must
# not import pyracoon.wire; the engine maps them onto its own table.
NOTIFY_INVALID_ID_INFORMATION = 18
NOTIFY_INVALID_CERT_ENCODING = 19
NOTIFY_INVALID_CERTIFICATE = 20
NOTIFY_INVALID_CERT_AUTHORITY = 22


class PkiError(Exception):
    """Base class of every error raised by :mod:`pyracoon.pki`."""


# --- files ---------------------------------------------------------------------------------------


class PkiFileError(PkiError):
    """A certificate or key file could not be used. ``path`` names the file."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(message)


class CertificateLoadError(PkiFileError):
    """The file holds no certificate we can parse (neither PEM nor DER)."""


class PrivateKeyLoadError(PkiFileError):
    """The file holds no private key we can parse."""


class EncryptedPrivateKeyError(PrivateKeyLoadError):
    """The private key is protected by a passphrase; racoon cannot prompt for one."""


class WeakFilePermissionError(PkiFileError):
    """A secret file is accessible by group or others (racoon: "... has weak file permission")."""

    def __init__(self, path: str | Path, mode: int, message: str) -> None:
        self.mode = mode
        super().__init__(path, message)


# --- distinguished names -------------------------------------------------------------------------


class DistinguishedNameError(PkiError):
    """Base for distinguished-name problems."""


class NameDecodeError(DistinguishedNameError):
    """DER bytes that should be an X.501 Name are not one."""


class NameCanonicalError(DistinguishedNameError):
    """A Name whose string values OpenSSL could not convert to UTF-8 (so it has no subject hash).

    ``rdn`` and ``attribute`` are the 0-based positions of the offending value.
    """

    def __init__(self, message: str, *, rdn: int, attribute: int) -> None:
        self.rdn = rdn
        self.attribute = attribute
        super().__init__(message)


class NameSyntaxError(DistinguishedNameError):
    """A textual DN (racoon.conf ``asn1dn "..."``) that cannot be parsed.

    ``offset`` is the 0-based character position in ``text`` where the problem was found.
    """

    def __init__(self, text: str, offset: int, reason: str) -> None:
        self.text = text
        self.offset = offset
        self.reason = reason
        super().__init__(f"invalid DN {text!r} at offset {offset}: {reason}")


# --- chain verification --------------------------------------------------------------------------


class VerifyCode(IntEnum):
    """OpenSSL ``X509_V_ERR_*`` numbers, which racoon prints in its verify log line.

    The numbers are those of the OpenSSL 1.x that racoon 0.8.2 was built with. OpenSSL 3 moved
    "invalid CA certificate" from 24 to 79 (24 now means "issuer certificate lacks a public
    key"); we keep 24 so log lines read as racoon's did.
    """

    UNABLE_TO_GET_ISSUER_CERT = 2
    UNABLE_TO_GET_CRL = 3
    UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY = 6
    CERT_SIGNATURE_FAILURE = 7
    CRL_SIGNATURE_FAILURE = 8
    CERT_NOT_YET_VALID = 9
    CERT_HAS_EXPIRED = 10
    CRL_NOT_YET_VALID = 11
    CRL_HAS_EXPIRED = 12
    DEPTH_ZERO_SELF_SIGNED_CERT = 18
    SELF_SIGNED_CERT_IN_CHAIN = 19
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
    CERT_CHAIN_TOO_LONG = 22
    CERT_REVOKED = 23
    INVALID_CA = 24
    PATH_LENGTH_EXCEEDED = 25
    INVALID_PURPOSE = 26
    KEYUSAGE_NO_CERTSIGN = 32
    UNHANDLED_CRITICAL_EXTENSION = 34
    KEYUSAGE_NO_CRL_SIGN = 35

    @property
    def openssl_text(self) -> str:
        """The string ``X509_verify_cert_error_string()`` returns (OpenSSL 3 wording)."""
        return _VERIFY_TEXT[self]


_VERIFY_TEXT: dict[VerifyCode, str] = {
    VerifyCode.UNABLE_TO_GET_ISSUER_CERT: "unable to get issuer certificate",
    VerifyCode.UNABLE_TO_GET_CRL: "unable to get certificate CRL",
    VerifyCode.UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: "unable to decode issuer public key",
    VerifyCode.CERT_SIGNATURE_FAILURE: "certificate signature failure",
    VerifyCode.CRL_SIGNATURE_FAILURE: "CRL signature failure",
    VerifyCode.CERT_NOT_YET_VALID: "certificate is not yet valid",
    VerifyCode.CERT_HAS_EXPIRED: "certificate has expired",
    VerifyCode.CRL_NOT_YET_VALID: "CRL is not yet valid",
    VerifyCode.CRL_HAS_EXPIRED: "CRL has expired",
    VerifyCode.DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
    VerifyCode.SELF_SIGNED_CERT_IN_CHAIN: "self-signed certificate in certificate chain",
    VerifyCode.UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "unable to get local issuer certificate",
    VerifyCode.CERT_CHAIN_TOO_LONG: "certificate chain too long",
    VerifyCode.CERT_REVOKED: "certificate revoked",
    VerifyCode.INVALID_CA: "invalid CA certificate",
    VerifyCode.PATH_LENGTH_EXCEEDED: "path length constraint exceeded",
    VerifyCode.INVALID_PURPOSE: "unsupported certificate purpose",
    VerifyCode.KEYUSAGE_NO_CERTSIGN: "key usage does not include certificate signing",
    VerifyCode.UNHANDLED_CRITICAL_EXTENSION: "unhandled critical extension",
    VerifyCode.KEYUSAGE_NO_CRL_SIGN: "key usage does not include CRL signing",
}


class CertificateVerifyError(PkiError):
    """The peer's certificate chain does not lead to a trusted CA.

    ``str(exc)`` is the actionable reason. ``code`` is the OpenSSL verify code, ``depth`` the
    position in the chain (0 = the peer's own certificate) and ``subject_oneline`` the failing
    certificate's subject in OpenSSL one-line form, which together give racoon's log line
    (:meth:`racoon_log_line`). racoon answers any verify failure with INVALID-CERT-AUTHORITY.
    """

    notify_type = NOTIFY_INVALID_CERT_AUTHORITY

    def __init__(
        self,
        reason: str,
        *,
        code: VerifyCode,
        depth: int,
        certificate: x509.Certificate,
        subject_oneline: str,
    ) -> None:
        self.reason = reason
        self.code = code
        self.depth = depth
        self.certificate = certificate
        self.subject_oneline = subject_oneline
        super().__init__(reason)

    def racoon_log_line(self) -> str:
        """racoon's ERROR line, e.g. ``unable to get local issuer certificate(20) at depth:0
        SubjectName:/C=JP/CN=host``."""
        return (
            f"{self.code.openssl_text}({int(self.code)}) at depth:{self.depth} "
            f"SubjectName:{self.subject_oneline}"
        )


class IssuerNotFoundError(CertificateVerifyError):
    """No certificate with the issuer's name is trusted or was supplied (codes 2 and 20)."""


class SelfSignedCertificateError(CertificateVerifyError):
    """The chain ends in a self-signed certificate that is not trusted (codes 18 and 19)."""


class CertificateSignatureError(CertificateVerifyError):
    """A certificate's signature does not verify with its issuer's key (codes 6 and 7)."""


class CertificateExpiredError(CertificateVerifyError):
    """A certificate's notAfter lies in the past (code 10)."""


class CertificateNotYetValidError(CertificateVerifyError):
    """A certificate's notBefore lies in the future (code 9)."""


class InvalidCaError(CertificateVerifyError):
    """An issuing certificate is not a CA (basicConstraints), code 24."""


class PathLengthExceededError(CertificateVerifyError):
    """A CA's basicConstraints pathLenConstraint is exceeded (code 25)."""


class KeyUsageError(CertificateVerifyError):
    """keyUsage forbids what the certificate is used for (codes 26 and 32)."""


class UnhandledCriticalExtensionError(CertificateVerifyError):
    """A critical extension we do not implement (code 34): RFC 5280 says reject."""


class CertificateRevokedError(CertificateVerifyError):
    """The issuer's CRL lists the certificate (code 23)."""


class CrlError(CertificateVerifyError):
    """A CRL that applies cannot be used: bad signature, out of date, or its issuer may not sign
    CRLs (codes 8, 11, 12, 35). racoon fails verification for these too."""


class ChainTooLongError(CertificateVerifyError):
    """The chain is longer than the configured maximum depth (code 22)."""


# --- identities ----------------------------------------------------------------------------------


class IdentityError(PkiError):
    """Base for identifier problems. ``notify_type`` is the ISAKMP notify to send back."""

    notify_type = NOTIFY_INVALID_ID_INFORMATION


class IdentifierConfigError(IdentityError):
    """A my_identifier / peers_identifier statement cannot be turned into an ID (e.g. ``asn1dn``
    with no value and no certificate configured)."""


class IdentityMismatchError(IdentityError):
    """An ID check failed. ``racoon_message`` is racoon's fixed log sentence; ``detail`` says which
    ID was received and what it was compared with. ``str(exc)`` joins the two."""

    def __init__(self, racoon_message: str, detail: str) -> None:
        self.racoon_message = racoon_message
        self.detail = detail
        super().__init__(f"{racoon_message} {detail}")


class SubjectNameMismatchError(IdentityMismatchError):
    """An ID_DER_ASN1_DN differs from the certificate's Subject."""


class SubjectAltNameMismatchError(IdentityMismatchError):
    """An address / FQDN / user-FQDN ID is not among the certificate's subjectAltNames."""


class NoSubjectAltNameError(SubjectAltNameMismatchError):
    """The certificate has no subjectAltName of the kind the ID needs; racoon sends
    INVALID-CERTIFICATE for this case."""

    notify_type = NOTIFY_INVALID_CERTIFICATE


class PeerIdentifierMismatchError(IdentityMismatchError):
    """``verify_identifier on`` and the peer's ID matches none of the ``peers_identifier`` lines."""
