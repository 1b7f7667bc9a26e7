"""racoon.conf options the engine honours: commit bit, passive, aggressive-mode PSK lookup by
ID, verify_identifier with pre-shared keys, my_identifier forms."""

from __future__ import annotations

from harness import Net

from pyracoon.kernel.sadb import SaState, SaType
from pyracoon.wire import decode_message
from pyracoon.wire.constants import ExchangeType, Flag

A, B = "10.0.0.1", "10.0.0.2"


def conf(peer: str, mode: str = "main", extra: str = "") -> str:
    return f"""
remote {peer} {{
    exchange_mode {mode};{extra}
    proposal {{ encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }}
}}
sainfo anonymous {{ encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate; }}
"""


def esp(h) -> list:  # type: ignore[no-untyped-def]
    return [s for s in h.sas() if s.satype == SaType.ESP]


def run(conf_a: str, conf_b: str, psk_a: dict, psk_b: dict, hook=None):  # type: ignore[no-untyped-def]
    net = Net()
    a = net.host("a", A, conf_a, psk_a)
    b = net.host("b", B, conf_b, psk_b)
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.hook = hook
    net.acquire(a, b)
    net.pump()
    return net, a, b


def test_commit_bit_waits_for_connected() -> None:
    net = Net()
    a = net.host("a", A, conf(B), {B: "k"})
    b = net.host("b", B, conf(A), {A: "k"})
    a.engine.commit_bit = True
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    quick = [
        decode_message(d.data)
        for d in net.delivered
        if decode_message(d.data).exchange_type == ExchangeType.QUICK
    ]
    assert len(quick) == 4  # QM1, QM2, QM3 and the CONNECTED message
    assert all(m.flags & Flag.COMMIT for m in quick)
    assert len(esp(a)) == 2 and len(esp(b)) == 2


def test_commit_bit_lost_connected_is_recovered() -> None:
    dropped: list[bytes] = []

    def drop_connected(d):  # type: ignore[no-untyped-def]
        m = decode_message(d.data)
        quick_from_b = m.exchange_type == ExchangeType.QUICK and d.local[0].exploded == B
        if quick_from_b and not dropped and m.flags & Flag.COMMIT and len(d.data) < 100:
            dropped.append(d.data)
            return []
        return [d]

    net = Net()
    a = net.host("a", A, conf(B), {B: "k"})
    b = net.host("b", B, conf(A), {A: "k"})
    a.engine.commit_bit = True
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.hook = drop_connected
    net.acquire(a, b)
    net.pump()
    mature = [s for s in esp(a) if s.state == SaState.MATURE]
    assert dropped and not mature and len(esp(b)) == 2
    net.advance(10)  # a resends QM3, b replays CONNECTED
    assert len(esp(a)) == 2
    assert b.has_log(f"the packet is retransmitted by {A}[500] (1).")


def test_passive_remote_does_not_initiate() -> None:
    net, a, b = run(conf(B, extra="\n    passive on;"), conf(A), {B: "k"}, {A: "k"})
    assert a.has_log("is passive"), a.log_text()
    assert not net.delivered
    # the passive side still answers
    net.acquire(b, a)
    net.pump()
    assert len(esp(a)) == 2


def test_aggressive_psk_by_fqdn_id() -> None:
    extra_a = '\n    my_identifier fqdn "a.example.org";'
    net, a, b = run(
        conf(B, "aggressive", extra_a), conf(A, "aggressive"), {B: "k"}, {"a.example.org": "k"}
    )
    assert len(esp(b)) == 2, b.log_text()


def test_aggressive_psk_falls_back_to_address_unless_verify_identifier() -> None:
    extra_a = '\n    my_identifier fqdn "a.example.org";'
    net, a, b = run(conf(B, "aggressive", extra_a), conf(A, "aggressive"), {B: "k"}, {A: "k"})
    assert len(esp(b)) == 2, b.log_text()
    verify = '\n    verify_identifier on;\n    peers_identifier fqdn "a.example.org";'
    net, a, b = run(
        conf(B, "aggressive", extra_a), conf(A, "aggressive", verify), {B: "k"}, {A: "k"}
    )
    assert b.has_log("couldn't find the pskey for a.example.org."), b.log_text()


def test_main_mode_psk_ignores_the_id() -> None:
    """Main mode can only look the key up by address (the ID is still encrypted)."""
    extra_a = '\n    my_identifier fqdn "a.example.org";'
    net, a, b = run(conf(B, extra=extra_a), conf(A), {B: "k"}, {"a.example.org": "k"})
    assert b.has_log(f"couldn't find the pskey for {A}."), b.log_text()


def test_verify_identifier_with_psk() -> None:
    extra_a = '\n    my_identifier user_fqdn "alice@example.org";'
    good = '\n    verify_identifier on;\n    peers_identifier user_fqdn "alice@EXAMPLE.org";'
    net, a, b = run(conf(B, extra=extra_a), conf(A, extra=good), {B: "k"}, {A: "k"})
    assert len(esp(b)) == 2, b.log_text()
    bad = '\n    verify_identifier on;\n    peers_identifier user_fqdn "bob@example.org";'
    net, a, b = run(conf(B, extra=extra_a), conf(A, extra=bad), {B: "k"}, {A: "k"})
    assert b.has_log("ID value mismatched."), b.log_text()
    assert any("bob@example.org" in e.text for e in b.logs)
    assert a.has_log("notification INVALID-ID-INFORMATION received")
