"""Verifying a peer's certificate chain up to a trusted CA, with reasons a person can act on.

racoon calls OpenSSL's ``X509_verify_cert`` and logs its terse verdict, e.g. ``unable to get local
issuer certificate(20) at depth:0 SubjectName:/C=JP/CN=host2``. We do the same checks ourselves
(sans-I/O apart from the CA directory lookup) so each failure can name the certificate, the date,
the directory and the file names tried, while still carrying the OpenSSL code and depth so the
engine can print racoon's line and answer INVALID-CERT-AUTHORITY.

The order of checks follows OpenSSL's so the first error reported is the one racoon would report:

1. build the chain: from the peer's certificate, find each issuer by name, in the trust store
   first and then among certificates the peer sent (several CERT payloads); stop at a trusted
   self-signed CA (codes 2, 18, 19, 20, 22);
2. extensions, leaf first: unknown critical extensions (34), issuers must be CAs by
   basicConstraints (24; a self-signed v1 root counts as a CA, as in OpenSSL), pathLenConstraint
   (25), keyUsage keyCertSign on issuers (32), and digitalSignature on the peer's certificate when
   it has a keyUsage extension (26) — it is about to sign the IKE hash;
3. from the trust anchor down: each signature with the issuer's key (7; the anchor's own
   signature is not checked, it is trusted by configuration) and each validity period (9, 10).

Between 2 and 3, as racoon asks OpenSSL to (``X509_V_FLAG_CRL_CHECK_ALL``): revocation, from
CRLs named ``<issuer hash>.r0``, ``.r1``, ... in the CA directory (or given to the trust store).
A certificate whose issuer has no CRL passes with racoon's warning "unable to get certificate
CRL(3)"; a revoked certificate (23), a CRL with a bad signature (8), out of date (11, 12) or from
a CA without cRLSign (35) fails. Delta CRLs and indirect CRLs are not supported.

Not done: name constraints (a critical nameConstraints extension is refused as unhandled rather
than ignored) and certificate policies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from .cadir import TrustStore
from .certs import certificate_issuer, certificate_subject
from .errors import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateRevokedError,
    CertificateSignatureError,
    CertificateVerifyError,
    ChainTooLongError,
    CrlError,
    InvalidCaError,
    IssuerNotFoundError,
    KeyUsageError,
    PathLengthExceededError,
    SelfSignedCertificateError,
    UnhandledCriticalExtensionError,
    VerifyCode,
)

#: Extensions whose criticality we honour: checked here, or harmless to accept.
HANDLED_CRITICAL_EXTENSIONS = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.CERTIFICATE_POLICIES,
    }
)

_EXTENSION_NAMES = {
    ExtensionOID.NAME_CONSTRAINTS: "nameConstraints",
    ExtensionOID.POLICY_CONSTRAINTS: "policyConstraints",
    ExtensionOID.INHIBIT_ANY_POLICY: "inhibitAnyPolicy",
    ExtensionOID.POLICY_MAPPINGS: "policyMappings",
}

DEFAULT_MAX_DEPTH = 100  # OpenSSL's default verify depth


@dataclass(frozen=True)
class VerifiedChain:
    """A chain that passed: ``certificates[0]`` is the peer's, the last one the trust anchor.

    ``warnings`` are racoon's WARNING lines for problems it tolerates — today only "unable to get
    certificate CRL(3) at depth:N SubjectName:..." for each certificate without a CRL.
    """

    certificates: tuple[x509.Certificate, ...]
    warnings: tuple[str, ...] = ()

    @property
    def end_entity(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def trust_anchor(self) -> x509.Certificate:
        return self.certificates[-1]


def _label(cert: x509.Certificate) -> str:
    return f"'{certificate_subject(cert).rfc2253()}'"


def _fail(
    error: type[CertificateVerifyError],
    code: VerifyCode,
    depth: int,
    cert: x509.Certificate,
    reason: str,
) -> CertificateVerifyError:
    return error(
        reason,
        code=code,
        depth=depth,
        certificate=cert,
        subject_oneline=certificate_subject(cert).oneline(),
    )


def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def _extension(cert: x509.Certificate, ext_type: type[x509.ExtensionType]) -> object | None:
    try:
        return cert.extensions.get_extension_for_class(ext_type).value
    except x509.ExtensionNotFound:
        return None


def signature_verifies(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Does ``cert``'s signature verify with ``issuer``'s public key?

    Uses the algorithm the certificate names: RSA PKCS#1 v1.5 or RSA-PSS with its hash, ECDSA,
    Ed25519/Ed448 or DSA. Raises ``UnsupportedAlgorithm`` for anything else.
    """
    key = issuer.public_key()
    data, signature = cert.tbs_certificate_bytes, cert.signature
    try:
        if isinstance(key, rsa.RSAPublicKey):
            params = cert.signature_algorithm_parameters
            pad = params if isinstance(params, padding.AsymmetricPadding) else padding.PKCS1v15()
            hash_algorithm = cert.signature_hash_algorithm
            if hash_algorithm is None:
                return False
            key.verify(signature, data, pad, hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            hash_algorithm = cert.signature_hash_algorithm
            if hash_algorithm is None:
                return False
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        elif isinstance(key, dsa.DSAPublicKey):
            hash_algorithm = cert.signature_hash_algorithm
            if hash_algorithm is None:
                return False
            key.verify(signature, data, hash_algorithm)
        else:
            raise UnsupportedAlgorithm(f"public key type {type(key).__name__} is not supported")
    except InvalidSignature:
        return False
    except (TypeError, ValueError):
        # e.g. an ECDSA-signed certificate checked against an RSA key
        return False
    return True


def _verifies_quietly(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        return signature_verifies(cert, issuer)
    except UnsupportedAlgorithm:
        return False


def _self_issued(cert: x509.Certificate) -> bool:
    return certificate_subject(cert) == certificate_issuer(cert)


def _key_ids_compatible(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """RFC 5280 4.2.1.1: when both identifiers are present they must agree."""
    aki = _extension(cert, x509.AuthorityKeyIdentifier)
    ski = _extension(issuer, x509.SubjectKeyIdentifier)
    if not isinstance(aki, x509.AuthorityKeyIdentifier) or aki.key_identifier is None:
        return True
    if not isinstance(ski, x509.SubjectKeyIdentifier):
        return True
    return aki.key_identifier == ski.digest


def _is_valid_at(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


_RSA_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_MD5,
        SignatureAlgorithmOID.RSA_WITH_SHA1,
        SignatureAlgorithmOID.RSA_WITH_SHA224,
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.RSA_WITH_SHA3_224,
        SignatureAlgorithmOID.RSA_WITH_SHA3_256,
        SignatureAlgorithmOID.RSA_WITH_SHA3_384,
        SignatureAlgorithmOID.RSA_WITH_SHA3_512,
        SignatureAlgorithmOID.RSASSA_PSS,
    }
)
_EC_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.ECDSA_WITH_SHA1,
        SignatureAlgorithmOID.ECDSA_WITH_SHA224,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
        SignatureAlgorithmOID.ECDSA_WITH_SHA3_224,
        SignatureAlgorithmOID.ECDSA_WITH_SHA3_256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA3_384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA3_512,
    }
)
_DSA_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.DSA_WITH_SHA1,
        SignatureAlgorithmOID.DSA_WITH_SHA224,
        SignatureAlgorithmOID.DSA_WITH_SHA256,
    }
)


