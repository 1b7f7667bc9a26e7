"""Messages built with the codec, covering every payload class; shared by the wire tests."""

from __future__ import annotations

import json
from pathlib import Path

from pyracoon.wire import (
    KE,
    SA,
    Attribute,
    AuthenticationAlgorithm,
    AuthenticationMethod,
    Cert,
    CertEncoding,
    CertRequest,
    ConfigType,
    Delete,
    EncapsulationMode,
    Encrypted,
    EncryptionAlgorithm,
    ESPTransformID,
    ExchangeType,
    Flag,
    Fragment,
    GroupDescription,
    Hash,
    HashAlgorithm,
    Identification,
    IDType,
    IPCompTransformID,
    IPsecAttribute,
    IsakmpTransformID,
    LifeType,
    Message,
    ModeConfig,
    NatD,
    NatOA,
    Nonce,
    Notification,
    NotifyType,
    OakleyAttribute,
    PayloadType,
    Proposal,
    ProtocolID,
    Signature,
    Transform,
    VendorID,
)
from pyracoon.wire.natt import NattKind, classify_natt

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "isakmp"
ICKY = bytes.fromhex("0123456789abcdef")
RCKY = bytes.fromhex("fedcba9876543210")
ZERO_CKY = bytes(8)
DPD_VID = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")
RFC3947_VID = bytes.fromhex("4a131c81070358455c5728f20e95452f")


def real_captures() -> list[dict]:
    """The strongSwan capture documents of tests/data/isakmp (see its README)."""
    return [json.loads(p.read_text()) for p in sorted(DATA_DIR.glob("strongswan-*.json"))]


def ike_scan_datagrams() -> list[bytes]:
    """The MM1/AM1 messages ike-scan built (tests/data/isakmp/ike-scan.json)."""
    doc = json.loads((DATA_DIR / "ike-scan.json").read_text())
    return [bytes.fromhex(p["datagram"]) for p in doc["packets"]]


def real_ike_datagrams(doc: dict) -> list[tuple[int, bytes]]:
    """(frame, ISAKMP message) of a capture: port-4500 ones without their non-ESP marker,
    UDP-encapsulated ESP left out."""
    out = []
    for p in doc["packets"]:
        raw = bytes.fromhex(p["datagram"])
        if p["port"] == 4500:
            kind, raw = classify_natt(raw)
            if kind is not NattKind.IKE:
                continue
        out.append((p["frame"], raw))
    return out


def phase1_sa() -> SA:
    """What racoon proposes for 'aes 256, sha1, rsasig, modp2048' and '3des, md5, psk, modp1024'."""
    t1 = Transform(
        1,
        IsakmpTransformID.KEY_IKE,
        (
            Attribute(OakleyAttribute.LIFE_TYPE, LifeType.SECONDS),
            Attribute.number(OakleyAttribute.LIFE_DURATION, 28800),
            Attribute(OakleyAttribute.ENCRYPTION_ALGORITHM, EncryptionAlgorithm.AES_CBC),
            Attribute(OakleyAttribute.KEY_LENGTH, 256),
            Attribute(OakleyAttribute.AUTHENTICATION_METHOD, AuthenticationMethod.RSA_SIGNATURES),
            Attribute(OakleyAttribute.HASH_ALGORITHM, HashAlgorithm.SHA),
            Attribute(OakleyAttribute.GROUP_DESCRIPTION, GroupDescription.MODP2048),
        ),
    )
    t2 = Transform(
        2,
        IsakmpTransformID.KEY_IKE,
        (
            Attribute(OakleyAttribute.LIFE_TYPE, LifeType.SECONDS),
            Attribute.number(OakleyAttribute.LIFE_DURATION, 86400),  # > 0xffff: 4-byte TLV
            Attribute(OakleyAttribute.ENCRYPTION_ALGORITHM, EncryptionAlgorithm.TRIPLE_DES_CBC),
            Attribute(OakleyAttribute.AUTHENTICATION_METHOD, AuthenticationMethod.PRE_SHARED_KEY),
            Attribute(OakleyAttribute.HASH_ALGORITHM, HashAlgorithm.MD5),
            Attribute(OakleyAttribute.GROUP_DESCRIPTION, GroupDescription.MODP1024),
        ),
    )
    return SA((Proposal(1, ProtocolID.ISAKMP, b"", (t1, t2)),))


