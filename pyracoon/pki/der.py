"""Just enough DER to slice and build TLVs.

Why not only pyasn1: the IKE ID payload and the CERT-REQUEST carry a Name *exactly as it was
encoded*; re-encoding through a parser can change those bytes (and so change hashes and equality).
These helpers take the raw issuer/subject out of a TBSCertificate and build the few TLVs of the
canonical name encoding without any round trip.
"""

from __future__ import annotations

from dataclasses import dataclass


class DerError(ValueError):
    """Malformed DER; ``offset`` is where the bad TLV starts."""

    def __init__(self, message: str, offset: int) -> None:
        self.offset = offset
        super().__init__(f"{message} (at offset {offset})")


@dataclass(frozen=True)
class Tlv:
    """One TLV inside a buffer: ``data[start:end]`` is the whole thing, ``content`` its value."""

    tag: int  # the identifier octet (single-byte tags only; X.509 never needs more)
    start: int
    header_len: int
    end: int
    data: bytes

    @property
    def content(self) -> bytes:
        return self.data[self.start + self.header_len : self.end]

    @property
    def raw(self) -> bytes:
        return self.data[self.start : self.end]


def read_tlv(data: bytes, offset: int = 0) -> Tlv:
    """Read the TLV starting at ``offset`` (definite lengths only, as DER requires)."""
    if offset + 2 > len(data):
        raise DerError("truncated TLV header", offset)
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not supported", offset)
    first = data[offset + 1]
    if first < 0x80:
        length, header = first, 2
    elif first == 0x80:
        raise DerError("indefinite length is not DER", offset)
    else:
        n = first & 0x7F
        if n > 4 or offset + 2 + n > len(data):
            raise DerError("bad long-form length", offset)
        length = int.from_bytes(data[offset + 2 : offset + 2 + n], "big")
        header = 2 + n
    end = offset + header + length
    if end > len(data):
        raise DerError(f"TLV length {length} runs past the end of the data", offset)
    return Tlv(tag, offset, header, end, data)


def children(tlv: Tlv) -> list[Tlv]:
    """The TLVs directly inside a constructed TLV."""
    out: list[Tlv] = []
    pos = tlv.start + tlv.header_len
    while pos < tlv.end:
        child = read_tlv(tlv.data[: tlv.end], pos)
        out.append(child)
        pos = child.end
    return out


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


def tbs_issuer_and_subject(tbs_certificate: bytes) -> tuple[bytes, bytes]:
    """Return the raw DER of ``issuer`` and ``subject`` of a TBSCertificate (RFC 5280 4.1)."""
    outer = read_tlv(tbs_certificate)
    fields = children(outer)
    index = 1 if fields and fields[0].tag == 0xA0 else 0  # skip [0] EXPLICIT version
    # serialNumber, signature, issuer, validity, subject
    if len(fields) < index + 5:
        raise DerError("TBSCertificate has too few fields", 0)
    return fields[index + 2].raw, fields[index + 4].raw