def _key_fits_signature(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Could ``issuer``'s kind of key have made ``cert``'s kind of signature? OpenSSL skips a
    same-named CA whose key type cannot match (so the error is "issuer not found", code 20)."""
    oid = cert.signature_algorithm_oid
    try:
        key = issuer.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False
    if oid in _RSA_SIGNATURES:
        return isinstance(key, rsa.RSAPublicKey)
    if oid in _EC_SIGNATURES:
        return isinstance(key, ec.EllipticCurvePublicKey)
    if oid in _DSA_SIGNATURES:
        return isinstance(key, dsa.DSAPublicKey)
    if oid == SignatureAlgorithmOID.ED25519:
        return isinstance(key, ed25519.Ed25519PublicKey)
    if oid == SignatureAlgorithmOID.ED448:
        return isinstance(key, ed448.Ed448PublicKey)
    return True


def _issuer_candidates(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> tuple[list[x509.Certificate], list[str]]:
    """Same-named certificates that may have issued ``cert``, and why the others may not."""
    usable, rejected = [], []
    for candidate in candidates:
        if not _key_fits_signature(cert, candidate):
            rejected.append(
                f"'{certificate_subject(candidate)}' has {_with_article(_key_kind(candidate))} "
                f"key, which "
                f"cannot have made the {_signature_kind(cert)} signature of {_label(cert)}"
            )
        elif not _key_ids_compatible(cert, candidate):
            rejected.append(
                f"'{certificate_subject(candidate)}' has another subjectKeyIdentifier than the "
                f"authorityKeyIdentifier of {_label(cert)}"
            )
        else:
            usable.append(candidate)
    return usable, rejected


def _key_kind(cert: x509.Certificate) -> str:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unsupported"
    for kind, name in (
        (rsa.RSAPublicKey, "RSA"),
        (ec.EllipticCurvePublicKey, "EC"),
        (ed25519.Ed25519PublicKey, "Ed25519"),
        (ed448.Ed448PublicKey, "Ed448"),
        (dsa.DSAPublicKey, "DSA"),
    ):
        if isinstance(key, kind):
            return name
    return type(key).__name__


def _with_article(word: str) -> str:
    # as spoken: "an RSA", "an EC", "an Ed25519", "a DSA"
    return f"{'an' if word in ('RSA', 'EC', 'Ed25519', 'Ed448') else 'a'} {word}"


def _signature_kind(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    if oid in _RSA_SIGNATURES:
        return "RSA"
    if oid in _EC_SIGNATURES:
        return "ECDSA"
    if oid in _DSA_SIGNATURES:
        return "DSA"
    return oid.dotted_string


def _pick_issuer(
    cert: x509.Certificate, usable: Sequence[x509.Certificate], now: datetime
) -> x509.Certificate | None:
    """Among possible issuers prefer one whose key verifies and that is valid now (several CAs
    may share a name across a re-key, and hash links may collide)."""
    if not usable:
        return None

    def score(candidate: x509.Certificate) -> tuple[int, int]:
        verifies = _verifies_quietly(cert, candidate)
        return (int(verifies), int(_is_valid_at(candidate, now)))

    return max(usable, key=score)


def split_peer_certificates(
    certificates: Sequence[x509.Certificate],
    accepts: Callable[[x509.Certificate], bool] | None = None,
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Pick the peer's own certificate out of the CERT payloads it sent; the rest are
    intermediates for :func:`verify_certificate_chain`.

    racoon simply takes the first CERT payload. A peer that sends its chain may put the CA first,
    so we take the first certificate ``accepts`` (e.g. one that backs the peer's ID), else the
    first that is not a CA, else the first.
    """
    if not certificates:
        raise ValueError("the peer sent no certificate")
    choice = None
    if accepts is not None:
        choice = next((c for c in certificates if accepts(c)), None)
    if choice is None:
        choice = next((c for c in certificates if not _is_ca(c)), certificates[0])
    return choice, [c for c in certificates if c is not choice]


def verify_certificate_chain(
    certificate: x509.Certificate,
    *,
    trust: TrustStore,
    untrusted: Sequence[x509.Certificate] = (),
    now: datetime | None = None,
    require_digital_signature: bool = True,
    allow_partial_chain: bool = False,
    max_depth: int = DEFAULT_MAX_DEPTH,
    check_crls: bool = True,
) -> VerifiedChain:
    """Verify ``certificate`` (the peer's) up to a CA in ``trust``.

    ``untrusted`` are other certificates the peer sent (intermediates, in any order; the peer's
    own may be among them). ``now`` defaults to the current time (timezone-aware, UTC).
    ``allow_partial_chain`` accepts a trusted intermediate as the anchor (OpenSSL's
    ``X509_V_FLAG_PARTIAL_CHAIN``; racoon does not set it). ``check_crls`` consults the CRLs of
    every issuer in the chain (racoon sets ``X509_V_FLAG_CRL_CHECK_ALL``); a missing CRL is only
    a warning, as in racoon. Returns the chain or raises a
    :class:`~pyracoon.pki.errors.CertificateVerifyError` subclass.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    chain = _build_chain(certificate, trust, untrusted, now, allow_partial_chain, max_depth)
    _check_extensions(chain, require_digital_signature)
    warnings = _check_revocation(chain, trust, now) if check_crls else []
    _check_signatures_and_times(chain, now)
    return VerifiedChain(tuple(chain), tuple(warnings))


def _build_chain(
    leaf: x509.Certificate,
    trust: TrustStore,
    untrusted: Sequence[x509.Certificate],
    now: datetime,
    allow_partial_chain: bool,
    max_depth: int,
) -> list[x509.Certificate]:
    chain = [leaf]
    seen = {_fingerprint(leaf)}
    pool = [c for c in untrusted if _fingerprint(c) not in seen]
    trusted_from: int | None = 0 if trust.contains(leaf) else None
    while True:
        current = chain[-1]
        depth = len(chain) - 1
        if _self_issued(current) and (
            trusted_from is not None or _verifies_quietly(current, current)
        ):
            if trusted_from is not None:
                return chain
            if depth == 0:
                raise _fail(
                    SelfSignedCertificateError,
                    VerifyCode.DEPTH_ZERO_SELF_SIGNED_CERT,
                    0,
                    current,
                    f"certificate {_label(current)} is self-signed and is not a trusted CA; "
                    f"to trust it, put it in the CA directory under its hash "
                    f"{certificate_subject(current).subject_hash_hex()}.0",
                )
            raise _fail(
                SelfSignedCertificateError,
                VerifyCode.SELF_SIGNED_CERT_IN_CHAIN,
                depth,
                current,
                f"the chain of {_label(leaf)} ends in the self-signed CA {_label(current)}, "
                f"which is not trusted; add it to the CA directory as "
                f"{certificate_subject(current).subject_hash_hex()}.0 if it should be",
            )
        if depth >= max_depth:
            raise _fail(
                ChainTooLongError,
                VerifyCode.CERT_CHAIN_TOO_LONG,
                depth,
                current,
                f"the chain of {_label(leaf)} is longer than {max_depth} certificates",
            )
        issuer_name = certificate_issuer(current)
        lookup = trust.lookup(issuer_name)
        trusted, rejected = _issuer_candidates(
            current, [c for c in lookup.certificates if _fingerprint(c) not in seen]
        )
        chosen = _pick_issuer(current, trusted, now)
        if chosen is not None:
            trusted_from = len(chain) if trusted_from is None else trusted_from
        elif trusted_from is None:
            # The peer-supplied certificates are only consulted while outside the trusted part,
            # as OpenSSL does: a trusted CA's issuer must itself be trusted.
            supplied, _ = _issuer_candidates(
                current, [c for c in pool if certificate_subject(c) == issuer_name]
            )
            chosen = _pick_issuer(current, supplied, now)
        if chosen is None:
            if rejected:
                lookup = dataclasses.replace(lookup, notes=(*lookup.notes, *rejected))
            if trusted_from is not None:
                if allow_partial_chain:
                    return chain
                raise _fail(
                    IssuerNotFoundError,
                    VerifyCode.UNABLE_TO_GET_ISSUER_CERT,
                    depth,
                    current,
                    f"trusted CA {_label(current)} is not self-signed and its issuer "
                    f"'{issuer_name}' is {trust.explain_missing(lookup)}",
                )
            raise _fail(
                IssuerNotFoundError,
                VerifyCode.UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                depth,
                current,
                f"issuer '{issuer_name}' of {_label(current)} {trust.explain_missing(lookup)}",
            )
        chain.append(chosen)
        seen.add(_fingerprint(chosen))


def _is_ca(cert: x509.Certificate) -> bool:
    """OpenSSL's non-strict ``X509_check_ca``: basicConstraints decides when present; without it,
    a self-signed version 1 certificate (old CA.pl roots of the memo's era) or a keyUsage with
    keyCertSign still marks a CA."""
    bc = _extension(cert, x509.BasicConstraints)
    if isinstance(bc, x509.BasicConstraints):
        return bc.ca
    if cert.version == x509.Version.v1 and _self_issued(cert):
        return True
    ku = _extension(cert, x509.KeyUsage)
    return isinstance(ku, x509.KeyUsage) and ku.key_cert_sign


def _check_extensions(chain: list[x509.Certificate], require_digital_signature: bool) -> None:
    for depth, cert in enumerate(chain):
        for ext in cert.extensions:
            if ext.critical and ext.oid not in HANDLED_CRITICAL_EXTENSIONS:
                raise _fail(
                    UnhandledCriticalExtensionError,
                    VerifyCode.UNHANDLED_CRITICAL_EXTENSION,
                    depth,
                    cert,
                    f"certificate {_label(cert)} has a critical extension we do not implement "
                    f"({_EXTENSION_NAMES.get(ext.oid, ext.oid.dotted_string)})",
                )
        ku = _extension(cert, x509.KeyUsage)
        if depth == 0:
            if (
                require_digital_signature
                and isinstance(ku, x509.KeyUsage)
                and not ku.digital_signature
            ):
                raise _fail(
                    KeyUsageError,
                    VerifyCode.INVALID_PURPOSE,
                    0,
                    cert,
                    f"certificate {_label(cert)} has a keyUsage without digitalSignature, so "
                    f"it may not sign the IKE authentication hash",
                )
            continue
        subject = chain[depth - 1]
        if not _is_ca(cert):
            raise _fail(
                InvalidCaError,
                VerifyCode.INVALID_CA,
                depth,
                cert,
                f"{_label(cert)} is not a CA (basicConstraints) but issued {_label(subject)}",
            )
        if isinstance(ku, x509.KeyUsage) and not ku.key_cert_sign:
            raise _fail(
                KeyUsageError,
                VerifyCode.KEYUSAGE_NO_CERTSIGN,
                depth,
                cert,
                f"CA {_label(cert)} has a keyUsage without keyCertSign but issued "
                f"{_label(subject)}",
            )
        bc = _extension(cert, x509.BasicConstraints)
        if isinstance(bc, x509.BasicConstraints) and bc.path_length is not None:
            # certificates between this CA and the leaf, self-issued ones not counted (RFC 5280)
            below = sum(1 for c in chain[1:depth] if not _self_issued(c))
            if below > bc.path_length:
                raise _fail(
                    PathLengthExceededError,
                    VerifyCode.PATH_LENGTH_EXCEEDED,
                    depth,
                    cert,
                    f"CA {_label(cert)} allows {bc.path_length} intermediate CA(s) below it "
                    f"(pathLenConstraint) but the chain has {below}",
                )


def _check_revocation(chain: list[x509.Certificate], trust: TrustStore, now: datetime) -> list[str]:
    """CRL checks for every certificate whose issuer is in the chain (the anchor included when it
    is self-signed). Runs before the signature and time checks, as in OpenSSL."""
    warnings: list[str] = []
    for depth, cert in enumerate(chain):
        if depth + 1 < len(chain):
            issuer = chain[depth + 1]
        elif _self_issued(cert):
            issuer = cert
        else:
            continue  # partial chain: the anchor's issuer is unknown
        crls = trust.lookup_crls(certificate_issuer(cert)).crls
        if not crls:
            code = VerifyCode.UNABLE_TO_GET_CRL
            warnings.append(
                f"{code.openssl_text}({int(code)}) at depth:{depth} "
                f"SubjectName:{certificate_subject(cert).oneline()}"
            )
            continue
        crl = max(crls, key=lambda c: (_crl_signature_ok(c, issuer), _crl_current(c, now)))
        _check_crl(crl, cert, issuer, depth, now)
    return warnings


def _crl_signature_ok(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(
            issuer.public_key()  # type: ignore[arg-type]  # a non-signing key: TypeError, below
        )
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


def _crl_current(crl: x509.CertificateRevocationList, now: datetime) -> bool:
    next_update = crl.next_update_utc
    return crl.last_update_utc <= now and (next_update is None or now <= next_update)


def _check_crl(
    crl: x509.CertificateRevocationList,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    depth: int,
    now: datetime,
) -> None:
    ku = _extension(issuer, x509.KeyUsage)
    if isinstance(ku, x509.KeyUsage) and not ku.crl_sign:
        raise _fail(
            CrlError,
            VerifyCode.KEYUSAGE_NO_CRL_SIGN,
            depth,
            cert,
            f"the CRL for {_label(cert)} is issued by {_label(issuer)}, whose keyUsage does not "
            f"include cRLSign",
        )
    if not _crl_signature_ok(crl, issuer):
        raise _fail(
            CrlError,
            VerifyCode.CRL_SIGNATURE_FAILURE,
            depth,
            cert,
            f"the CRL of {_label(issuer)} does not verify with that CA's key; replace the CRL "
            f"file in the CA directory",
        )
    if now < crl.last_update_utc:
        raise _fail(
            CrlError,
            VerifyCode.CRL_NOT_YET_VALID,
            depth,
            cert,
            f"the CRL of {_label(issuer)} is dated {_format_time(crl.last_update_utc)}, after "
            f"now ({_format_time(now)}); check the clock",
        )
    if crl.next_update_utc is not None and now > crl.next_update_utc:
        raise _fail(
            CrlError,
            VerifyCode.CRL_HAS_EXPIRED,
            depth,
            cert,
            f"the CRL of {_label(issuer)} expired on {_format_time(crl.next_update_utc)}; fetch "
            f"a fresh one into the CA directory",
        )
    revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if revoked is not None:
        reason = ""
        try:
            value = revoked.extensions.get_extension_for_class(x509.CRLReason).value
            reason = f" (reason: {value.reason.value})"
        except x509.ExtensionNotFound:
            pass
        raise _fail(
            CertificateRevokedError,
            VerifyCode.CERT_REVOKED,
            depth,
            cert,
            f"certificate {_label(cert)} (serial {cert.serial_number:#x}) was revoked on "
            f"{_format_time(revoked.revocation_date_utc)}{reason} by {_label(issuer)}",
        )


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _check_signatures_and_times(chain: list[x509.Certificate], now: datetime) -> None:
    for depth in range(len(chain) - 1, -1, -1):
        cert = chain[depth]
        if depth < len(chain) - 1:
            issuer = chain[depth + 1]
            try:
                ok = signature_verifies(cert, issuer)
                problem = ""
            except UnsupportedAlgorithm as exc:
                ok, problem = False, f" ({exc})"
            if not ok:
                raise _fail(
                    CertificateSignatureError,
                    VerifyCode.CERT_SIGNATURE_FAILURE,
                    depth,
                    cert,
                    f"signature of {_label(cert)} does not verify with the key of "
                    f"{_label(issuer)}{problem}",
                )
        if now < cert.not_valid_before_utc:
            raise _fail(
                CertificateNotYetValidError,
                VerifyCode.CERT_NOT_YET_VALID,
                depth,
                cert,
                f"certificate {_label(cert)} is not valid before "
                f"{_format_time(cert.not_valid_before_utc)} (now {_format_time(now)}; "
                f"check the clock)",
            )
        if now > cert.not_valid_after_utc:
            raise _fail(
                CertificateExpiredError,
                VerifyCode.CERT_HAS_EXPIRED,
                depth,
                cert,
                f"certificate {_label(cert)} expired on {_format_time(cert.not_valid_after_utc)}",
            )
