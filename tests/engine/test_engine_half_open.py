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

from pyracoon.engine import LogEvent
from pyracoon.engine.half_open import HalfOpen
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
        b.engine.receive_datagram(data, (b.address, 500), peer, net.clock.now)
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
        first_message(exchange, flags, body), (b.address, 500),
        (ipaddress.ip_address("10.0.0.9"), 500), net.clock.now,
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


def _captured_mm1(net: Net, a: object, b: object) -> bytes:
    """A real MM1 from ``a`` to ``b`` (taken off the wire, never delivered)."""
    caught: list[bytes] = []

    def catch(d):  # type: ignore[no-untyped-def]
        caught.append(d.data)
        return []

    net.hook = catch
    a.engine.establish((b.address, 500), net.clock.now)  # type: ignore[attr-defined]
    net.pump()
    net.hook = None
    a.engine.ph1s.clear()  # type: ignore[attr-defined]
    return caught[0]


def _spoof(b: object, mm1: bytes, source: str, now: float) -> None:
    """``mm1`` with a fresh initiator cookie, as if from ``source``."""
    data = os.urandom(8) + mm1[8:]
    b.engine.receive_datagram(  # type: ignore[attr-defined]
        data, (b.address, 500), (ipaddress.ip_address(source), 500), now  # type: ignore[attr-defined]
    )


def test_one_address_cannot_open_more_than_its_share() -> None:
    net, b = responder()
    b.engine.half_open = HalfOpen(total=100, per_peer=5)
    a = net.host("a", "10.0.0.1", CONF, {B: "k"})
    net.pump()
    mm1 = _captured_mm1(net, a, b)
    for _ in range(8):
        _spoof(b, mm1, "10.9.9.9", net.clock.now)
    assert len(b.engine.ph1s) == 5 and b.engine.half_open.refused == 3
    lines = [e.text for e in b.engine.events() if isinstance(e, LogEvent)]
    assert sum("10.9.9.9[500] dropped: it has 5 half-open ISAKMP-SAs already" in t
               for t in lines) == 3


def test_a_flood_of_spoofed_first_messages_does_not_stop_a_real_peer() -> None:
    """With 20 spoofed MM1s from 20 addresses arriving before each of a real peer's messages
    (MM1, MM3, MM5: 40 newer than its responder by the time MM5 comes), and room for 50, the
    oldest spoofed ones are given up and the real one finishes; memory stays at the cap.  (At
    30 per message its responder would be the oldest by MM5 and given up: the cap must exceed
    the flood's arrivals during one negotiation, as half_open.py says.)"""
    net, b = responder()
    b.engine.half_open = HalfOpen(total=50, per_peer=4)
    a = net.host("a", "10.0.0.1", CONF, {B: "k"})
    net.pump()
    mm1 = _captured_mm1(net, a, b)
    counter = iter(range(10**6))

    def flood_before_each_delivery(d):  # type: ignore[no-untyped-def]
        if d.remote[0] == b.address:
            for _ in range(20):
                n = next(counter)
                _spoof(b, mm1, f"10.{100 + n // 60000}.{n // 250 % 240}.{n % 250 + 1}",
                       net.clock.now)
        return [d]

    for _ in range(300):  # a backlog first: the table is full when the real peer comes
        n = next(counter)
        _spoof(b, mm1, f"10.{100 + n // 60000}.{n // 250 % 240}.{n % 250 + 1}", net.clock.now)
    assert len(b.engine.half_open) == 50
    net.hook = flood_before_each_delivery
    a.engine.establish((b.address, 500), net.clock.now, (a.address, 500))
    net.pump()
    up = [p for p in b.engine.ph1s.values() if p.established]
    assert len(up) == 1 and up[0].peer[0] == a.address
    assert len(b.engine.half_open) <= 50 and b.engine.half_open.evicted >= 250
    assert len(b.engine.ph1s) <= 51
