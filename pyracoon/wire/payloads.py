"""ISAKMP payloads (RFC 2408 section 3.2-3.16, RFC 2407 section 4.6, RFC 3947 section 3-5).

Every payload starts with the generic header (RFC 2408 3.2): Next Payload (1),
RESERVED (1), Payload Length (2, including the header).  The Next Payload
field belongs to the *chain*, not to the payload, so payload objects do not
store it: :func:`encode_chain` fills it in and :func:`decode_chain` follows it.
The RESERVED byte is kept (``reserved=``) so that a peer's non-zero byte still
round-trips, as do the other RESERVED fields (Transform RESERVED2, NAT-OA and
ATTR reserved bytes).

Payload classes, by RFC section:

=============  ======  ====================================================
class          type    section
=============  ======  ====================================================
SA             1       RFC 2408 3.4, RFC 2407 4.6.1 (situation 4.2)
Proposal       2       RFC 2408 3.5 (only inside SA)
Transform      3       RFC 2408 3.6 (only inside Proposal)
KE             4       RFC 2408 3.7
Identification 5       RFC 2408 3.8, RFC 2407 4.6.2
Cert           6       RFC 2408 3.9
CertRequest    7       RFC 2408 3.10
Hash           8       RFC 2408 3.11
Signature      9       RFC 2408 3.12
Nonce          10      RFC 2408 3.13
Notification   11      RFC 2408 3.14, RFC 2407 4.6.3, RFC 3706
Delete         12      RFC 2408 3.15
VendorID       13      RFC 2408 3.16
ModeConfig     14      draft-dukes-ike-mode-cfg 3.2 (racoon ATTR payload)
NatD           20/130  RFC 3947 3.2 (15: draft-05 number racoon also accepts)
NatOA          21/131  RFC 3947 5.2 (16: draft-05 number)
GSSToken       129     draft-ietf-ipsec-isakmp-gss-auth
Fragment       132     Cisco IKE fragmentation as racoon/strongSwan use it
=============  ======  ====================================================

Payloads are frozen dataclasses: a decoded payload cannot drift from the bytes
it came from, and :meth:`Payload.body_bytes` (the body without the generic
header, which the IKEv1 hashes cover as SAi_b and IDii_b) always equals the
received body, because every field, reserved bits and attribute forms included,
is kept.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Self

from .attributes import Attribute, decode_attributes, encode_attributes
from .constants import (
    DOI,
    GENERIC_HEADER_SIZE,
    IDType,
    PayloadType,
    ProtocolID,
    Situation,
    display_name,
)
from .errors import (
    BadProposalSyntax,
    DoiNotSupported,
    EncodeError,
    InvalidIdInformation,
    InvalidPayloadType,
    InvalidSpi,
    MalformedPayload,
    SituationNotSupported,
)

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _u8(value: int, what: str, payload: str) -> int:
    if not 0 <= value <= 0xFF:
        raise EncodeError(f"{value} does not fit 8 bits", payload=payload, field=what)
    return value


def _u16(value: int, what: str, payload: str) -> int:
    if not 0 <= value <= 0xFFFF:
        raise EncodeError(f"{value} does not fit 16 bits", payload=payload, field=what)
    return value


def _u32(value: int, what: str, payload: str) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise EncodeError(f"{value} does not fit 32 bits", payload=payload, field=what)
    return value


def _freeze(obj: object, *names: str) -> None:
    """Turn list arguments into tuples, so built objects compare equal to decoded ones."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, tuple):
            object.__setattr__(obj, name, tuple(value))


def _generic_header(next_payload: int, reserved: int, body_len: int, name: str) -> bytes:
    total = GENERIC_HEADER_SIZE + body_len
    if total > 0xFFFF:
        raise EncodeError(
            f"payload of {total} bytes exceeds the 16-bit length field",
            payload=name,
            field="payload length",
        )
    return struct.pack(
        "!BBH", _u8(next_payload, "next payload", name), _u8(reserved, "reserved", name), total
    )


# =========================================================================== base classes
@dataclass(frozen=True)
class Payload:
    """Base class of the payloads that may appear in a message's payload chain."""

    #: Next Payload numbers this class decodes; the first is the one it encodes as.
    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = ()
    #: Smallest legal body (payload length minus the 4-byte generic header).
    MIN_BODY: ClassVar[int] = 0

    reserved: int = field(default=0, kw_only=True)

    @property
    def type(self) -> int:
        """The Next Payload value announcing this payload."""
        return self.PAYLOAD_TYPES[0]

    @property
    def name(self) -> str:
        """Short RFC name for logs: ``SA``, ``N``, ``NAT-D`` ..."""
        return display_name(PayloadType, self.type)

    def body_bytes(self) -> bytes:
        """The payload body without the generic header (what SAi_b / IDii_b hash)."""
        raise NotImplementedError

    def encode(self, next_payload: int = PayloadType.NONE) -> bytes:
        """Generic header + body, with ``next_payload`` in the header."""
        body = self.body_bytes()
        return _generic_header(next_payload, self.reserved, len(body), self.name) + body

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        """Build the payload from ``data[start:end]`` (its body); offsets in errors add ``base``."""
        raise NotImplementedError


