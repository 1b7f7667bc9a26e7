"""Malformed input: each fault raises the one typed error a PAYLOAD-MALFORMED-style notify needs."""

from __future__ import annotations

import struct

import pytest
from wire_samples import ICKY, RCKY, phase1_sa

from pyracoon.wire import (
    SA,
    Attribute,
    BadProposalSyntax,
    DoiNotSupported,
    EncodeError,
    ExchangeType,
    Flag,
    Identification,
    InvalidExchangeType,
    InvalidFlags,
    InvalidIdInformation,
    InvalidMajorVersion,
    InvalidPayloadType,
    InvalidSpi,
    MalformedPayload,
    Message,
    NotifyType,
    PayloadType,
    Proposal,
    SituationNotSupported,
    Transform,
    UnequalPayloadLengths,
    VendorID,
    WireError,
    decode_message,
    decode_payloads,
    encode_message,
)


def header(
    np: int,
    body_len: int,
    *,
    version: int = 0x10,
    etype: int = 2,
    flags: int = 0,
    length: int | None = None,
) -> bytes:
    total = 28 + body_len if length is None else length
    return ICKY + RCKY + struct.pack("!BBBBII", np, version, etype, flags, 0, total)


def message(np: int, body: bytes, **kw: int) -> bytes:
    return header(np, len(body), **kw) + body


def sa_body(proposals: bytes, doi: int = 1, sit: int = 1) -> bytes:
    body = struct.pack("!II", doi, sit) + proposals
    return struct.pack("!BBH", 0, 0, 4 + len(body)) + body


def proposal(
    transforms: bytes, *, np: int = 0, proto: int = 1, spi: bytes = b"", count: int = 1
) -> bytes:
    body = struct.pack("!BBBB", 1, proto, len(spi), count) + spi + transforms
    return struct.pack("!BBH", np, 0, 4 + len(body)) + body


def transform(attrs: bytes = b"\x80\x0b\x00\x01", *, np: int = 0) -> bytes:
    body = struct.pack("!BBH", 1, 1, 0) + attrs
    return struct.pack("!BBH", np, 0, 4 + len(body)) + body


def expect(
    exc: type[WireError], raw: bytes, *, field: str, offset: int | None, notify: NotifyType
) -> WireError:
    with pytest.raises(exc) as info:
        decode_message(raw)
    err = info.value
    assert (err.field, err.offset, err.notify) == (field, offset, notify), str(err)
    return err


def test_short_datagram() -> None:
    for n in (0, 1, 27):
        expect(
            MalformedPayload,
            bytes(n),
            field="length",
            offset=0,
            notify=NotifyType.PAYLOAD_MALFORMED,
        )


def test_major_version() -> None:
    err = expect(
        InvalidMajorVersion,
        header(0, 0, version=0x20),
        field="version",
        offset=17,
        notify=NotifyType.INVALID_MAJOR_VERSION,
    )
    assert "INVALID-MAJOR-VERSION" in str(err)
    expect(
        InvalidMajorVersion,
        header(0, 0, version=0x00),
        field="version",
        offset=17,
        notify=NotifyType.INVALID_MAJOR_VERSION,
    )


def test_minor_version_is_kept_not_checked() -> None:
    raw = header(0, 0, version=0x13)
    msg = decode_message(raw)
    assert (msg.major_version, msg.minor_version) == (1, 3)
    assert encode_message(msg) == raw


@pytest.mark.parametrize("etype", [0, 7, 31, 35, 240, 255])
def test_exchange_type(etype: int) -> None:
    expect(
        InvalidExchangeType,
        header(0, 0, etype=etype),
        field="exchange type",
        offset=18,
        notify=NotifyType.INVALID_EXCHANGE_TYPE,
    )


def test_flags() -> None:
    expect(
        InvalidFlags,
        header(0, 0, flags=0x08),
        field="flags",
        offset=19,
        notify=NotifyType.INVALID_FLAGS,
    )
    assert decode_message(header(0, 0, flags=Flag.COMMIT | Flag.AUTHENTICATION_ONLY)).flags == 6


def test_header_length_must_match_datagram() -> None:
    vid = VendorID(b"x" * 16).encode()
    expect(
        UnequalPayloadLengths,
        header(13, len(vid), length=100) + vid,
        field="length",
        offset=24,
        notify=NotifyType.UNEQUAL_PAYLOAD_LENGTHS,
    )
    expect(
        UnequalPayloadLengths,
        message(13, vid) + b"\x00",
        field="length",
        offset=24,
        notify=NotifyType.UNEQUAL_PAYLOAD_LENGTHS,
    )


