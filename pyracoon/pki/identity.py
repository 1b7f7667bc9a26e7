"""Phase-1 identities: racoon.conf identifier forms, ID payload values, and the checks on them.

Three jobs, all named after racoon.conf (racoon.conf(5): remote; racoon's isakmp_quick.c):

* ``my_identifier address|fqdn|user_fqdn|keyid [file]|keyid tag|asn1dn`` becomes an
  :class:`Identity` — the (ID type, data) pair carried in our ID payload. ``asn1dn`` without a DN
  takes our certificate's Subject exactly as encoded.
* ``peers_identifier`` (possibly several) with ``verify_identifier on``: the peer's ID must match
  one of them; an asn1dn may use ``*`` values.
* ``verify_cert on``: the peer's ID must be backed by its certificate — an ID_DER_ASN1_DN must equal
  the Subject, an address / FQDN / user-FQDN ID must be one of the subjectAltNames (IP / DNS /
  email). The memo's author noticed that without this, any certificate from a trusted CA is
  accepted for any ID; we check every subjectAltName of the right kind (racoon only looks at the
  first one) and the errors say which ID came and what the certificate holds.

Comparison rules, chosen on purpose: FQDNs and the domain part of user-FQDNs compare
case-insensitively (DNS names are case-insensitive; racoon uses memcmp), DNs compare as OpenSSL's
``X509_NAME_cmp`` does, and ``*`` is a wildcard only in our configuration, never in what the peer
sends.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum

from cryptography import x509

from .certs import certificate_subject, resolve_path
from .errors import (
    DistinguishedNameError,
    IdentifierConfigError,
    NoSubjectAltNameError,
    PeerIdentifierMismatchError,
    SubjectAltNameMismatchError,
    SubjectNameMismatchError,
)
from .name import DistinguishedName, dn_matches, parse_dn


class IdType(IntEnum):
    """IPsec DOI identification types (RFC 2407 section 4.6.2.1)."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_USER_FQDN = 3
    ID_IPV4_ADDR_SUBNET = 4
    ID_IPV6_ADDR = 5
    ID_IPV6_ADDR_SUBNET = 6
    ID_IPV4_ADDR_RANGE = 7
    ID_IPV6_ADDR_RANGE = 8
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11


