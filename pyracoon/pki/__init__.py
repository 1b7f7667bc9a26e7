"""X.509 trust for pyracoon: certificates, the hashed CA directory, chain checks, identities.

racoon authenticates peers by RSA signatures backed by X.509 certificates (the seed memo, section
4): our certificate and key come from ``certificate_type x509``, trusted CAs from the directory of
``path certificate`` found by OpenSSL subject hash, and the peer's ID is checked against
``peers_identifier`` and, with ``verify_cert``, against its certificate. This package does all of
that without sockets or the event loop; the only I/O is reading the files racoon.conf names.

Modules: :mod:`.certs` (files), :mod:`.name` (DNs, canonical form, subject hash), :mod:`.cadir`
(trust store), :mod:`.verify` (chain verification), :mod:`.identity` (IDs), :mod:`.errors`.
"""

from .cadir import CaDirectory, IssuerLookup, TrustStore
from .certs import (
    LocalCredentials,
    certificate_issuer,
    certificate_request_authority,
    certificate_subject,
    check_file_permission,
    check_key_pair,
    load_certificate,
    load_certificates,
    load_credentials,
    load_private_key,
    parse_certificates,
    resolve_path,
)
from .errors import (
    CertificateVerifyError,
    IdentityError,
    IdentityMismatchError,
    PkiError,
    VerifyCode,
)
from .identity import (
    IdentifierKind,
    IdentifierSpec,
    Identity,
    IdType,
    build_my_identity,
    check_id_against_certificate,
    check_peers_identifier,
    identifier_matches,
)
from .name import Attribute, DistinguishedName, dn_matches, parse_dn
from .verify import (
    VerifiedChain,
    signature_verifies,
    split_peer_certificates,
    verify_certificate_chain,
)

__all__ = [
    "Attribute",
    "CaDirectory",
    "CertificateVerifyError",
    "DistinguishedName",
    "IdType",
    "IdentifierKind",
    "IdentifierSpec",
    "Identity",
    "IdentityError",
    "IdentityMismatchError",
    "IssuerLookup",
    "LocalCredentials",
    "PkiError",
    "TrustStore",
    "VerifiedChain",
    "VerifyCode",
    "build_my_identity",
    "certificate_issuer",
    "certificate_request_authority",
    "certificate_subject",
    "check_file_permission",
    "check_id_against_certificate",
    "check_key_pair",
    "check_peers_identifier",
    "dn_matches",
    "identifier_matches",
    "load_certificate",
    "load_certificates",
    "load_credentials",
    "load_private_key",
    "parse_certificates",
    "parse_dn",
    "resolve_path",
    "signature_verifies",
    "split_peer_certificates",
    "verify_certificate_chain",
]