@dataclass(frozen=True)
class _Opaque(Payload):
    """A payload whose whole body is one opaque octet string."""

    data: bytes = b""

    def body_bytes(self) -> bytes:
        return bytes(self.data)

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        return cls(bytes(data[start:end]), reserved=reserved)


# =========================================================================== SA / P / T
@dataclass(frozen=True)
class Transform:
    """RFC 2408 3.6 Transform payload: number, id, RESERVED2 and SA attributes."""

    number: int
    transform_id: int
    attributes: tuple[Attribute, ...] = ()
    reserved2: int = field(default=0, kw_only=True)
    reserved: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        _freeze(self, "attributes")

    def attribute(self, attr_type: int) -> Attribute | None:
        """The first attribute of class ``attr_type``, if any."""
        for attr in self.attributes:
            if attr.type == attr_type:
                return attr
        return None

    def body_bytes(self) -> bytes:
        name = f"Transform #{self.number}"
        return struct.pack(
            "!BBH",
            _u8(self.number, "transform number", name),
            _u8(self.transform_id, "transform id", name),
            _u16(self.reserved2, "reserved2", name),
        ) + encode_attributes(self.attributes)

    def encode(self, next_payload: int) -> bytes:
        body = self.body_bytes()
        return _generic_header(next_payload, self.reserved, len(body), "Transform") + body


#: RFC 2407 4.6.1 / RFC 2408 3.5 legal SPI sizes per protocol (ISAKMP: 0, or the cookies).
SPI_SIZES: dict[int, tuple[int, ...]] = {
    ProtocolID.ISAKMP: (0, 8, 16),
    ProtocolID.IPSEC_AH: (4,),
    ProtocolID.IPSEC_ESP: (4,),
    ProtocolID.IPCOMP: (2, 4),  # RFC 2407 4.4.1: 2-byte CPI, or 4 with the CPI in the low bytes
}


@dataclass(frozen=True)
class Proposal:
    """RFC 2408 3.5 Proposal payload: number, protocol, SPI and its transforms.

    Proposals with the same number form one AND-ed bundle (e.g. AH and ESP);
    different numbers are alternatives, in the sender's order of preference.
    """

    number: int
    protocol_id: int
    spi: bytes = b""
    transforms: tuple[Transform, ...] = ()
    reserved: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        _freeze(self, "transforms")

    def body_bytes(self) -> bytes:
        name = f"Proposal #{self.number}"
        if not self.transforms:
            raise EncodeError("a proposal needs at least one transform", payload=name)
        parts = [
            struct.pack(
                "!BBBB",
                _u8(self.number, "proposal number", name),
                _u8(self.protocol_id, "protocol id", name),
                _u8(len(self.spi), "SPI size", name),
                _u8(len(self.transforms), "number of transforms", name),
            ),
            bytes(self.spi),
        ]
        last = len(self.transforms) - 1
        for i, t in enumerate(self.transforms):
            parts.append(t.encode(PayloadType.NONE if i == last else PayloadType.TRANSFORM))
        return b"".join(parts)

    def encode(self, next_payload: int) -> bytes:
        body = self.body_bytes()
        return _generic_header(next_payload, self.reserved, len(body), "Proposal") + body


