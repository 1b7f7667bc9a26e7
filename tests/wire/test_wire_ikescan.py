"""First messages built by ike-scan 1.9.5, an IKEv1 implementation independent of strongSwan.

See tests/data/isakmp/README.md for how tests/data/isakmp/ike-scan.json was made.
"""

from __future__ import annotations

import json

import pytest
from wire_samples import DATA_DIR

from pyracoon.wire import (
    SA,
    EncryptionAlgorithm,
    ExchangeType,
    Identification,
    IDType,
    OakleyAttribute,
    VendorID,
    decode_message,
    describe_message,
    encode_message,
)

DOC = json.loads((DATA_DIR / "ike-scan.json").read_text())
PACKETS = {p["command"]: bytes.fromhex(p["datagram"]) for p in DOC["packets"]}


@pytest.mark.parametrize("command", sorted(PACKETS))
def test_round_trip(command: str) -> None:
    raw = PACKETS[command]
    msg = decode_message(raw)
    assert encode_message(msg) == raw
    assert msg.responder_cookie == bytes(8)
    assert describe_message(msg)[0].endswith("]")


def test_default_main_mode_offers_eight_transforms() -> None:
    msg = decode_message(PACKETS["ike-scan -r 1 127.0.0.1"])
    assert msg.exchange_type == ExchangeType.IDENTITY_PROTECTION
    (prop,) = msg.find(SA).proposals
    assert [t.number for t in prop.transforms] == list(range(1, 9))
    life = prop.transforms[0].attribute(OakleyAttribute.LIFE_DURATION)
    assert life is not None and life.as_int == 28800
    assert not life.basic  # ike-scan sends the lifetime as a 4-byte TLV even though it fits TV


def test_aggressive_mode_identity() -> None:
    cmd = "ike-scan -r 1 -A --id=test@example.org --dhgroup=2 127.0.0.1"
    msg = decode_message(PACKETS[cmd])
    assert msg.exchange_type == ExchangeType.AGGRESSIVE
    ident = msg.find(Identification)
    assert ident.id_type == IDType.USER_FQDN and ident.text == "test@example.org"
    assert (ident.protocol_id, ident.port) == (17, 500)


def test_custom_transforms_and_vendor_id() -> None:
    (cmd,) = [c for c in PACKETS if "--vendor" in c]
    msg = decode_message(PACKETS[cmd])
    t1, t2 = msg.find(SA).proposals[0].transforms
    assert t1.attribute(OakleyAttribute.ENCRYPTION_ALGORITHM).as_int == EncryptionAlgorithm.AES_CBC
    assert t1.attribute(OakleyAttribute.KEY_LENGTH).as_int == 256
    assert t2.attribute(OakleyAttribute.ENCRYPTION_ALGORITHM).as_int == (
        EncryptionAlgorithm.TRIPLE_DES_CBC
    )
    assert msg.find(VendorID).data.hex() == "afcad71368a1f1c96b8696fc77570100"