def phase2_sa() -> SA:
    """Quick mode SA: proposal #1 = IPCOMP + ESP bundle (UDP tunnel), #2 = ESP alone."""
    esp_attrs = (
        Attribute(IPsecAttribute.SA_LIFE_TYPE, LifeType.SECONDS),
        Attribute(IPsecAttribute.SA_LIFE_DURATION, 3600),
        Attribute(IPsecAttribute.ENCAPSULATION_MODE, EncapsulationMode.UDP_ENCAPSULATED_TUNNEL),
        Attribute(IPsecAttribute.KEY_LENGTH, 128),
        Attribute(IPsecAttribute.AUTHENTICATION_ALGORITHM, AuthenticationAlgorithm.HMAC_SHA),
        Attribute(IPsecAttribute.GROUP_DESCRIPTION, GroupDescription.MODP2048),
    )
    draft_attrs = (
        Attribute(
            IPsecAttribute.ENCAPSULATION_MODE, EncapsulationMode.UDP_ENCAPSULATED_TRANSPORT_DRAFT
        ),
        Attribute(IPsecAttribute.AUTHENTICATION_ALGORITHM, AuthenticationAlgorithm.HMAC_SHA2_256),
    )
    return SA(
        (
            Proposal(
                1,
                ProtocolID.IPCOMP,
                b"\x12\x34",
                (Transform(1, IPCompTransformID.IPCOMP_DEFLATE, esp_attrs[:3]),),
            ),
            Proposal(
                1,
                ProtocolID.IPSEC_ESP,
                b"\xc0\x01\x02\x03",
                (
                    Transform(1, ESPTransformID.ESP_AES, esp_attrs),
                    Transform(2, ESPTransformID.ESP_3DES, esp_attrs[:3] + esp_attrs[4:]),
                ),
            ),
            Proposal(
                2,
                ProtocolID.IPSEC_AH,
                b"\xc0\x01\x02\x04",
                (Transform(1, 5, draft_attrs),),  # AH_SHA2_256
            ),
        )
    )


def all_ids() -> list[Identification]:
    """One Identification of every RFC 2407 4.6.2.1 type."""
    return [
        Identification.from_address("192.0.2.1"),
        Identification.from_text(IDType.FQDN, "host.example.org"),
        Identification.from_text(IDType.USER_FQDN, "user@example.org"),
        Identification.from_network("10.1.0.0/16", protocol_id=6, port=80),
        Identification.from_address("2001:db8::1", protocol_id=17, port=500),
        Identification.from_network("2001:db8:1::/48"),
        Identification.from_range("10.0.0.1", "10.0.0.9"),
        Identification.from_range("2001:db8::1", "2001:db8::ff"),
        Identification(IDType.DER_ASN1_DN, bytes.fromhex("300f310d300b06035504031304686f7374")),
        Identification(IDType.DER_ASN1_GN, bytes.fromhex("8204686f7374")),
        Identification(IDType.KEY_ID, b"\x00\x01key-id"),
    ]