@dataclass(frozen=True)
class SA(Payload):
    """RFC 2408 3.4 / RFC 2407 4.6.1 Security Association payload (IPsec DOI only)."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.SA,)
    MIN_BODY: ClassVar[int] = 8

    proposals: tuple[Proposal, ...] = ()
    doi: int = DOI.IPSEC
    situation: int = Situation.SIT_IDENTITY_ONLY

    def __post_init__(self) -> None:
        _freeze(self, "proposals")

    def proposal_groups(self) -> list[tuple[Proposal, ...]]:
        """Proposals grouped by number (RFC 2408 4.2): each group is one AND-ed offer."""
        groups: list[list[Proposal]] = []
        for p in self.proposals:
            if groups and groups[-1][0].number == p.number:
                groups[-1].append(p)
            else:
                groups.append([p])
        return [tuple(g) for g in groups]

    def body_bytes(self) -> bytes:
        if not self.proposals:
            raise EncodeError("an SA payload needs at least one proposal", payload="SA")
        parts = [struct.pack("!II", _u32(self.doi, "DOI", "SA"), _u32(self.situation, "sit", "SA"))]
        last = len(self.proposals) - 1
        for i, p in enumerate(self.proposals):
            parts.append(p.encode(PayloadType.NONE if i == last else PayloadType.PROPOSAL))
        return b"".join(parts)

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> SA:
        doi, situation = struct.unpack_from("!II", data, start)
        if doi != DOI.IPSEC:
            raise DoiNotSupported(
                f"DOI {doi} (only the IPsec DOI, 1, is spoken)",
                payload="SA",
                field="DOI",
                offset=base + start,
                data=struct.pack("!I", doi),
            )
        if situation & (Situation.SIT_SECRECY | Situation.SIT_INTEGRITY):
            raise SituationNotSupported(
                f"situation 0x{situation:08x} carries secrecy/integrity labels",
                payload="SA",
                field="situation",
                offset=base + start + 4,
                data=struct.pack("!I", situation),
            )
        proposals = _decode_proposals(data, start + 8, end, base)
        return cls(proposals, doi=doi, situation=situation, reserved=reserved)


def _decode_nested_header(
    data: bytes, pos: int, end: int, base: int, what: str, minimum: int
) -> tuple[int, int, int]:
    """Read a Proposal/Transform generic header; return (next payload, reserved, length)."""
    if end - pos < minimum:
        raise MalformedPayload(
            f"{end - pos} byte(s) left, a {what} needs at least {minimum}",
            payload=what,
            field="payload length",
            offset=base + pos,
        )
    np, reserved, length = struct.unpack_from("!BBH", data, pos)
    if length < minimum or pos + length > end:
        raise MalformedPayload(
            f"length {length} is outside {minimum}..{end - pos}",
            payload=what,
            field="payload length",
            offset=base + pos + 2,
        )
    return np, reserved, length


def _decode_proposals(data: bytes, pos: int, end: int, base: int) -> tuple[Proposal, ...]:
    proposals: list[Proposal] = []
    np: int = PayloadType.PROPOSAL  # then whatever number the wire announces
    while pos < end:
        if np != PayloadType.PROPOSAL:
            raise MalformedPayload(
                f"{end - pos} byte(s) after the last proposal",
                payload="SA",
                field="payload length",
                offset=base + pos,
            )
        np_at = pos
        np, reserved, length = _decode_nested_header(data, pos, end, base, "Proposal", 8)
        if np not in (PayloadType.NONE, PayloadType.PROPOSAL):
            raise BadProposalSyntax(
                f"next payload {display_name(PayloadType, np)} inside an SA",
                payload="Proposal",
                field="next payload",
                offset=base + np_at,
            )
        proposals.append(_decode_proposal(data, pos, pos + length, reserved, base))
        pos += length
    if not proposals:
        raise BadProposalSyntax(
            "SA payload carries no proposal", payload="SA", field="proposals", offset=base + pos
        )
    if np != PayloadType.NONE:
        raise BadProposalSyntax(
            "last proposal announces another proposal",
            payload="Proposal",
            field="next payload",
            offset=base + pos,
        )
    return tuple(proposals)


def _decode_proposal(data: bytes, pos: int, end: int, reserved: int, base: int) -> Proposal:
    number, protocol_id, spi_size, num_transforms = struct.unpack_from("!BBBB", data, pos + 4)
    name = f"Proposal #{number}"
    allowed = SPI_SIZES.get(protocol_id)
    if allowed is not None and spi_size not in allowed:
        raise InvalidSpi(
            f"SPI size {spi_size} for {display_name(ProtocolID, protocol_id)} "
            f"(allowed: {', '.join(map(str, allowed))})",
            payload=name,
            field="SPI size",
            offset=base + pos + 6,
        )
    spi_start = pos + 8
    if spi_start + spi_size > end:
        raise MalformedPayload(
            f"SPI of {spi_size} bytes overruns the proposal",
            payload=name,
            field="SPI size",
            offset=base + pos + 6,
        )
    spi = bytes(data[spi_start : spi_start + spi_size])
    tpos = spi_start + spi_size
    transforms: list[Transform] = []
    np: int = PayloadType.TRANSFORM  # then whatever number the wire announces
    while tpos < end:
        if np != PayloadType.TRANSFORM:
            raise MalformedPayload(
                f"{end - tpos} byte(s) after the last transform",
                payload=name,
                field="payload length",
                offset=base + tpos,
            )
        np_at = tpos
        np, t_reserved, length = _decode_nested_header(data, tpos, end, base, "Transform", 8)
        if np not in (PayloadType.NONE, PayloadType.TRANSFORM):
            raise BadProposalSyntax(
                f"next payload {display_name(PayloadType, np)} inside a proposal",
                payload="Transform",
                field="next payload",
                offset=base + np_at,
            )
        t_number, t_id, reserved2 = struct.unpack_from("!BBH", data, tpos + 4)
        attrs = decode_attributes(
            data, tpos + 8, tpos + length, payload=f"Transform #{t_number}", base=base
        )
        transforms.append(
            Transform(t_number, t_id, attrs, reserved2=reserved2, reserved=t_reserved)
        )
        tpos += length
    if len(transforms) != num_transforms or not transforms:
        raise BadProposalSyntax(
            f"header says {num_transforms} transform(s), {len(transforms)} present",
            payload=name,
            field="number of transforms",
            offset=base + pos + 7,
        )
    if np != PayloadType.NONE:
        raise BadProposalSyntax(
            "last transform announces another transform",
            payload=name,
            field="next payload",
            offset=base + tpos,
        )
    return Proposal(number, protocol_id, spi, tuple(transforms), reserved=reserved)


# =========================================================================== simple payloads
@dataclass(frozen=True)
class KE(_Opaque):
    """RFC 2408 3.7 Key Exchange payload (the DH public value, zero-padded to the prime)."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.KE,)


