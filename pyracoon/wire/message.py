"""ISAKMP messages: the RFC 2408 section 3.1 header plus a payload chain.

A message is either plaintext (its payloads are decoded) or has the E flag set
(RFC 2408 3.1, RFC 2409 5.3), in which case everything after the 28-byte
header is ciphertext: :func:`decode_message` then returns a single
:class:`Encrypted` pseudo-payload holding the header's Next Payload value and
the ciphertext.  Once the engine has decrypted it, :func:`decode_payloads`
decodes the plaintext body starting at that Next Payload.

Header checks follow RFC 2408 section 5.1, in the order racoon applies them
(isakmp_handler, then isakmp_main): the datagram must hold the header and
exactly ``length`` bytes; the major version must be 1 (the minor version is
kept, not checked, like racoon); no flag other than E, C and A may be set; the
exchange type must be an assigned IKEv1 value.  racoon silently drops what
fails these checks; the errors still carry the RFC 5.1 notify type so the
engine can choose to answer or log it.  Semantics that depend on state (cookies, message
ids, the commit bit in phase 1) are the engine's.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from .constants import (
    ALL_FLAGS,
    ISAKMP_HEADER_SIZE,
    MAJOR_VERSION,
    ExchangeType,
    Flag,
    PayloadType,
    display_name,
)
from .errors import (
    EncodeError,
    InvalidExchangeType,
    InvalidFlags,
    InvalidMajorVersion,
    MalformedPayload,
    UnequalPayloadLengths,
)
from .payloads import Payload, decode_chain, encode_chain, first_type

_HEADER = struct.Struct("!8s8sBBBBII")
# A plain int: ~ on an IntFlag complements within the flag's own bits, which would be 0.
_FLAG_MASK = int(ALL_FLAGS)


@dataclass(frozen=True)
class Encrypted:
    """The opaque body of a message with the E flag: ciphertext, announced by ``next_payload``.

    It is not a payload of its own; it stands in a :class:`Message`'s payload
    list so that encrypted and plaintext messages have one shape.
    """

    next_payload: int
    ciphertext: bytes

    @property
    def type(self) -> int:
        return self.next_payload

    @property
    def name(self) -> str:
        return "E"


@dataclass(frozen=True)
class Message:
    """One ISAKMP datagram (RFC 2408 3.1).

    ``payloads`` is the decoded chain, or ``(Encrypted(...),)`` when the E flag
    is set.  The header's Next Payload and Length are derived when encoding.
    """

    initiator_cookie: bytes
    responder_cookie: bytes
    exchange_type: int
    message_id: int = 0
    payloads: tuple[Payload | Encrypted, ...] = ()
    flags: int = 0
    major_version: int = MAJOR_VERSION
    minor_version: int = 0
    #: Original datagram length, kept for logs (not used when encoding).
    length: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.payloads, tuple):
            object.__setattr__(self, "payloads", tuple(self.payloads))

    @property
    def encrypted(self) -> Encrypted | None:
        """The ciphertext body when the E flag is set, else None."""
        if self.payloads and isinstance(self.payloads[0], Encrypted):
            return self.payloads[0]
        return None

    @property
    def cookies(self) -> bytes:
        """CKY-I | CKY-R: the ISAKMP SA index and the SPI of ISAKMP notifies/deletes."""
        return bytes(self.initiator_cookie) + bytes(self.responder_cookie)

    def find(self, cls: type[Payload]) -> Payload | None:
        """The first payload of a class, or None."""
        for p in self.payloads:
            if isinstance(p, cls):
                return p
        return None

    def find_all(self, cls: type[Payload]) -> list[Payload]:
        """All payloads of a class, in order."""
        return [p for p in self.payloads if isinstance(p, cls)]

    def summary(self) -> str:
        """``Identity Protection msgid=0 [SA VID VID]``-style one-liner for logs."""
        names = " ".join(p.name for p in self.payloads)
        return (
            f"{display_name(ExchangeType, self.exchange_type)} "
            f"msgid=0x{self.message_id:08x} flags=0x{self.flags:02x} [{names}]"
        )


def _check_header_fields(msg: Message) -> None:
    if len(msg.initiator_cookie) != 8 or len(msg.responder_cookie) != 8:
        raise EncodeError("cookies must be 8 bytes each", payload="ISAKMP header", field="cookie")
    for name, value, bits in (
        ("exchange type", msg.exchange_type, 8),
        ("flags", msg.flags, 8),
        ("major version", msg.major_version, 4),
        ("minor version", msg.minor_version, 4),
        ("message id", msg.message_id, 32),
    ):
        if not 0 <= value < (1 << bits):
            raise EncodeError(
                f"{value} does not fit {bits} bits", payload="ISAKMP header", field=name
            )


def encode_message(msg: Message) -> bytes:
    """Serialise a message; the inverse of :func:`decode_message`, byte for byte."""
    _check_header_fields(msg)
    enc = msg.encrypted
    if enc is not None:
        if len(msg.payloads) != 1:
            raise EncodeError(
                "an encrypted body must be the only payload",
                payload="ISAKMP header",
                field="payloads",
            )
        if not msg.flags & Flag.ENCRYPTION:
            raise EncodeError(
                "an encrypted body needs the E flag", payload="ISAKMP header", field="flags"
            )
        np, body = enc.next_payload, bytes(enc.ciphertext)
    else:
        if msg.flags & Flag.ENCRYPTION:
            raise EncodeError(
                "E flag set but the body is not ciphertext (encrypt it first)",
                payload="ISAKMP header",
                field="flags",
            )
        plain: list[Payload] = [p for p in msg.payloads if isinstance(p, Payload)]
        np, body = first_type(plain), encode_chain(plain)
    if not 0 <= np <= 0xFF:
        raise EncodeError(
            f"{np} does not fit 8 bits", payload="ISAKMP header", field="next payload"
        )
    header = _HEADER.pack(
        bytes(msg.initiator_cookie),
        bytes(msg.responder_cookie),
        np,
        (msg.major_version << 4) | msg.minor_version,
        msg.exchange_type,
        msg.flags,
        msg.message_id,
        ISAKMP_HEADER_SIZE + len(body),
    )
    return header + body


def decode_message(data: bytes) -> Message:
    """Decode one ISAKMP datagram (without a NAT-T non-ESP marker).

    Raises a :class:`~pyracoon.wire.errors.WireError` subclass, and nothing
    else, for any input that is not a well-formed message.
    """
    data = bytes(data)
    if len(data) < ISAKMP_HEADER_SIZE:
        raise MalformedPayload(
            f"datagram of {len(data)} bytes is shorter than the 28-byte header",
            payload="ISAKMP header",
            field="length",
            offset=0,
        )
    icky, rcky, np, version, etype, flags, msgid, length = _HEADER.unpack_from(data, 0)
    major, minor = version >> 4, version & 0x0F
    if length != len(data):
        raise UnequalPayloadLengths(
            f"header length {length} but the datagram holds {len(data)} bytes",
            payload="ISAKMP header",
            field="length",
            offset=24,
        )
    if major != MAJOR_VERSION:
        raise InvalidMajorVersion(
            f"major version {major} (IKEv1 is 1)",
            payload="ISAKMP header",
            field="version",
            offset=17,
        )
    if flags & ~_FLAG_MASK:
        raise InvalidFlags(
            f"flags 0x{flags:02x} set undefined bits 0x{flags & ~_FLAG_MASK & 0xFF:02x}",
            payload="ISAKMP header",
            field="flags",
            offset=19,
        )
    if etype not in ExchangeType._value2member_map_ or etype == ExchangeType.NONE:
        raise InvalidExchangeType(
            f"exchange type {etype} is not an IKEv1 exchange",
            payload="ISAKMP header",
            field="exchange type",
            offset=18,
        )
    payloads: tuple[Payload | Encrypted, ...]
    if flags & Flag.ENCRYPTION:
        payloads = (Encrypted(np, data[ISAKMP_HEADER_SIZE:]),)
    else:
        chain, end = decode_chain(np, data, ISAKMP_HEADER_SIZE, length, 0, np_offset=16)
        if end != length:
            raise MalformedPayload(
                f"{length - end} byte(s) after the last payload",
                payload=chain[-1].name if chain else "ISAKMP header",
                field="next payload",
                offset=end,
            )
        payloads = tuple(chain)
    return Message(icky, rcky, etype, msgid, payloads, flags, major, minor, length=length)


@dataclass(frozen=True)
class DecryptedBody:
    """The payloads of a decrypted body and the bytes after them (CBC padding)."""

    payloads: tuple[Payload, ...]
    trailing: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.payloads, tuple):
            object.__setattr__(self, "payloads", tuple(self.payloads))

    def encode(self) -> bytes:
        """Payload chain followed by the trailing bytes: the plaintext again."""
        return encode_chain(self.payloads) + self.trailing


def decode_payloads(
    first_payload: int, data: bytes, offset: int = ISAKMP_HEADER_SIZE, *, strict: bool = False
) -> DecryptedBody:
    """Decode a decrypted body: the payload chain announced by the header's Next Payload.

    ``offset`` is where the body starts in the datagram, so error offsets point
    into the datagram.  Bytes after the last payload are the CBC padding of
    RFC 2409 5.3: racoon ignores them unless ``padding { strict_check on; }``,
    so they are returned as ``trailing``; with ``strict=True`` any trailing
    byte raises :class:`MalformedPayload` (the caller strips valid padding
    first).
    """
    data = bytes(data)
    chain, end = decode_chain(first_payload, data, 0, len(data), offset, np_offset=16 - offset)
    trailing = data[end:]
    if strict and trailing:
        raise MalformedPayload(
            f"{len(trailing)} byte(s) after the last payload",
            payload=chain[-1].name if chain else display_name(PayloadType, first_payload),
            field="padding",
            offset=offset + end,
        )
    return DecryptedBody(tuple(chain), trailing)


def chain_bytes(payloads: Sequence[Payload], start: int = 0) -> bytes:
    """The wire bytes of ``payloads[start:]``, generic headers included.

    For decoded payloads these are exactly the bytes received (padding
    excluded): what quick mode HASH(1)/HASH(2) and the informational HASH cover
    after the HASH payload (RFC 2409 5.5 and 5.7), e.g. ``chain_bytes(body.payloads, 1)``.
    """
    return encode_chain(list(payloads)[start:])


def encode_payloads(payloads: Sequence[Payload]) -> tuple[int, bytes]:
    """Encode a plaintext body to encrypt: (Next Payload for the header, chain bytes)."""
    return first_type(payloads), encode_chain(payloads)