def sample_messages() -> list[Message]:
    """A message per IKEv1 message shape, together using every payload class."""
    sa1, sa2 = phase1_sa(), phase2_sa()
    ids = all_ids()
    mm1 = Message(
        ICKY,
        ZERO_CKY,
        ExchangeType.IDENTITY_PROTECTION,
        0,
        (sa1, VendorID(DPD_VID), VendorID(RFC3947_VID)),
    )
    mm3 = Message(
        ICKY,
        RCKY,
        ExchangeType.IDENTITY_PROTECTION,
        0,
        (
            KE(bytes(range(256)) * 1),
            Nonce(b"\x5a" * 16),
            CertRequest(CertEncoding.X509_SIGNATURE, b""),
            CertRequest(CertEncoding.X509_SIGNATURE, bytes.fromhex("3000")),
            NatD(b"\x11" * 20),
            NatD(b"\x22" * 20, payload_type=PayloadType.NAT_D_DRAFT),
        ),
    )
    am1 = Message(
        ICKY,
        ZERO_CKY,
        ExchangeType.AGGRESSIVE,
        0,
        (sa1, KE(b"\x01" * 128), Nonce(b"\x02" * 20), ids[1], VendorID(DPD_VID)),
    )
    am2 = Message(
        ICKY,
        RCKY,
        ExchangeType.AGGRESSIVE,
        0,
        (
            sa1,
            KE(b"\x03" * 128),
            Nonce(b"\x04" * 20),
            ids[8],
            Cert(CertEncoding.X509_SIGNATURE, b"\x30\x82\x01\x00" + b"\x00" * 256),
            Signature(b"\x05" * 256),
            NatD(b"\x33" * 20),
            NatD(b"\x44" * 20),
        ),
    )
    am3 = Message(ICKY, RCKY, ExchangeType.AGGRESSIVE, 0, (Hash(b"\x06" * 20),))
    # Quick mode plaintext (racoon would encrypt it; the codec does not care).
    qm1 = Message(
        ICKY,
        RCKY,
        ExchangeType.QUICK,
        0x01020304,
        (
            Hash(b"\x07" * 20),
            sa2,
            Nonce(b"\x08" * 16),
            KE(b"\x09" * 256),
            ids[3],
            ids[5],
            NatOA.from_address("192.168.1.10"),
            NatOA.from_address("2001:db8::2", payload_type=PayloadType.NAT_OA_DRAFT),
        ),
    )
    info = Message(
        ICKY,
        RCKY,
        ExchangeType.INFORMATIONAL,
        0xA0B0C0D0,
        (
            Hash(b"\x0a" * 20),
            Notification(
                NotifyType.R_U_THERE, ProtocolID.ISAKMP, ICKY + RCKY, (1234).to_bytes(4, "big")
            ),
            Notification(NotifyType.INITIAL_CONTACT, ProtocolID.ISAKMP, ICKY + RCKY),
            Notification(
                NotifyType.RESPONDER_LIFETIME,
                ProtocolID.IPSEC_ESP,
                b"\xc0\x01\x02\x03",
                Attribute(IPsecAttribute.SA_LIFE_TYPE, 1).encode()
                + Attribute.number(IPsecAttribute.SA_LIFE_DURATION, 100000).encode(),
            ),
            Notification(NotifyType.NO_PROPOSAL_CHOSEN, ProtocolID.IPSEC_ESP, b""),
            Delete(ProtocolID.IPSEC_ESP, (b"\xc0\x01\x02\x03", b"\xc0\x01\x02\x05")),
            Delete(ProtocolID.ISAKMP, (ICKY + RCKY,)),
            Delete(ProtocolID.IPSEC_AH, (), spi_size=4),
        ),
    )
    cfg = Message(
        ICKY,
        RCKY,
        ExchangeType.TRANSACTION,
        0x11111111,
        (
            Hash(b"\x0b" * 20),
            ModeConfig(
                ConfigType.ISAKMP_CFG_REQUEST,
                7,
                (Attribute(1, b""), Attribute(16520, 0), Attribute(16521, b"user")),
            ),
        ),
    )
    frag = Message(
        ICKY, RCKY, ExchangeType.IDENTITY_PROTECTION, 0, (Fragment(1, 2, 1, b"\xee" * 100),)
    )
    encrypted = Message(
        ICKY,
        RCKY,
        ExchangeType.IDENTITY_PROTECTION,
        0,
        (Encrypted(PayloadType.ID, b"\xab" * 64),),
        Flag.ENCRYPTION,
    )
    plain_ids = Message(ICKY, RCKY, ExchangeType.QUICK, 7, tuple(ids))
    return [mm1, mm3, am1, am2, am3, qm1, info, cfg, frag, encrypted, plain_ids]
