"""ISAKMP data attributes (RFC 2408 section 3.3).

An attribute is either *basic* (TV: AF bit set, a 16-bit value in the header) or
*variable* (TLV: AF bit clear, a 16-bit length and that many value bytes).  The
same format carries Oakley phase-1 attributes (RFC 2409 appendix A), IPsec DOI
phase-2 attributes (RFC 2407 section 4.5) and Mode-Config attributes.

The form is kept (``Attribute.basic``) so that a decoded attribute re-encodes to
the very bytes it came from: racoon, for instance, sends a life duration that
fits in 16 bits as TV and a longer one as a 4-byte TLV, and the hashes of
IKEv1 cover the SA payload byte for byte.

Interpreting attribute classes (which must be basic, which values are legal) is
the negotiation engine's job; this module only offers names for logging via
:func:`attribute_name` and :func:`attribute_value_name`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .constants import (
    IPSEC_VALUE_ENUMS,
    OAKLEY_VALUE_ENUMS,
    IPsecAttribute,
    OakleyAttribute,
    display_name,
)
from .errors import EncodeError, MalformedPayload

AF_TV = 0x8000
_TYPE_MASK = 0x7FFF


@dataclass(frozen=True, slots=True)
class Attribute:
    """One data attribute.

    ``value`` is an ``int`` for the basic (TV) form and ``bytes`` for the
    variable (TLV) form; :attr:`as_int` reads either as a number, which is how
    the RFCs let a receiver treat e.g. Life Duration.
    """

    type: int
    value: int | bytes

    @property
    def basic(self) -> bool:
        """True for the TV form (AF bit set)."""
        return isinstance(self.value, int)

    @property
    def as_int(self) -> int:
        """The value as an unsigned big-endian integer, whatever the form."""
        if isinstance(self.value, int):
            return self.value
        return int.from_bytes(self.value, "big")

    @classmethod
    def number(cls, attr_type: int, value: int) -> Attribute:
        """Encode a number the way racoon does: TV when it fits 16 bits, else a 4-byte TLV.

        Values that need more than 32 bits get the shortest big-endian TLV.
        """
        if value < 0:
            raise EncodeError("negative attribute value", payload="Attribute", field="value")
        if value <= 0xFFFF:
            return cls(attr_type, value)
        size = max(4, (value.bit_length() + 7) // 8)
        return cls(attr_type, value.to_bytes(size, "big"))

    def encode(self) -> bytes:
        """The attribute's wire bytes."""
        if not 0 <= self.type <= _TYPE_MASK:
            raise EncodeError(
                f"attribute type {self.type} does not fit 15 bits",
                payload="Attribute",
                field="type",
            )
        if isinstance(self.value, int):
            if not 0 <= self.value <= 0xFFFF:
                raise EncodeError(
                    f"basic attribute value {self.value} does not fit 16 bits",
                    payload="Attribute",
                    field="value",
                )
            return struct.pack("!HH", AF_TV | self.type, self.value)
        if len(self.value) > 0xFFFF:
            raise EncodeError(
                "variable attribute value longer than 65535 bytes",
                payload="Attribute",
                field="length",
            )
        return struct.pack("!HH", self.type, len(self.value)) + bytes(self.value)


def encode_attributes(attributes: Iterable[Attribute]) -> bytes:
    """Concatenate attributes in order."""
    return b"".join(a.encode() for a in attributes)


def decode_attributes(
    data: bytes, start: int, end: int, *, payload: str, base: int = 0
) -> tuple[Attribute, ...]:
    """Decode the attributes filling ``data[start:end]`` exactly.

    ``payload`` names the containing structure and ``base`` is added to offsets
    in errors, so the message says where in the datagram the fault lies.
    """
    out: list[Attribute] = []
    pos = start
    while pos < end:
        if end - pos < 4:
            raise MalformedPayload(
                f"{end - pos} byte(s) left, an attribute header needs 4",
                payload=payload,
                field="attribute",
                offset=base + pos,
            )
        word, lorv = struct.unpack_from("!HH", data, pos)
        attr_type = word & _TYPE_MASK
        if word & AF_TV:
            out.append(Attribute(attr_type, lorv))
            pos += 4
            continue
        if pos + 4 + lorv > end:
            raise MalformedPayload(
                f"attribute type {attr_type} claims {lorv} value bytes, "
                f"only {end - pos - 4} remain",
                payload=payload,
                field="attribute length",
                offset=base + pos + 2,
            )
        out.append(Attribute(attr_type, bytes(data[pos + 4 : pos + 4 + lorv])))
        pos += 4 + lorv
    return tuple(out)


def attribute_name(attr_type: int, *, phase1: bool) -> str:
    """Name an attribute class, Oakley (``phase1=True``) or IPsec DOI."""
    return display_name(OakleyAttribute if phase1 else IPsecAttribute, attr_type)


def attribute_value_name(attr: Attribute, *, phase1: bool) -> str:
    """Render an attribute's value: a symbolic name where the class has one, else the number."""
    table = OAKLEY_VALUE_ENUMS if phase1 else IPSEC_VALUE_ENUMS
    enum_cls = table.get(attr.type)
    if enum_cls is not None and attr.basic:
        return display_name(enum_cls, attr.as_int)
    value = attr.value
    if isinstance(value, int) or len(value) <= 8:
        return str(attr.as_int)
    return "0x" + value.hex()


def describe_attribute(attr: Attribute, *, phase1: bool) -> str:
    """``"Encryption Algorithm=AES-CBC"`` style text for logs."""
    return f"{attribute_name(attr.type, phase1=phase1)}={attribute_value_name(attr, phase1=phase1)}"
