"""Fixed byte layouts written out by hand from the RFC 2408/2407/3947/3706 diagrams."""

from __future__ import annotations

import pytest

from pyracoon.wire import (
    SA,
    Attribute,
    CertEncoding,
    CertRequest,
    ConfigType,
    Delete,
    ExchangeType,
    Fragment,
    Identification,
    IDType,
    Message,
    ModeConfig,
    NatD,
    NatOA,
    Notification,
    NotifyType,
    PayloadType,
    Proposal,
    ProtocolID,
    Transform,
    VendorID,
    decode_message,
    decode_payloads,
    encode_message,
)


def h(text: str) -> bytes:
    """Hex with whitespace and ``#`` comments (to the end of the line) ignored."""
    return bytes.fromhex("".join("".join(line.split("#")[0].split()) for line in text.splitlines()))


ICKY = h("0123456789abcdef")


def test_header_and_vendor_id_layout() -> None:
    # RFC 2408 3.1: cookies, NP, version 1.0, exchange type, flags, message id, length
    # RFC 2408 3.16: generic header + vendor id bytes
    raw = h(
        """
        0123456789abcdef 0000000000000000
        0d 10 02 00 00000000 00000030
        00 00 0014 afcad71368a1f1c96b8696fc77570100
        """
    )
    msg = Message(
        ICKY,
        bytes(8),
        ExchangeType.IDENTITY_PROTECTION,
        0,
        (VendorID(h("afcad71368a1f1c96b8696fc77570100")),),
    )
    assert encode_message(msg) == raw
    assert decode_message(raw) == msg


SA_BYTES = h(
    """
    00 00 0028                       # SA: generic header, length 40
    00000001 00000001                # DOI = IPsec, SIT_IDENTITY_ONLY
      00 00 001c 01 01 00 01         # Proposal #1, PROTO_ISAKMP, SPI size 0, 1 transform
        00 00 0014 01 01 0000        # Transform #1, KEY_IKE, RESERVED2
          800b 0001                  # Life Type = seconds (TV)
          000c 0004 00015180         # Life Duration = 86400 (TLV, 4 bytes)
    """
)


def test_sa_proposal_transform_layout() -> None:
    sa = SA(
        (
            Proposal(
                1,
                ProtocolID.ISAKMP,
                b"",
                (Transform(1, 1, (Attribute(11, 1), Attribute.number(12, 86400))),),
            ),
        )
    )
    assert sa.encode(PayloadType.NONE) == SA_BYTES
    assert sa.body_bytes() == SA_BYTES[4:]
    body = decode_payloads(PayloadType.SA, SA_BYTES, strict=True)
    assert body.payloads == (sa,)


def test_esp_proposal_with_spi_layout() -> None:
    raw = h(
        """
        00 00 0024 00000001 00000001
        00 00 0018 01 03 04 01 c0010203
        00 00 000c 01 0c 0000 8004 0001
        """
    )
    # Transform ESP_AES with Encapsulation Mode = Tunnel; proposal length 8+4+12 = 24
    sa = SA(
        (Proposal(1, ProtocolID.IPSEC_ESP, h("c0010203"), (Transform(1, 12, (Attribute(4, 1),)),)),)
    )
    assert sa.encode() == raw
    assert decode_payloads(PayloadType.SA, raw).payloads == (sa,)


@pytest.mark.parametrize(
    ("ident", "body"),
    [
        (Identification.from_address("10.0.0.1"), "01 00 0000 0a000001"),
        (Identification.from_text(IDType.FQDN, "a.b"), "02 00 0000 612e62"),
        (Identification.from_text(IDType.USER_FQDN, "u@b"), "03 00 0000 754062"),
        (Identification.from_network("10.0.0.0/24", 17, 500), "04 11 01f4 0a000000 ffffff00"),
        (Identification.from_address("::1"), "05 00 0000" + "00" * 15 + "01"),
        (
            Identification.from_network("2001:db8::/32"),
            "06 00 0000 20010db8" + "00" * 12 + "ffffffff" + "00" * 12,
        ),
        (Identification.from_range("10.0.0.1", "10.0.0.2", 6, 80), "07 06 0050 0a000001 0a000002"),
        (
            Identification.from_range("::1", "::2"),
            "08 00 0000" + "00" * 15 + "01" + "00" * 15 + "02",
        ),
        (Identification(IDType.DER_ASN1_DN, h("3000")), "09 00 0000 3000"),
        (Identification(IDType.DER_ASN1_GN, h("8201 61")), "0a 00 0000 820161"),
        (Identification(IDType.KEY_ID, b"k"), "0b 00 0000 6b"),
    ],
)
def test_identification_layouts(ident: Identification, body: str) -> None:
    # RFC 2407 4.6.2: ID type, Protocol ID, Port, Identification Data
    assert ident.body_bytes() == h(body)
    raw = ident.encode()
    assert raw[:4] == bytes([0, 0]) + (4 + len(h(body))).to_bytes(2, "big")
    assert decode_payloads(PayloadType.ID, raw, strict=True).payloads == (ident,)