@dataclass(frozen=True)
class Hash(_Opaque):
    """RFC 2408 3.11 Hash payload (HASH_I/HASH_R, quick mode HASH(n))."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.HASH,)


@dataclass(frozen=True)
class Signature(_Opaque):
    """RFC 2408 3.12 Signature payload."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.SIG,)


@dataclass(frozen=True)
class Nonce(_Opaque):
    """RFC 2408 3.13 Nonce payload (Ni_b / Nr_b is :attr:`data`)."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.NONCE,)


@dataclass(frozen=True)
class VendorID(_Opaque):
    """RFC 2408 3.16 Vendor ID payload (DPD, NAT-T, XAUTH, fragmentation capability ...)."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.VENDOR_ID,)


@dataclass(frozen=True)
class GSSToken(_Opaque):
    """draft-ietf-ipsec-isakmp-gss-auth GSS-API token payload (racoon type 129)."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.GSS,)


@dataclass(frozen=True)
class NatD(_Opaque):
    """RFC 3947 3.2 NAT-D payload: HASH(CKY-I | CKY-R | IP | Port).

    ``payload_type`` keeps which number the peer used: 20 (RFC 3947), 130
    (drafts 00-04) or 15 (draft 05+), since the number must be echoed.
    """

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (
        PayloadType.NAT_D,
        PayloadType.NAT_D_DRAFT,
        PayloadType.NAT_D_DRAFT_BAD,
    )
    payload_type: int = field(default=PayloadType.NAT_D, kw_only=True)

    @property
    def type(self) -> int:
        return self.payload_type

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        return cls(bytes(data[start:end]), payload_type=payload_type, reserved=reserved)


# =========================================================================== CERT / CR
@dataclass(frozen=True)
class Cert(Payload):
    """RFC 2408 3.9 Certificate payload: encoding (CertEncoding) and data (e.g. DER X.509)."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.CERT,)
    MIN_BODY: ClassVar[int] = 1

    encoding: int
    data: bytes = b""

    def body_bytes(self) -> bytes:
        return bytes([_u8(self.encoding, "encoding", "CERT")]) + bytes(self.data)

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        return cls(data[start], bytes(data[start + 1 : end]), reserved=reserved)


