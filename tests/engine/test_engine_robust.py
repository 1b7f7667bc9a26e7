"""Hostile and broken input: the engine logs and drops, never raises, never desynchronises."""

from __future__ import annotations

from harness import Net
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyracoon.engine import DatagramOut, Engine, PskTable
from pyracoon.kernel.sadb import SaType
from pyracoon.wire import decode_message
from pyracoon.wire.constants import ExchangeType

A, B = "10.0.0.1", "10.0.0.2"
CONF = """
remote {peer} {{
    exchange_mode main, aggressive;
    proposal {{ encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }}
}}
sainfo anonymous {{ encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate; }}
"""


def setup() -> tuple[Net, object, object]:
    net = Net()
    a = net.host("a", A, CONF.format(peer=B), {B: "k"})
    b = net.host("b", B, CONF.format(peer=A), {A: "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    return net, a, b


def esp(h) -> list:  # type: ignore[no-untyped-def]
    return [s for s in h.sas() if s.satype == SaType.ESP]


def test_corrupted_copies_do_not_desynchronise() -> None:
    """Every datagram comes with copies that have one byte flipped (in the message id, and in
    the middle).  Encrypted ones arrive *before* the real datagram: nothing is committed before
    a message checks out, so the real one still decrypts.  Plaintext ones arrive after it (a
    corrupted plaintext MM1/MM3 arriving first is indistinguishable from a real one: IKEv1
    cannot protect them)."""
    net, a, b = setup()

    def corrupt(d: DatagramOut) -> list[DatagramOut]:
        copies = []
        for pos in (20, len(d.data) // 2):
            data = bytearray(d.data)
            data[pos] ^= 0x5A
            copies.append(DatagramOut(bytes(data), d.local, d.remote))
        if decode_message(d.data).encrypted is not None:
            return [*copies, d]
        return [d, *copies]

    net.hook = corrupt
    net.acquire(a, b)
    net.pump()
    assert len(esp(a)) == 2 and len(esp(b)) == 2, a.log_text() + b.log_text()
    assert (
        a.has_log("HASH(2) mismatch.")
        or b.has_log("HASH(1) mismatch.")
        or a.has_log("failed to decrypt")
    )


def test_truncated_and_garbage_datagrams_are_logged() -> None:
    net, a, b = setup()
    e: Engine = b.engine
    for junk in (b"", b"\x00" * 27, b"\xff" * 28, b"x" * 500):
        e.receive_datagram(junk, (b.address, 500), (a.address, 500), net.clock.now)
    net.pump()
    assert b.has_log("invalid packet from 10.0.0.1[500]")


def _first_datagrams() -> list[bytes]:
    net, a, b = setup()
    net.acquire(a, b)
    net.pump()
    return [d.data for d in net.delivered]


CAPTURED = _first_datagrams()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(CAPTURED) - 1),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 10_000),
)
def test_mutated_datagrams_never_raise(index: int, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(CAPTURED[index])
    for pos, x in flips:
        data[pos % len(data)] ^= x
    data = data[: max(1, cut % (len(data) + 1))] if cut % 3 == 0 else data
    engine = Engine(_CONFIG, psk=PskTable({A: "k"}))
    engine.receive_datagram(bytes(data), (B, 500), (A, 500), 1.8e9)
    engine.handle_timer(1.8e9 + 100)
    for ev in engine.events():
        if isinstance(ev, DatagramOut):
            decode_message(ev.data)  # whatever we send is well-formed


def test_random_bytes_with_valid_header_prefix() -> None:
    mm1 = decode_message(CAPTURED[0])
    assert mm1.exchange_type == ExchangeType.IDENTITY_PROTECTION


_CONFIG = __import__("pyracoon.config", fromlist=["parse_string"]).parse_string(CONF.format(peer=A))


def test_a_copy_from_another_address_is_not_answered() -> None:
    """racoon answers a replayed datagram of an SA with its stored reply, to the SA's peer,
    whoever sent the copy (and only warns); here a copy from elsewhere is dropped, so a spoofer
    cannot make us send to the real peer."""
    import ipaddress

    from pyracoon.engine import LogEvent

    net, a, b = setup()
    seen: list[DatagramOut] = []

    def keep(d: DatagramOut) -> list[DatagramOut]:
        seen.append(d)
        return [d]

    net.hook = keep
    net.acquire(a, b)  # type: ignore[attr-defined]
    net.pump()
    assert len(esp(a)) == 2
    to_b = [d for d in seen if d.remote[0] == b.address]  # type: ignore[attr-defined]
    first = to_b[0]  # MM1, which b answered with MM2
    b.engine.events()  # type: ignore[attr-defined]
    spoofer = (ipaddress.ip_address("10.0.0.66"), 500)
    b.engine.receive_datagram(first.data, first.remote, spoofer, net.clock.now)  # type: ignore[attr-defined]
    out = b.engine.events()  # type: ignore[attr-defined]
    assert not [e for e in out if isinstance(e, DatagramOut)]
    assert any(
        isinstance(e, LogEvent) and e.text.startswith("remote address mismatched. db=10.0.0.1[500]")
        for e in out
    )
    # the same copy from the peer itself is a retransmission, answered as racoon does
    b.engine.receive_datagram(first.data, first.remote, first.local, net.clock.now)  # type: ignore[attr-defined]
    again = [e for e in b.engine.events() if isinstance(e, DatagramOut)]  # type: ignore[attr-defined]
    assert len(again) == 1 and again[0].remote[0] == a.address  # type: ignore[attr-defined]