@dataclass(frozen=True)
class Identity:
    """An identity as carried in an ID payload (RFC 2407 4.6.2): type, protocol, port, data."""

    id_type: IdType
    data: bytes
    protocol_id: int = 0
    port: int = 0

    # construction -----------------------------------------------------------------------------

    @classmethod
    def from_address(cls, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> Identity:
        """ID_IPV4_ADDR or ID_IPV6_ADDR; a ``%scope`` suffix is ignored."""
        if isinstance(address, str):
            address = ipaddress.ip_address(address.split("%", 1)[0])
        if address.version == 4:
            return cls(IdType.ID_IPV4_ADDR, address.packed)
        return cls(IdType.ID_IPV6_ADDR, address.packed)

    @classmethod
    def fqdn(cls, name: str) -> Identity:
        return cls(IdType.ID_FQDN, name.encode("utf-8"))

    @classmethod
    def user_fqdn(cls, name: str) -> Identity:
        return cls(IdType.ID_USER_FQDN, name.encode("utf-8"))

    @classmethod
    def key_id(cls, data: bytes) -> Identity:
        return cls(IdType.ID_KEY_ID, bytes(data))

    @classmethod
    def der_asn1_dn(cls, name: DistinguishedName | bytes) -> Identity:
        return cls(IdType.ID_DER_ASN1_DN, name.der if isinstance(name, DistinguishedName) else name)

    @classmethod
    def from_id_b(cls, body: bytes) -> Identity:
        """Parse ID_b (type, protocol, port, data: the ID payload without its generic header)."""
        if len(body) < 4:
            raise ValueError(f"ID payload body is {len(body)} bytes, needs at least 4")
        try:
            id_type = IdType(body[0])
        except ValueError as exc:
            raise ValueError(f"unknown ID type {body[0]}") from exc
        return cls(id_type, body[4:], body[1], int.from_bytes(body[2:4], "big"))

    # views ------------------------------------------------------------------------------------

    def id_b(self) -> bytes:
        """ID_b as hashed into HASH_I / HASH_R (RFC 2409 section 5): type|proto|port|data."""
        return bytes([self.id_type, self.protocol_id]) + self.port.to_bytes(2, "big") + self.data

    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        if self.id_type == IdType.ID_IPV4_ADDR and len(self.data) == 4:
            return ipaddress.IPv4Address(self.data)
        if self.id_type == IdType.ID_IPV6_ADDR and len(self.data) == 16:
            return ipaddress.IPv6Address(self.data)
        return None

    def distinguished_name(self) -> DistinguishedName | None:
        if self.id_type != IdType.ID_DER_ASN1_DN:
            return None
        try:
            return DistinguishedName.from_der(self.data)
        except DistinguishedNameError:
            return None

    def value_text(self) -> str:
        """The value for people (and for racoon's REMOTE_ID script variable)."""
        address = self.address()
        if address is not None:
            return str(address)
        if self.id_type == IdType.ID_DER_ASN1_DN:
            name = self.distinguished_name()
            return name.rfc2253() if name is not None else self.data.hex()
        if self.id_type in (IdType.ID_IPV4_ADDR_SUBNET, IdType.ID_IPV6_ADDR_SUBNET):
            half = len(self.data) // 2
            if half in (4, 16):
                net = ipaddress.ip_address(self.data[:half])
                mask = ipaddress.ip_address(self.data[half:])
                return f"{net}/{mask}"
        if self.id_type in (IdType.ID_IPV4_ADDR_RANGE, IdType.ID_IPV6_ADDR_RANGE):
            half = len(self.data) // 2
            if half in (4, 16):
                start = ipaddress.ip_address(self.data[:half])
                end = ipaddress.ip_address(self.data[half:])
                return f"{start}-{end}"
        try:
            text = self.data.decode("utf-8")
        except UnicodeDecodeError:
            return self.data.hex()
        return text if text.isprintable() else self.data.hex()

    def describe(self) -> str:
        return f"{self.id_type.name} '{self.value_text()}'"

    def __str__(self) -> str:
        return self.value_text()


class IdentifierKind(Enum):
    """The forms of ``my_identifier`` / ``peers_identifier`` in racoon.conf."""

    ADDRESS = "address"
    FQDN = "fqdn"
    USER_FQDN = "user_fqdn"
    KEYID_FILE = "keyid"  # keyid [file] "path"
    KEYID_TAG = "keyid tag"
    ASN1DN = "asn1dn"


@dataclass(frozen=True)
class IdentifierSpec:
    """One identifier statement: the form and its optional value as written in racoon.conf."""

    kind: IdentifierKind
    value: str | None = None

    def __str__(self) -> str:
        return self.kind.value if self.value is None else f'{self.kind.value} "{self.value}"'


def _read_keyid_file(path: str, base_dir: str | os.PathLike[str] | None) -> bytes:
    """racoon uses the whole file content, byte for byte, as the key ID."""
    full = resolve_path(path, base_dir)
    try:
        return full.read_bytes()
    except OSError as exc:
        raise IdentifierConfigError(f"cannot read keyid file {full}: {exc.strerror}") from exc


def _parse_config_dn(text: str) -> DistinguishedName:
    try:
        return parse_dn(text)
    except DistinguishedNameError as exc:
        raise IdentifierConfigError(f"asn1dn: {exc}") from exc


def build_my_identity(
    spec: IdentifierSpec,
    *,
    certificate: x509.Certificate | None = None,
    local_address: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Identity:
    """Our ID from ``my_identifier``: ``address`` defaults to the local IKE address, ``asn1dn``
    to our certificate's Subject; ``base_dir`` resolves a relative keyid file."""
    kind, value = spec.kind, spec.value
    if kind is IdentifierKind.ADDRESS:
        text = value or local_address
        if text is None:
            raise IdentifierConfigError("my_identifier address: no address given and none known")
        try:
            return Identity.from_address(text)
        except ValueError as exc:
            raise IdentifierConfigError(f"my_identifier address: {exc}") from exc
    if not value and kind is not IdentifierKind.ASN1DN:
        # racoon: "No fqdn" / "Empty fqdn"; an empty key ID is as useless
        raise IdentifierConfigError(f"my_identifier {kind.value} needs a non-empty value")
    if kind is IdentifierKind.FQDN:
        return Identity.fqdn(value or "")
    if kind is IdentifierKind.USER_FQDN:
        return Identity.user_fqdn(value or "")
    if kind is IdentifierKind.KEYID_FILE:
        return Identity.key_id(_read_keyid_file(value or "", base_dir))
    if kind is IdentifierKind.KEYID_TAG:
        return Identity.key_id((value or "").encode("utf-8"))
    if value is not None:
        return Identity.der_asn1_dn(_parse_config_dn(value))
    if certificate is None:
        raise IdentifierConfigError(
            "my_identifier asn1dn without a DN takes the Subject of our certificate, but no "
            'certificate is configured (certificate_type x509 "cert" "key")'
        )
    return Identity.der_asn1_dn(certificate_subject(certificate))


def _fqdn_equal(a: str, b: str) -> bool:
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def _user_fqdn_equal(a: str, b: str) -> bool:
    local_a, _, domain_a = a.rpartition("@")
    local_b, _, domain_b = b.rpartition("@")
    return local_a == local_b and _fqdn_equal(domain_a, domain_b)


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def identifier_matches(
    spec: IdentifierSpec,
    peer: Identity,
    *,
    peer_certificate: x509.Certificate | None = None,
    remote_address: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> bool:
    """Does the peer's ID satisfy one ``peers_identifier`` statement?

    ``address`` without a value means the peer's IKE address; ``asn1dn`` without a value means
    the Subject of the peer's certificate.
    """
    kind, value = spec.kind, spec.value
    if kind is IdentifierKind.ADDRESS:
        text = value or remote_address
        if text is None:
            raise IdentifierConfigError("peers_identifier address: no address given and none known")
        address = Identity.from_address(text)
        # protocol and port are not part of the identity (some peers send UDP/500)
        return (peer.id_type, peer.data) == (address.id_type, address.data)
    if kind is IdentifierKind.ASN1DN:
        name = peer.distinguished_name()
        if name is None:
            return False
        if value is not None:
            return dn_matches(_parse_config_dn(value), name)
        if peer_certificate is None:
            raise IdentifierConfigError(
                "peers_identifier asn1dn without a DN means the Subject of the peer's "
                "certificate, but the peer sent none (and no peers_certfile is configured)"
            )
        return name == certificate_subject(peer_certificate)
    if value is None:
        raise IdentifierConfigError(f"peers_identifier {kind.value} needs a value")
    if kind in (IdentifierKind.KEYID_FILE, IdentifierKind.KEYID_TAG):
        expected = (
            _read_keyid_file(value, base_dir)
            if kind is IdentifierKind.KEYID_FILE
            else value.encode("utf-8")
        )
        return peer.id_type == IdType.ID_KEY_ID and peer.data == expected
    text = _text(peer.data)
    if text is None:
        return False
    if kind is IdentifierKind.FQDN:
        return peer.id_type == IdType.ID_FQDN and _fqdn_equal(text, value)
    return peer.id_type == IdType.ID_USER_FQDN and _user_fqdn_equal(text, value)


def check_peers_identifier(
    peer: Identity,
    specs: Sequence[IdentifierSpec],
    *,
    peer_certificate: x509.Certificate | None = None,
    remote_address: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> IdentifierSpec:
    """``verify_identifier on``: return the first statement the peer's ID matches, else raise
    :class:`~pyracoon.pki.errors.PeerIdentifierMismatchError` listing what was expected."""
    for spec in specs:
        if identifier_matches(
            spec,
            peer,
            peer_certificate=peer_certificate,
            remote_address=remote_address,
            base_dir=base_dir,
        ):
            return spec
    expected = "; ".join(f"peers_identifier {s}" for s in specs) or "no peers_identifier at all"
    raise PeerIdentifierMismatchError(
        "ID value mismatched.", f"peer sent {peer.describe()}, expected one of: {expected}"
    )


#: The subjectAltName entries an ID type is checked against: the kind, named once and plural.
_SAN_KIND: dict[
    IdType, tuple[type[x509.IPAddress] | type[x509.DNSName] | type[x509.RFC822Name], str, str]
] = {
    IdType.ID_IPV4_ADDR: (x509.IPAddress, "IP address", "IP addresses"),
    IdType.ID_IPV6_ADDR: (x509.IPAddress, "IP address", "IP addresses"),
    IdType.ID_FQDN: (x509.DNSName, "DNS name", "DNS names"),
    IdType.ID_USER_FQDN: (x509.RFC822Name, "email address", "email addresses"),
}


def check_id_against_certificate(peer: Identity, certificate: x509.Certificate) -> None:
    """``verify_cert on``: the peer's ID must be what its certificate certifies.

    Raises :class:`~pyracoon.pki.errors.SubjectNameMismatchError` ("ID mismatched with ASN1
    SubjectName."), :class:`~pyracoon.pki.errors.SubjectAltNameMismatchError` ("ID mismatched with
    subjectAltName.") or its subclass :class:`~pyracoon.pki.errors.NoSubjectAltNameError` when the
    certificate has no subjectAltName of the needed kind.
    """
    subject = certificate_subject(certificate)
    if peer.id_type == IdType.ID_DER_ASN1_DN:
        name = peer.distinguished_name()
        if name is None or name != subject:
            dn = name.rfc2253() if name is not None else f"undecodable DER {peer.data.hex()}"
            raise SubjectNameMismatchError(
                "ID mismatched with ASN1 SubjectName.",
                f"peer's ID is '{dn}' but its certificate's subject is '{subject.rfc2253()}'",
            )
        return
    entry = _SAN_KIND.get(peer.id_type)
    if entry is None:
        raise SubjectAltNameMismatchError(
            "ID mismatched with subjectAltName.",
            f"an ID of type {peer.id_type.name} cannot be checked against certificate "
            f"'{subject.rfc2253()}'; use an address, FQDN, user-FQDN or ASN.1 DN identifier",
        )
    san_type, what, whats = entry
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        values = san.get_values_for_type(san_type)
    except x509.ExtensionNotFound:
        values = []
    if peer.id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
        wanted = peer.address()
        matched = wanted is not None and wanted in values
        shown = [str(v) for v in values]
    else:
        text = _text(peer.data)
        compare = _fqdn_equal if peer.id_type == IdType.ID_FQDN else _user_fqdn_equal
        names = [v for v in values if isinstance(v, str)]
        matched = text is not None and any(compare(text, v) for v in names)
        shown = names
    if matched:
        return
    if not shown:
        raise NoSubjectAltNameError(
            "ID mismatched with subjectAltName.",
            f"peer's ID is {peer.describe()} but certificate '{subject.rfc2253()}' has no "
            f"subjectAltName {what}",
        )
    raise SubjectAltNameMismatchError(
        "ID mismatched with subjectAltName.",
        f"peer's ID is {peer.describe()} but certificate '{subject.rfc2253()}' lists only the "
        f"{whats if len(shown) > 1 else what} {', '.join(shown)}",
    )