@dataclass(frozen=True)
class CertRequest(Payload):
    """RFC 2408 3.10 Certificate Request payload: encoding and (DER DN of) an authority."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.CR,)
    MIN_BODY: ClassVar[int] = 1

    encoding: int
    authority: bytes = b""

    def body_bytes(self) -> bytes:
        return bytes([_u8(self.encoding, "encoding", "CR")]) + bytes(self.authority)

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        return cls(data[start], bytes(data[start + 1 : end]), reserved=reserved)


# =========================================================================== ID
#: Exact data length of the address-shaped ID types (RFC 2407 4.6.2.2-4.6.2.11).
ID_DATA_SIZES: dict[int, int] = {
    IDType.IPV4_ADDR: 4,
    IDType.IPV6_ADDR: 16,
    IDType.IPV4_ADDR_SUBNET: 8,
    IDType.IPV6_ADDR_SUBNET: 32,
    IDType.IPV4_ADDR_RANGE: 8,
    IDType.IPV6_ADDR_RANGE: 32,
}


@dataclass(frozen=True)
class Identification(Payload):
    """RFC 2408 3.8 / RFC 2407 4.6.2 Identification payload.

    Phase 1 IDs (IDii/IDir) and quick mode client IDs (IDci/IDcr) share the
    format; the IPsec DOI adds the IP protocol and port (0 = any).  ``data`` is
    the raw identification data; the typed views (:attr:`address`,
    :attr:`network`, :attr:`address_range`, :attr:`text`) interpret it.
    """

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.ID,)
    MIN_BODY: ClassVar[int] = 4

    id_type: int
    data: bytes = b""
    protocol_id: int = 0
    port: int = 0

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_address(cls, address: str | _IPAddress, protocol_id: int = 0, port: int = 0) -> Self:
        """ID_IPV4_ADDR / ID_IPV6_ADDR for one host."""
        addr = ipaddress.ip_address(address)
        id_type = IDType.IPV4_ADDR if addr.version == 4 else IDType.IPV6_ADDR
        return cls(id_type, addr.packed, protocol_id, port)

    @classmethod
    def from_network(cls, network: str | _IPNetwork, protocol_id: int = 0, port: int = 0) -> Self:
        """ID_IPV4_ADDR_SUBNET / ID_IPV6_ADDR_SUBNET: address then mask."""
        net = ipaddress.ip_network(network, strict=False)
        id_type = IDType.IPV4_ADDR_SUBNET if net.version == 4 else IDType.IPV6_ADDR_SUBNET
        return cls(id_type, net.network_address.packed + net.netmask.packed, protocol_id, port)

    @classmethod
    def from_range(
        cls, first: str | _IPAddress, last: str | _IPAddress, protocol_id: int = 0, port: int = 0
    ) -> Self:
        """ID_IPV4_ADDR_RANGE / ID_IPV6_ADDR_RANGE: first then last address."""
        a, b = ipaddress.ip_address(first), ipaddress.ip_address(last)
        if a.version != b.version:
            raise EncodeError("range ends of different families", payload="ID", field="range")
        id_type = IDType.IPV4_ADDR_RANGE if a.version == 4 else IDType.IPV6_ADDR_RANGE
        return cls(id_type, a.packed + b.packed, protocol_id, port)

    @classmethod
    def from_text(cls, id_type: int, text: str, protocol_id: int = 0, port: int = 0) -> Self:
        """ID_FQDN / ID_USER_FQDN / ID_KEY_ID from a string (sent as UTF-8 bytes)."""
        return cls(id_type, text.encode(), protocol_id, port)

    # ---------------------------------------------------------------- typed views
    @property
    def address(self) -> _IPAddress:
        """The host address of an ID_IPV4_ADDR / ID_IPV6_ADDR."""
        if self.id_type not in (IDType.IPV4_ADDR, IDType.IPV6_ADDR):
            raise InvalidIdInformation(
                f"{display_name(IDType, self.id_type)} is not a host address", payload="ID"
            )
        return ipaddress.ip_address(bytes(self.data))

    @property
    def network(self) -> _IPNetwork:
        """The network of a SUBNET ID (or a host ID as a full-length prefix).

        A non-contiguous mask raises :class:`InvalidIdInformation`: racoon can
        express only prefixes in SPD entries.
        """
        if self.id_type in (IDType.IPV4_ADDR, IDType.IPV6_ADDR):
            return ipaddress.ip_network(self.address)
        if self.id_type not in (IDType.IPV4_ADDR_SUBNET, IDType.IPV6_ADDR_SUBNET):
            raise InvalidIdInformation(
                f"{display_name(IDType, self.id_type)} is not a subnet", payload="ID"
            )
        half = len(self.data) // 2
        addr = ipaddress.ip_address(bytes(self.data[:half]))
        mask = int.from_bytes(self.data[half:], "big")
        bits = half * 8
        prefix = bin(mask).count("1")
        if mask != ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1):
            raise InvalidIdInformation(
                f"mask {ipaddress.ip_address(bytes(self.data[half:]))} is not contiguous",
                payload="ID",
                field="mask",
            )
        return ipaddress.ip_network(f"{addr}/{prefix}", strict=False)

    @property
    def address_range(self) -> tuple[_IPAddress, _IPAddress]:
        """(first, last) of an ID_IPV4_ADDR_RANGE / ID_IPV6_ADDR_RANGE."""
        if self.id_type not in (IDType.IPV4_ADDR_RANGE, IDType.IPV6_ADDR_RANGE):
            raise InvalidIdInformation(
                f"{display_name(IDType, self.id_type)} is not a range", payload="ID"
            )
        half = len(self.data) // 2
        return (
            ipaddress.ip_address(bytes(self.data[:half])),
            ipaddress.ip_address(bytes(self.data[half:])),
        )

    @property
    def text(self) -> str:
        """FQDN / USER_FQDN / KEY_ID data as text (undecodable bytes escaped)."""
        return bytes(self.data).decode("utf-8", "backslashreplace")

    def __str__(self) -> str:
        kind = display_name(IDType, self.id_type)
        try:
            if self.id_type in (IDType.IPV4_ADDR, IDType.IPV6_ADDR):
                value = str(self.address)
            elif self.id_type in (IDType.IPV4_ADDR_SUBNET, IDType.IPV6_ADDR_SUBNET):
                value = str(self.network)
            elif self.id_type in (IDType.IPV4_ADDR_RANGE, IDType.IPV6_ADDR_RANGE):
                first, last = self.address_range
                value = f"{first}-{last}"
            elif self.id_type in (IDType.FQDN, IDType.USER_FQDN):
                value = self.text
            else:
                value = bytes(self.data).hex()
        except (InvalidIdInformation, ValueError):
            value = bytes(self.data).hex()
        return f"{kind} {value} proto={self.protocol_id} port={self.port}"

    # ---------------------------------------------------------------- wire
    def body_bytes(self) -> bytes:
        return struct.pack(
            "!BBH",
            _u8(self.id_type, "ID type", "ID"),
            _u8(self.protocol_id, "protocol id", "ID"),
            _u16(self.port, "port", "ID"),
        ) + bytes(self.data)

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        id_type, protocol_id, port = struct.unpack_from("!BBH", data, start)
        value = bytes(data[start + 4 : end])
        if id_type not in IDType._value2member_map_:
            raise InvalidIdInformation(
                f"unknown ID type {id_type}", payload="ID", field="ID type", offset=base + start
            )
        want = ID_DATA_SIZES.get(id_type)
        if want is not None and len(value) != want:
            raise InvalidIdInformation(
                f"{display_name(IDType, id_type)} needs {want} data bytes, got {len(value)}",
                payload="ID",
                field="identification data",
                offset=base + start + 4,
            )
        return cls(id_type, value, protocol_id, port, reserved=reserved)


# =========================================================================== N / D
@dataclass(frozen=True)
class Notification(Payload):
    """RFC 2408 3.14 Notification payload.

    For DPD (RFC 3706) and INITIAL-CONTACT the SPI is the two cookies (16
    bytes) and, for DPD, the data a 32-bit sequence number.
    """

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.NOTIFICATION,)
    MIN_BODY: ClassVar[int] = 8

    notify_type: int
    protocol_id: int = ProtocolID.ISAKMP
    spi: bytes = b""
    data: bytes = b""
    doi: int = DOI.IPSEC

    def body_bytes(self) -> bytes:
        return (
            struct.pack(
                "!IBBH",
                _u32(self.doi, "DOI", "N"),
                _u8(self.protocol_id, "protocol id", "N"),
                _u8(len(self.spi), "SPI size", "N"),
                _u16(self.notify_type, "notify message type", "N"),
            )
            + bytes(self.spi)
            + bytes(self.data)
        )

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        doi, protocol_id, spi_size, notify_type = struct.unpack_from("!IBBH", data, start)
        spi_start = start + 8
        if spi_start + spi_size > end:
            raise MalformedPayload(
                f"SPI of {spi_size} bytes overruns the payload",
                payload="N",
                field="SPI size",
                offset=base + start + 5,
            )
        return cls(
            notify_type,
            protocol_id,
            bytes(data[spi_start : spi_start + spi_size]),
            bytes(data[spi_start + spi_size : end]),
            doi,
            reserved=reserved,
        )


#: RFC 2408 3.15: an ISAKMP SA is deleted by its cookie pair; racoon's isakmp_info_recv_d
#: drops other sizes, as it does for AH/ESP SPIs that are not 4 bytes.
DELETE_SPI_SIZES: dict[int, tuple[int, ...]] = {
    ProtocolID.ISAKMP: (16,),
    ProtocolID.IPSEC_AH: (4,),
    ProtocolID.IPSEC_ESP: (4,),
    ProtocolID.IPCOMP: (2, 4),
}


@dataclass(frozen=True)
class Delete(Payload):
    """RFC 2408 3.15 Delete payload: SPIs of one protocol, all of one size.

    ``spi_size`` is derived from the SPIs unless given; it must be given to
    express a Delete with no SPI at all.
    """

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.DELETE,)
    MIN_BODY: ClassVar[int] = 8

    protocol_id: int
    spis: tuple[bytes, ...] = ()
    doi: int = DOI.IPSEC
    spi_size: int | None = None

    def __post_init__(self) -> None:
        # Normalise so that a built Delete equals its decoded copy.
        _freeze(self, "spis")
        if self.spi_size is None:
            object.__setattr__(self, "spi_size", len(self.spis[0]) if self.spis else 0)

    def _size(self) -> int:
        size = self.spi_size or 0
        for spi in self.spis:
            if len(spi) != size:
                raise EncodeError("SPIs of different sizes", payload="D", field="SPI size")
        return size

    def body_bytes(self) -> bytes:
        return struct.pack(
            "!IBBH",
            _u32(self.doi, "DOI", "D"),
            _u8(self.protocol_id, "protocol id", "D"),
            _u8(self._size(), "SPI size", "D"),
            _u16(len(self.spis), "number of SPIs", "D"),
        ) + b"".join(bytes(s) for s in self.spis)

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        doi, protocol_id, spi_size, count = struct.unpack_from("!IBBH", data, start)
        allowed = DELETE_SPI_SIZES.get(protocol_id)
        if allowed is not None and spi_size not in allowed:
            raise InvalidSpi(
                f"SPI size {spi_size} for {display_name(ProtocolID, protocol_id)} "
                f"(allowed: {', '.join(map(str, allowed))})",
                payload="D",
                field="SPI size",
                offset=base + start + 5,
            )
        rest = end - (start + 8)
        if spi_size * count != rest:
            raise MalformedPayload(
                f"{count} SPI(s) of {spi_size} bytes need {spi_size * count} bytes, "
                f"payload holds {rest}",
                payload="D",
                field="number of SPIs",
                offset=base + start + 6,
            )
        pos = start + 8
        spis = tuple(
            bytes(data[pos + i * spi_size : pos + (i + 1) * spi_size]) for i in range(count)
        )
        return cls(protocol_id, spis, doi, spi_size, reserved=reserved)


# =========================================================================== NAT-OA
@dataclass(frozen=True)
class NatOA(Payload):
    """RFC 3947 5.2 NAT-OA payload: ID type (IPV4_ADDR/IPV6_ADDR), 3 reserved bytes, address."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (
        PayloadType.NAT_OA,
        PayloadType.NAT_OA_DRAFT,
        PayloadType.NAT_OA_DRAFT_BAD,
    )
    MIN_BODY: ClassVar[int] = 4

    id_type: int
    address_bytes: bytes
    reserved3: int = field(default=0, kw_only=True)
    payload_type: int = field(default=PayloadType.NAT_OA, kw_only=True)

    @property
    def type(self) -> int:
        return self.payload_type

    @classmethod
    def from_address(cls, address: str | _IPAddress, **kw: int) -> NatOA:
        addr = ipaddress.ip_address(address)
        return cls(IDType.IPV4_ADDR if addr.version == 4 else IDType.IPV6_ADDR, addr.packed, **kw)

    @property
    def address(self) -> _IPAddress:
        return ipaddress.ip_address(bytes(self.address_bytes))

    def body_bytes(self) -> bytes:
        if not 0 <= self.reserved3 <= 0xFFFFFF:
            raise EncodeError("does not fit 24 bits", payload="NAT-OA", field="reserved3")
        head = struct.pack("!I", (_u8(self.id_type, "ID type", "NAT-OA") << 24) | self.reserved3)
        return head + bytes(self.address_bytes)

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        (word,) = struct.unpack_from("!I", data, start)
        id_type = word >> 24
        value = bytes(data[start + 4 : end])
        want = {IDType.IPV4_ADDR: 4, IDType.IPV6_ADDR: 16}.get(id_type)
        if want is None:
            raise InvalidIdInformation(
                f"NAT-OA address type {display_name(IDType, id_type)}",
                payload="NAT-OA",
                field="ID type",
                offset=base + start,
            )
        if len(value) != want:
            raise MalformedPayload(
                f"{display_name(IDType, id_type)} needs {want} bytes, got {len(value)}",
                payload="NAT-OA",
                field="address",
                offset=base + start + 4,
            )
        return cls(
            id_type,
            value,
            reserved3=word & 0xFFFFFF,
            payload_type=payload_type,
            reserved=reserved,
        )


