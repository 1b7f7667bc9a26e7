"""Shutdown tells the peers (racoon's flushph2()/flushph1()): a Delete for each established
phase 2 and each ISAKMP SA, so that the peer drops its SAs at once instead of sending into ours
until they expire."""

from __future__ import annotations

from harness import Net, esp_sas

from pyracoon.engine import DatagramOut
from pyracoon.wire import decode_message
from pyracoon.wire.constants import ExchangeType

A, B = "10.0.0.1", "10.0.0.2"
CONF = """
remote {peer} {{
    exchange_mode main;
    proposal {{ encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }}
}}
sainfo anonymous {{ encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate; }}
"""


def test_shutdown_sends_deletes_and_the_peer_drops_its_sas() -> None:
    net = Net()
    a = net.host("a", A, CONF.format(peer=B), {B: "k"})
    b = net.host("b", B, CONF.format(peer=A), {A: "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2
    assert any(p.established for p in b.engine.ph1s.values())
    (q,) = a.engine.established
    inbound = q.installed[0].inbound_spi  # the SPI b sends to: the one the Delete names
    sent_before = len(net.delivered)
    assert a.engine.shutdown(net.clock.now) == 2  # one phase-2 Delete (ESP), one ISAKMP Delete
    net.pump()
    farewell = [d for d in net.delivered[sent_before:] if isinstance(d, DatagramOut)]
    assert [decode_message(d.data).exchange_type for d in farewell] == [
        ExchangeType.INFORMATIONAL, ExchangeType.INFORMATIONAL,
    ]  # fmt: skip
    assert not esp_sas(b), b.log_text()  # b deleted both directions on the Delete
    assert not any(p.established for p in b.engine.ph1s.values())
    assert b.has_log(f"purged IPsec-SA proto_id=ESP spi={inbound}."), b.log_text()
    assert b.has_log("ISAKMP-SA deleted")
    assert not a.engine.established


def test_shutdown_with_nothing_established_sends_nothing() -> None:
    net = Net()
    a = net.host("a", A, CONF.format(peer=B), {B: "k"})
    net.pump()
    assert a.engine.shutdown(net.clock.now) == 0
    assert not [e for e in a.engine.events() if isinstance(e, DatagramOut)]
