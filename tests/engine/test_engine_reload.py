"""SIGHUP during negotiations (engine.reload): established SAs stay, negotiations in flight
finish under the settings they started with, or fail cleanly -- none is left hanging."""

from __future__ import annotations

from harness import Net, esp_sas

from pyracoon.config import parse_string
from pyracoon.engine import DatagramOut

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


def hosts() -> tuple[Net, object, object]:
    net = Net()
    a = net.host("a", A, CONF.format(peer=B), {B: "k"})
    b = net.host("b", B, CONF.format(peer=A), {A: "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    return net, a, b


def reload_in_the_middle(net: Net, a: object, b: object, conf_b: str, after: int) -> None:
    """Start a negotiation and reload b after ``after`` datagrams have reached it."""
    reached = [0]

    def count(d: DatagramOut) -> list[DatagramOut]:
        if d.remote[0] == b.address:  # type: ignore[attr-defined]
            reached[0] += 1
            if reached[0] == after + 1:
                b.engine.reload(parse_string(conf_b), net.clock.now)  # type: ignore[attr-defined]
        return [d]

    net.hook = count
    net.acquire(a, b)
    net.pump()
    net.advance(120)


def test_a_reload_in_the_middle_of_main_or_quick_mode_lets_it_finish() -> None:
    for after in (1, 2, 3, 4, 5):  # after MM1, MM3, MM5, QM1, QM3
        net, a, b = hosts()
        reload_in_the_middle(net, a, b, CONF.format(peer=A), after)
        assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2, (after, b.log_text())


def test_established_sas_survive_a_reload_and_still_rekey() -> None:
    net, a, b = hosts()
    net.acquire(a, b)
    net.pump()
    before = {s.spi for s in esp_sas(b)}
    b.engine.reload(parse_string(CONF.format(peer=A)), net.clock.now)
    a.engine.reload(parse_string(CONF.format(peer=B)), net.clock.now)
    net.pump()
    assert {s.spi for s in esp_sas(b)} == before
    assert [p for p in b.engine.ph1s.values() if p.established]


def test_a_reload_that_removes_the_peer_ends_the_negotiation_cleanly() -> None:
    """b's new file has no remote for a: the negotiation in flight keeps its old settings, with
    a warning (racoon's revalidation), and finishes; nothing half-done is left behind."""
    net, a, b = hosts()
    other = CONF.format(peer="10.9.9.9")
    reload_in_the_middle(net, a, b, other, 1)
    assert b.has_log(  # type: ignore[attr-defined]
        "no remote for 10.0.0.1[500] after the reload: ISAKMP-SA"
    )
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2  # it finished under its old settings
    net.advance(600)
    assert not [p for p in b.engine.ph1s.values() if not p.established]  # type: ignore[attr-defined]
    assert all(q in b.engine.established for q in b.engine.quicks.values())  # type: ignore[attr-defined]