# =========================================================================== ATTR / FRAG
@dataclass(frozen=True)
class ModeConfig(Payload):
    """Mode-Config ATTR payload (draft-dukes-ike-mode-cfg 3.2): type, identifier, attributes."""

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.ATTRIBUTE,)
    MIN_BODY: ClassVar[int] = 4

    cfg_type: int
    identifier: int = 0
    attributes: tuple[Attribute, ...] = ()
    reserved2: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        _freeze(self, "attributes")

    def body_bytes(self) -> bytes:
        return struct.pack(
            "!BBH",
            _u8(self.cfg_type, "type", "ATTR"),
            _u8(self.reserved2, "reserved", "ATTR"),
            _u16(self.identifier, "identifier", "ATTR"),
        ) + encode_attributes(self.attributes)

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        cfg_type, reserved2, identifier = struct.unpack_from("!BBH", data, start)
        attrs = decode_attributes(data, start + 4, end, payload="ATTR", base=base)
        return cls(cfg_type, identifier, attrs, reserved2=reserved2, reserved=reserved)


FRAGMENT_LAST = 0x01


@dataclass(frozen=True)
class Fragment(Payload):
    """IKE fragmentation payload (type 132): fragment id, number (from 1), flags, data.

    The message that carries it has no E flag; the data of all fragments, in
    number order, is the complete (usually encrypted) original datagram.
    """

    PAYLOAD_TYPES: ClassVar[tuple[int, ...]] = (PayloadType.FRAGMENT,)
    MIN_BODY: ClassVar[int] = 4

    fragment_id: int
    number: int
    flags: int = 0
    data: bytes = b""

    @property
    def last(self) -> bool:
        return bool(self.flags & FRAGMENT_LAST)

    def body_bytes(self) -> bytes:
        return struct.pack(
            "!HBB",
            _u16(self.fragment_id, "fragment id", "FRAG"),
            _u8(self.number, "fragment number", "FRAG"),
            _u8(self.flags, "flags", "FRAG"),
        ) + bytes(self.data)

    @classmethod
    def decode_body(
        cls, payload_type: int, data: bytes, start: int, end: int, reserved: int, base: int
    ) -> Payload:
        fragment_id, number, flags = struct.unpack_from("!HBB", data, start)
        return cls(fragment_id, number, flags, bytes(data[start + 4 : end]), reserved=reserved)


