"""Round trips of messages built with the codec: object -> bytes -> object -> same bytes."""

from __future__ import annotations

import pytest
from wire_samples import ICKY, RCKY, all_ids, phase1_sa, phase2_sa, sample_messages

from pyracoon.wire import (
    SA,
    Attribute,
    DecryptedBody,
    Encrypted,
    Hash,
    Identification,
    IDType,
    Message,
    Nonce,
    PayloadType,
    Proposal,
    Transform,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from pyracoon.wire.constants import ISAKMP_HEADER_SIZE

MESSAGES = sample_messages()


@pytest.mark.parametrize("msg", MESSAGES, ids=[m.summary() for m in MESSAGES])
def test_message_round_trip(msg: Message) -> None:
    raw = encode_message(msg)
    decoded = decode_message(raw)
    assert decoded == msg
    assert decoded.length == len(raw)
    assert encode_message(decoded) == raw


def test_every_payload_class_is_exercised() -> None:
    seen = {type(p).__name__ for m in MESSAGES for p in m.payloads}
    assert seen >= {
        "SA", "KE", "Identification", "Cert", "CertRequest", "Hash", "Signature", "Nonce",
        "Notification", "Delete", "VendorID", "NatD", "NatOA", "ModeConfig", "Fragment",
        "Encrypted",
    }  # fmt: skip


def test_body_bytes_is_the_encoded_payload_minus_generic_header() -> None:
    for msg in MESSAGES:
        for p in msg.payloads:
            if isinstance(p, Encrypted):
                continue
            full = p.encode(PayloadType.NONE)
            assert full[4:] == p.body_bytes()
            assert int.from_bytes(full[2:4], "big") == len(full)


def test_sa_body_bytes_are_the_received_bytes() -> None:
    """SAi_b (RFC 2409 5) must be exactly what the peer sent, not a re-rendering."""
    raw = encode_message(MESSAGES[0])
    sa = decode_message(raw).find(SA)
    assert sa is not None
    length = int.from_bytes(raw[ISAKMP_HEADER_SIZE + 2 : ISAKMP_HEADER_SIZE + 4], "big")
    assert sa.body_bytes() == raw[ISAKMP_HEADER_SIZE + 4 : ISAKMP_HEADER_SIZE + length]


def test_tv_and_tlv_forms_are_kept() -> None:
    sa = phase1_sa()
    life = [t.attribute(12) for t in sa.proposals[0].transforms]
    assert life[0] == Attribute(12, 28800) and life[0].basic
    assert life[1] == Attribute(12, (86400).to_bytes(4, "big")) and not life[1].basic
    assert life[1].as_int == 86400
    # a small value deliberately sent as TLV stays TLV
    odd = Attribute(12, (300).to_bytes(4, "big"))
    assert odd.encode() == bytes.fromhex("000c0004 0000012c".replace(" ", ""))


def test_proposal_groups_follow_proposal_numbers() -> None:
    groups = phase2_sa().proposal_groups()
    assert [[p.protocol_id for p in g] for g in groups] == [[4, 3], [2]]


def test_decrypted_body_round_trip_keeps_padding() -> None:
    payloads = [Hash(b"\x01" * 20), phase2_sa(), Nonce(b"\x02" * 16), *all_ids()[3:5]]
    first, chain = encode_payloads(payloads)
    assert first == PayloadType.HASH
    padded = chain + bytes(7) + b"\x07"
    body = decode_payloads(first, padded)
    assert body == DecryptedBody(tuple(payloads), bytes(7) + b"\x07")
    assert body.encode() == padded
    assert decode_payloads(first, chain, strict=True).trailing == b""


def test_identification_views() -> None:
    ids = {i.id_type: i for i in all_ids()}
    assert str(ids[IDType.IPV4_ADDR].address) == "192.0.2.1"
    assert str(ids[IDType.IPV4_ADDR_SUBNET].network) == "10.1.0.0/16"
    assert ids[IDType.IPV4_ADDR_SUBNET].protocol_id == 6
    assert str(ids[IDType.IPV6_ADDR_SUBNET].network) == "2001:db8:1::/48"
    first, last = ids[IDType.IPV6_ADDR_RANGE].address_range
    assert (str(first), str(last)) == ("2001:db8::1", "2001:db8::ff")
    assert ids[IDType.USER_FQDN].text == "user@example.org"
    assert str(ids[IDType.FQDN]) == "ID_FQDN host.example.org proto=0 port=0"
    assert str(ids[IDType.IPV4_ADDR].network) == "192.0.2.1/32"


def test_encrypted_message_keeps_next_payload_and_ciphertext() -> None:
    msg = MESSAGES[-2]
    raw = encode_message(msg)
    assert raw[16] == PayloadType.ID and raw[19] == 0x01
    enc = decode_message(raw).encrypted
    assert enc == Encrypted(PayloadType.ID, b"\xab" * 64)


def test_message_helpers() -> None:
    msg = MESSAGES[0]
    assert msg.cookies == ICKY + bytes(8)
    assert msg.find(SA) is not None and msg.find(Identification) is None
    assert msg.summary() == "Identity Protection msgid=0x00000000 flags=0x00 [SA VID VID]"
    assert decode_message(encode_message(msg)).find_all(SA) == [msg.find(SA)]
    assert RCKY != ICKY


def test_lists_are_accepted_and_frozen_to_tuples() -> None:
    built = Message(
        ICKY,
        RCKY,
        2,
        0,
        [SA([Proposal(1, 1, b"", [Transform(1, 1, [Attribute(1, 7)])])]), Hash(b"x")],
    )
    assert isinstance(built.payloads, tuple)
    assert decode_message(encode_message(built)) == built