@pytest.mark.parametrize("np", [PayloadType.PROPOSAL, PayloadType.TRANSFORM, 17, 99, 200])
def test_invalid_payload_type_in_header(np: int) -> None:
    err = expect(
        InvalidPayloadType,
        message(np, bytes(8)),
        field="next payload",
        offset=16,
        notify=NotifyType.INVALID_PAYLOAD_TYPE,
    )
    assert err.data == bytes([np])


def test_invalid_payload_type_in_chain_points_at_previous_header() -> None:
    vid = bytes([99, 0, 0, 8]) + b"abcd"
    err = expect(
        InvalidPayloadType,
        message(13, vid + bytes(8)),
        field="next payload",
        offset=28,
        notify=NotifyType.INVALID_PAYLOAD_TYPE,
    )
    assert err.payload == "VID"


def test_payload_length_below_minimum_and_overrun() -> None:
    expect(
        MalformedPayload,
        message(13, bytes([0, 0, 0, 3])),
        field="payload length",
        offset=30,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )
    # an SA body needs 8 bytes (DOI + situation)
    expect(
        MalformedPayload,
        message(1, bytes([0, 0, 0, 8]) + bytes(4)),
        field="payload length",
        offset=30,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )
    expect(
        MalformedPayload,
        message(13, bytes([0, 0, 0, 9]) + bytes(4)),
        field="payload length",
        offset=30,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )


def test_announced_payload_missing() -> None:
    vid = bytes([13, 0, 0, 8]) + b"abcd"
    expect(
        MalformedPayload,
        message(13, vid),
        field="generic header",
        offset=36,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )


def test_trailing_bytes_in_plaintext_message() -> None:
    vid = bytes([0, 0, 0, 8]) + b"abcd"
    expect(
        MalformedPayload,
        message(13, vid + b"\x00\x00"),
        field="next payload",
        offset=36,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )


def test_sa_doi_and_situation() -> None:
    expect(
        DoiNotSupported,
        message(1, sa_body(proposal(transform()), doi=0)),
        field="DOI",
        offset=32,
        notify=NotifyType.DOI_NOT_SUPPORTED,
    )
    expect(
        SituationNotSupported,
        message(1, sa_body(proposal(transform()), sit=3)),
        field="situation",
        offset=36,
        notify=NotifyType.SITUATION_NOT_SUPPORTED,
    )


def test_proposal_syntax() -> None:
    bad = NotifyType.BAD_PROPOSAL_SYNTAX
    expect(BadProposalSyntax, message(1, sa_body(b"")), field="proposals", offset=40, notify=bad)
    expect(
        BadProposalSyntax,
        message(1, sa_body(proposal(transform(), np=3))),
        field="next payload",
        offset=40,
        notify=bad,
    )
    expect(
        BadProposalSyntax,
        message(1, sa_body(proposal(transform(), np=2))),
        field="next payload",
        offset=40 + 20,
        notify=bad,
    )
    expect(
        BadProposalSyntax,
        message(1, sa_body(proposal(transform(), count=2))),
        field="number of transforms",
        offset=47,
        notify=bad,
    )
    expect(
        BadProposalSyntax,
        message(1, sa_body(proposal(transform(np=4)))),
        field="next payload",
        offset=48,
        notify=bad,
    )
    expect(
        BadProposalSyntax,
        message(1, sa_body(proposal(transform(np=3)))),
        field="next payload",
        offset=60,
        notify=bad,
    )
    expect(
        BadProposalSyntax,
        message(1, sa_body(proposal(b"", count=0))),
        field="number of transforms",
        offset=47,
        notify=bad,
    )


def test_spi_sizes() -> None:
    expect(
        InvalidSpi,
        message(1, sa_body(proposal(transform(), proto=3, spi=b"abc"))),
        field="SPI size",
        offset=46,
        notify=NotifyType.INVALID_SPI,
    )
    expect(
        InvalidSpi,
        message(1, sa_body(proposal(transform(), proto=1, spi=b"abcd"))),
        field="SPI size",
        offset=46,
        notify=NotifyType.INVALID_SPI,
    )
    # unknown protocol: any size, but it must fit
    expect(
        MalformedPayload,
        message(1, sa_body(bytes([0, 0, 0, 8, 1, 9, 200, 1]))),
        field="SPI size",
        offset=46,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )


def test_attribute_lengths() -> None:
    expect(
        MalformedPayload,
        message(1, sa_body(proposal(transform(b"\x00\x0c\x00\x08abcd")))),
        field="attribute length",
        offset=58,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )
    expect(
        MalformedPayload,
        message(1, sa_body(proposal(transform(b"\x80\x0b")))),
        field="attribute",
        offset=56,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )


def test_identification_sizes_and_types() -> None:
    idp = bytes([0, 0, 0, 13, 1, 0, 0, 0]) + bytes(5)
    expect(
        InvalidIdInformation,
        message(5, idp),
        field="identification data",
        offset=36,
        notify=NotifyType.INVALID_ID_INFORMATION,
    )
    idp = bytes([0, 0, 0, 9, 12, 0, 0, 0, 1])
    expect(
        InvalidIdInformation,
        message(5, idp),
        field="ID type",
        offset=32,
        notify=NotifyType.INVALID_ID_INFORMATION,
    )
    noncontiguous = Identification(4, bytes([10, 0, 0, 0, 255, 0, 255, 0]))
    with pytest.raises(InvalidIdInformation):
        _ = noncontiguous.network
    with pytest.raises(InvalidIdInformation):
        _ = Identification.from_text(2, "x").address


def test_notification_and_delete_sizes() -> None:
    n = bytes([0, 0, 0, 12]) + struct.pack("!IBBH", 1, 1, 16, 36136)
    expect(
        MalformedPayload,
        message(11, n),
        field="SPI size",
        offset=37,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )
    d = bytes([0, 0, 0, 16]) + struct.pack("!IBBH", 1, 3, 4, 2) + bytes(4)
    expect(
        MalformedPayload,
        message(12, d),
        field="number of SPIs",
        offset=38,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )


def test_delete_spi_size_per_protocol() -> None:
    d = bytes([0, 0, 0, 16]) + struct.pack("!IBBH", 1, 1, 4, 1) + bytes(4)
    expect(InvalidSpi, message(12, d), field="SPI size", offset=37, notify=NotifyType.INVALID_SPI)
    d = bytes([0, 0, 0, 20]) + struct.pack("!IBBH", 1, 3, 8, 1) + bytes(8)
    expect(InvalidSpi, message(12, d), field="SPI size", offset=37, notify=NotifyType.INVALID_SPI)


def test_nat_oa_type_and_size() -> None:
    expect(
        InvalidIdInformation,
        message(21, bytes([0, 0, 0, 12, 2, 0, 0, 0]) + bytes(4)),
        field="ID type",
        offset=32,
        notify=NotifyType.INVALID_ID_INFORMATION,
    )
    expect(
        MalformedPayload,
        message(21, bytes([0, 0, 0, 12, 5, 0, 0, 0]) + bytes(4)),
        field="address",
        offset=36,
        notify=NotifyType.PAYLOAD_MALFORMED,
    )


def test_strict_body_rejects_padding() -> None:
    vid = VendorID(b"abcd").encode()
    assert decode_payloads(13, vid + b"\x00\x01").trailing == b"\x00\x01"
    with pytest.raises(MalformedPayload) as info:
        decode_payloads(13, vid + b"\x00\x01", strict=True)
    assert (info.value.field, info.value.offset) == ("padding", 28 + 8)
    with pytest.raises(InvalidPayloadType) as info2:
        decode_payloads(77, vid)
    assert info2.value.offset == 16


def test_error_text_names_payload_field_offset_and_notify() -> None:
    with pytest.raises(WireError) as info:
        decode_message(message(1, sa_body(proposal(transform(), count=2))))
    assert str(info.value).startswith(
        "Proposal #1 number of transforms at offset 47 (BAD-PROPOSAL-SYNTAX): "
    )


def test_encode_errors() -> None:
    with pytest.raises(EncodeError):
        encode_message(Message(b"short", RCKY, ExchangeType.BASE))
    with pytest.raises(EncodeError):
        Attribute(1, 0x10000).encode()
    with pytest.raises(EncodeError):
        SA(()).body_bytes()
    with pytest.raises(EncodeError):
        Proposal(1, 1, b"", ()).encode(0)
    with pytest.raises(EncodeError):
        encode_message(Message(ICKY, RCKY, 2, 0, (phase1_sa(),), Flag.ENCRYPTION))
    with pytest.raises(EncodeError):
        Transform(1, 300).encode(0)
    with pytest.raises(EncodeError):
        VendorID(bytes(70000)).encode()