def test_dpd_notify_layout() -> None:
    # RFC 3706 5: DOI, PROTO_ISAKMP, SPI size 16, R-U-THERE, CKY-I|CKY-R, sequence number
    cookies = ICKY + h("fedcba9876543210")
    raw = h("00 00 0020 00000001 01 10 8d28") + cookies + h("000004d2")
    n = Notification(NotifyType.R_U_THERE, ProtocolID.ISAKMP, cookies, h("000004d2"))
    assert n.encode() == raw
    (decoded,) = decode_payloads(PayloadType.NOTIFICATION, raw).payloads
    assert decoded == n
    assert str(NotifyType(decoded.notify_type)) == "R-U-THERE"


def test_delete_layout() -> None:
    # RFC 2408 3.15: DOI, Protocol-Id, SPI size, # of SPIs, SPIs
    raw = h("00 00 0014 00000001 03 04 0002 c0010203 c0010204")
    d = Delete(ProtocolID.IPSEC_ESP, (h("c0010203"), h("c0010204")))
    assert d.encode() == raw
    assert decode_payloads(PayloadType.DELETE, raw).payloads == (d,)


def test_nat_payload_layouts() -> None:
    # RFC 3947 3.2 NAT-D (type 20) and 5.2 NAT-OA (type 21): ID type, 3 reserved bytes, address
    natd = NatD(b"\x01" * 20)
    assert natd.encode(PayloadType.NAT_OA) == h("15 00 0018") + b"\x01" * 20
    oa = NatOA.from_address("192.168.1.10")
    assert oa.encode() == h("00 00 000c 01 000000 c0a8010a")
    raw = natd.encode(PayloadType.NAT_OA) + oa.encode()
    assert decode_payloads(PayloadType.NAT_D, raw).payloads == (natd, oa)
    draft = NatD(b"\x02" * 16, payload_type=PayloadType.NAT_D_DRAFT)
    assert draft.type == 130
    assert decode_payloads(130, draft.encode()).payloads == (draft,)


def test_cert_request_mode_config_fragment_layouts() -> None:
    cr = CertRequest(CertEncoding.X509_SIGNATURE, h("3000"))
    assert cr.encode() == h("00 00 0007 04 3000")
    cfg = ModeConfig(ConfigType.ISAKMP_CFG_REQUEST, 7, (Attribute(1, b""), Attribute(16520, 0)))
    assert cfg.encode() == h("00 00 0010 01 00 0007 0001 0000 c088 0000")
    frag = Fragment(1, 2, 1, h("abcd"))
    assert frag.encode() == h("00 00 000a 0001 02 01 abcd")
    assert frag.last
    chain = cr.encode(PayloadType.ATTRIBUTE) + cfg.encode(PayloadType.FRAGMENT) + frag.encode()
    assert decode_payloads(PayloadType.CR, chain, strict=True).payloads == (cr, cfg, frag)


def test_reserved_bytes_round_trip() -> None:
    """A peer's non-zero RESERVED bytes are kept, so hashes over its bytes still match."""
    raw = h("00 7f 000c 01 ffffff c0a8010a")
    (oa,) = decode_payloads(PayloadType.NAT_OA, raw).payloads
    assert (oa.reserved, oa.reserved3) == (0x7F, 0xFFFFFF)
    assert oa.encode() == raw
    t = h(
        "00 00 0028 00000001 00000001 00 01 001c 01 01 00 01 00 02 0014 01 01 abcd"
        "800b0001 000c000400015180"
    )
    (sa,) = decode_payloads(PayloadType.SA, t).payloads
    assert sa.proposals[0].reserved == 1
    assert sa.proposals[0].transforms[0].reserved == 2
    assert sa.proposals[0].transforms[0].reserved2 == 0xABCD
    assert sa.encode() == t
