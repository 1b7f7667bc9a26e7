"""Unauthenticated first messages hold no memory: a "first message" that starts nothing leaves no
responder behind, and every responder that stays has a timer that ends it (issue: an MM1/AM1
header with the E flag and any body used to create a timer-less phase 1 that never went away).
"""

from __future__ import annotations

import ipaddress
import os

from harness import Net
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyracoon.wire.constants import ExchangeType, Flag

CONF = """
remote anonymous {
    exchange_mode main, aggressive;
    proposal { encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }
}
sainfo anonymous { encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate; }
"""
B = "10.0.0.2"


def first_message(exchange: int, flags: int, body: bytes) -> bytes:
    """An ISAKMP header with a fresh initiator cookie, responder cookie 0, next payload SA."""
    header = os.urandom(8) + bytes(8) + bytes([1, 0x10, exchange, flags]) + bytes(4)
    return header + (28 + len(body)).to_bytes(4, "big") + body


def responder() -> tuple[Net, object]:
    net = Net()
    b = net.host("b", B, CONF, {"10.0.0.1": "k"})
    net.pump()
    return net, b


def test_encrypted_first_messages_leave_no_responder() -> None:
    net, b = responder()
    for i in range(200):
        exchange = ExchangeType.IDENTITY_PROTECTION if i % 2 else ExchangeType.AGGRESSIVE
        data = first_message(exchange, Flag.ENCRYPTION, os.urandom(40))
        peer = (ipaddress.ip_address(f"10.0.{i // 200}.{i % 200 + 3}"), 500)
        b.engine.receive_datagram(data, peer, (b.address, 500), net.clock.now)
    assert not b.engine.ph1s
    assert b.engine.next_timer() is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    exchange=st.sampled_from([ExchangeType.IDENTITY_PROTECTION, ExchangeType.AGGRESSIVE]),
    flags=st.integers(0, 7),
    body=st.binary(max_size=120),
)
def test_every_responder_a_first_message_leaves_has_a_timer(
    exchange: int, flags: int, body: bytes
) -> None:
    net, b = responder()
    b.engine.receive_datagram(
        first_message(exchange, flags, body), (ipaddress.ip_address("10.0.0.9"), 500),
        (b.address, 500), net.clock.now,
    )  # fmt: skip
    for ph1 in b.engine.ph1s.values():
        assert b.engine.timers.has(ph1), ph1.describe()
    net.advance(600)  # every timer runs out: nothing of it is left
    assert not b.engine.ph1s


def test_a_responder_whose_initiator_went_quiet_ends_with_its_timer() -> None:
    """A real MM1 (as a spoofed flood would send it) makes a responder that answers MM2 and
    resends it; with no MM3 ever, its timer removes it."""
    net, b = responder()
    a = net.host("a", "10.0.0.1", CONF, {B: "k"})
    net.pump()
    net.hook = lambda d: [d] if d.remote[0] == b.address else []  # b's answers are lost
    a.engine.establish((b.address, 500), net.clock.now)
    net.pump()
    assert len(b.engine.ph1s) == 1
    (ph1,) = b.engine.ph1s.values()
    assert b.engine.timers.has(ph1)
    net.advance(600)
    assert not b.engine.ph1s
