"""Symbolic names: every number renders as racoon / the RFCs spell it, unknowns as UNKNOWN(n)."""

from __future__ import annotations

import pytest
from wire_samples import sample_messages

from pyracoon.wire import (
    AuthenticationMethod,
    EncapsulationMode,
    ExchangeType,
    IDType,
    NattKind,
    NotifyType,
    PayloadType,
    ProtocolID,
    add_non_esp_marker,
    attribute_name,
    attribute_value_name,
    classify_natt,
    decode_message,
    describe_message,
    display_name,
    encode_message,
    transform_name,
)
from pyracoon.wire.attributes import Attribute
from pyracoon.wire.constants import is_error_notify, to_enum


@pytest.mark.parametrize(
    ("enum_cls", "value", "text"),
    [
        (NotifyType, 14, "NO-PROPOSAL-CHOSEN"),
        (NotifyType, 16, "PAYLOAD-MALFORMED"),
        (NotifyType, 1, "INVALID-PAYLOAD-TYPE"),
        (NotifyType, 29, "UNSUPPORTED-EXCHANGE-TYPE"),
        (NotifyType, 30, "UNEQUAL-PAYLOAD-LENGTHS"),
        (NotifyType, 16384, "CONNECTED"),
        (NotifyType, 24576, "RESPONDER-LIFETIME"),
        (NotifyType, 24577, "REPLAY-STATUS"),
        (NotifyType, 24578, "INITIAL-CONTACT"),
        (NotifyType, 36136, "R-U-THERE"),
        (NotifyType, 36137, "R-U-THERE-ACK"),
        (NotifyType, 123, "UNKNOWN(123)"),
        (IDType, 9, "ID_DER_ASN1_DN"),
        (IDType, 1, "ID_IPV4_ADDR"),
        (IDType, 11, "ID_KEY_ID"),
        (IDType, 0, "UNKNOWN(0)"),
        (ExchangeType, 2, "Identity Protection"),
        (ExchangeType, 32, "Quick"),
        (PayloadType, 20, "NAT-D"),
        (PayloadType, 131, "NAT-OA(draft)"),
        (ProtocolID, 3, "PROTO_IPSEC_ESP"),
        (EncapsulationMode, 61443, "UDP-Tunnel(draft)"),
        (EncapsulationMode, 4, "UDP-Transport"),
        (AuthenticationMethod, 65001, "XAuth pskey client"),
        (AuthenticationMethod, 64221, "Hybrid RSA client"),
    ],
)
def test_display_names(enum_cls, value: int, text: str) -> None:
    assert display_name(enum_cls, value) == text


def test_full_rfc2408_notify_table() -> None:
    # RFC 2408 3.14.1 defines every error type 1..30; each has a hyphenated name
    for n in range(1, 31):
        name = display_name(NotifyType, n)
        assert not name.startswith("UNKNOWN") and "_" not in name
        assert is_error_notify(n)
    assert not is_error_notify(NotifyType.R_U_THERE)
    assert f"{NotifyType.INVALID_SPI}" == "INVALID-SPI"
    assert int(NotifyType.INVALID_SPI) == 11


def test_transform_and_attribute_names() -> None:
    assert transform_name(ProtocolID.IPSEC_ESP, 12) == "ESP_AES"
    assert transform_name(ProtocolID.IPSEC_AH, 3) == "AH_SHA"
    assert transform_name(ProtocolID.IPCOMP, 2) == "IPCOMP_DEFLATE"
    assert transform_name(ProtocolID.ISAKMP, 1) == "KEY_IKE"
    assert transform_name(ProtocolID.IPSEC_ESP, 200) == "UNKNOWN(200)"
    assert transform_name(77, 1) == "UNKNOWN(1)"
    assert attribute_name(1, phase1=True) == "Encryption Algorithm"
    assert attribute_name(1, phase1=False) == "SA Life Type"
    assert attribute_value_name(Attribute(1, 7), phase1=True) == "AES-CBC"
    assert attribute_value_name(Attribute(4, 61444), phase1=False) == "UDP-Transport(draft)"
    assert attribute_value_name(Attribute(12, b"\x00\x01\x51\x80"), phase1=True) == "86400"
    assert attribute_value_name(Attribute(6, bytes(range(12))), phase1=True).startswith("0x0001")
    assert to_enum(IDType, 5) is IDType.IPV6_ADDR and to_enum(IDType, 99) == 99


def test_describe_message_uses_names() -> None:
    lines = [line for m in sample_messages() for line in describe_message(m)]
    text = "\n".join(lines)
    for needle in (
        "Encryption Algorithm=AES-CBC",
        "Authentication Algorithm=hmac-sha",
        "N R-U-THERE PROTO_ISAKMP",
        "ID ID_IPV4_ADDR_SUBNET 10.1.0.0/16 proto=6 port=80",
        "ID ID_IPV6_ADDR_RANGE 2001:db8::1-2001:db8::ff",
        "NAT-OA ID_IPV4_ADDR 192.168.1.10",
        "E next=ID 64 bytes of ciphertext",
        "T#1 ESP_AES(",
    ):
        assert needle in text, needle


def test_natt_classification() -> None:
    ike = encode_message(sample_messages()[0])
    kind, inner = classify_natt(add_non_esp_marker(ike))
    assert kind is NattKind.IKE and decode_message(inner) == sample_messages()[0]
    assert classify_natt(b"\xff") == (NattKind.KEEPALIVE, b"")
    esp = b"\xc0\x01\x02\x03" + bytes(12)
    assert classify_natt(esp) == (NattKind.ESP, esp)