# =========================================================================== chains
PAYLOAD_CLASSES: dict[int, type[Payload]] = {}
for _cls in (
    SA, KE, Identification, Cert, CertRequest, Hash, Signature, Nonce, Notification, Delete,
    VendorID, ModeConfig, NatD, NatOA, GSSToken, Fragment,
):  # fmt: skip
    for _t in _cls.PAYLOAD_TYPES:
        PAYLOAD_CLASSES[_t] = _cls


def encode_chain(payloads: Sequence[Payload]) -> bytes:
    """Encode payloads in order, each header's Next Payload naming the one after it."""
    parts = []
    for i, p in enumerate(payloads):
        nxt = payloads[i + 1].type if i + 1 < len(payloads) else PayloadType.NONE
        parts.append(p.encode(nxt))
    return b"".join(parts)


def first_type(payloads: Sequence[Payload]) -> int:
    """The Next Payload value announcing a chain (NONE when empty)."""
    return payloads[0].type if payloads else PayloadType.NONE


def decode_chain(
    first: int, data: bytes, start: int, end: int, base: int, *, np_offset: int | None = None
) -> tuple[list[Payload], int]:
    """Decode the payload chain announced by ``first`` in ``data[start:end]``.

    Returns the payloads and the position after the last one; the caller
    decides whether bytes after it (padding of a decrypted body) are allowed.
    ``np_offset`` is where the announcing Next Payload field lies, for errors.
    """
    payloads: list[Payload] = []
    np = first
    pos = start
    while np != PayloadType.NONE:
        cls = PAYLOAD_CLASSES.get(np)
        if cls is None:
            raise InvalidPayloadType(
                f"next payload {display_name(PayloadType, np)} is not allowed here",
                payload=payloads[-1].name if payloads else "ISAKMP header",
                field="next payload",
                offset=None if np_offset is None else base + np_offset,
                data=bytes([np & 0xFF]),
            )
        name = display_name(PayloadType, np)
        if end - pos < GENERIC_HEADER_SIZE:
            raise MalformedPayload(
                f"announced, but only {end - pos} byte(s) remain",
                payload=name,
                field="generic header",
                offset=base + pos,
            )
        nxt, reserved, length = struct.unpack_from("!BBH", data, pos)
        if length < GENERIC_HEADER_SIZE + cls.MIN_BODY:
            raise MalformedPayload(
                f"length {length} is below the minimum {GENERIC_HEADER_SIZE + cls.MIN_BODY}",
                payload=name,
                field="payload length",
                offset=base + pos + 2,
            )
        if pos + length > end:
            raise MalformedPayload(
                f"length {length} overruns the message by {pos + length - end} byte(s)",
                payload=name,
                field="payload length",
                offset=base + pos + 2,
            )
        payloads.append(
            cls.decode_body(np, data, pos + GENERIC_HEADER_SIZE, pos + length, reserved, base)
        )
        np_offset = pos
        np = nxt
        pos += length
    return payloads, pos


def payloads_of(payloads: Iterable[Payload], cls: type[Payload]) -> list[Payload]:
    """All payloads of one class, in order."""
    return [p for p in payloads if isinstance(p, cls)]
