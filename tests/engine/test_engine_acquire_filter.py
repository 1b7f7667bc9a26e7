"""ACQUIREs for destinations no IKE peer can be are ignored, with one INFO line per destination.

A policy as wide as the memo's ``spdadd ::/0 ::/0 any`` also covers multicast, broadcast,
link-local and unspecified destinations. The configuration here is ``remote anonymous``, so
without the filter the engine would start a phase 1 to them (and retransmit it for nothing).
"""

from __future__ import annotations

import pytest
from harness import Host, Net, esp_sas

from pyracoon.engine import DatagramOut, LogEvent
from pyracoon.engine.events import Level
from pyracoon.kernel.sadb import Direction, Mode, MsgType
from pyracoon.kernel.sadb import Level as SpLevel

CONF = """
remote anonymous {
    exchange_mode main;
    proposal { encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }
}
sainfo anonymous {
    encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate;
}
"""
A4, B4 = "10.0.0.1", "10.0.0.2"
A6 = "fd00::1"


def wide_host(net: Net, name: str, address: str, peer: str = B4) -> Host:
    """A host whose SPD sends everything of its family through ESP transport, level use."""
    h = net.host(name, address, CONF, {peer: "k"})
    wide = "::/0" if ":" in address else "0.0.0.0/0"
    h.spdadd(wide, wide, Direction.OUTBOUND, level=SpLevel.USE)
    h.spdadd(wide, wide, Direction.INBOUND, level=SpLevel.USE)
    net.pump()
    return h


def deliver_acquires(h: Host) -> list[object]:
    """Hand the kernel's pending messages (the ACQUIRE) to the engine; what did it decide?"""
    msgs = h.sock.pending()
    assert [m.type for m in msgs] == [MsgType.ACQUIRE]
    for m in msgs:
        h.engine.receive_kernel(h.event(m), h.kernel.clock())
    return h.engine.events()


def ignored(dst: str, what: str) -> str:
    return (
        f"ACQUIRE for {dst} ignored: {what} cannot be an IKE peer, so nothing is negotiated "
        f"for it (policy id:"
    )


NOT_PEERS = [
    (A4, "224.0.0.251", "a multicast address"),  # mDNS
    (A4, "239.255.255.250", "a multicast address"),  # SSDP, the top of 224/4
    (A4, "255.255.255.255", "the broadcast address"),
    (A4, "0.0.0.0", "the unspecified address"),
    (A6, "ff02::1", "a multicast address"),  # all nodes
    (A6, "ff02::1:ff00:2", "a multicast address"),  # solicited-node: neighbour discovery
    (A6, "ff05::2", "a multicast address"),
    (A6, "::", "the unspecified address"),
    (A6, "fe80::1", "an IPv6 link-local address"),
    (A6, "febf:ffff::1", "an IPv6 link-local address"),  # the top of fe80::/10
]


@pytest.mark.parametrize("src,dst,what", NOT_PEERS)
def test_an_acquire_for_a_destination_no_peer_can_be_is_ignored(
    src: str, dst: str, what: str
) -> None:
    net = Net()
    h = wide_host(net, "a", src)
    result = h.kernel.output(src, dst, 17)
    assert result.acquired
    events = deliver_acquires(h)
    # One line, nothing else: no datagram, no kernel request (not even an ACQUIRE error).
    assert len(events) == 1 and isinstance(events[0], LogEvent), events
    assert events[0].level == Level.INFO
    assert events[0].text.startswith(ignored(dst, what)), events[0].text
    assert not h.engine.ph1s and not h.engine.waiting and not h.engine.quicks

    # The kernel asks again later: the engine says so at DEBUG only, and still does nothing.
    net.advance(31)
    assert h.kernel.output(src, dst, 17).acquired
    events = deliver_acquires(h)
    assert len(events) == 1 and isinstance(events[0], LogEvent), events
    assert events[0].level == Level.DEBUG
    assert events[0].text == f"ignore the acquire for {dst}: {what}"

    net.advance(120)  # nothing was started, so nothing is ever retransmitted
    assert not [d for d in net.delivered if isinstance(d, DatagramOut)]
    assert h.engine.next_timer() is None


def test_each_destination_gets_its_own_info_line() -> None:
    net = Net()
    h = wide_host(net, "a", A6)
    for dst in ("ff02::1", "ff02::2", "ff02::1"):
        h.kernel.output(A6, dst, 58)
        net.advance(31)  # past the kernel's ACQUIRE block, so each packet makes an ACQUIRE
    infos = [e.text for e in h.logs if e.level == Level.INFO and "ACQUIRE for" in e.text]
    assert len(infos) == 2
    assert infos[0].startswith(ignored("ff02::1", "a multicast address"))
    assert infos[1].startswith(ignored("ff02::2", "a multicast address"))
    assert h.has_log("ignore the acquire for ff02::1: a multicast address")


def test_a_unicast_acquire_under_the_same_policy_is_still_negotiated() -> None:
    net = Net()
    a = wide_host(net, "a", A4, peer=B4)
    b = wide_host(net, "b", B4, peer=A4)
    a.kernel.output(A4, "224.0.0.251", 17)
    net.pump()
    assert a.has_log("ACQUIRE for 224.0.0.251 ignored")
    net.acquire(a, b)
    net.pump()
    assert a.has_log("initiate new phase 1 negotiation: 10.0.0.1[500]<=>10.0.0.2[500]")
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2, a.log_text()
    assert not a.has_log("ACQUIRE for 10.0.0.2 ignored")


def test_multicast_through_a_tunnel_is_negotiated_with_the_gateway() -> None:
    """The IKE peer of a tunnel is its remote end, not the traffic's destination."""
    net = Net()
    a = net.host("a", A4, CONF, {B4: "k"})
    b = net.host("b", B4, CONF, {A4: "k"})
    a.spdadd(f"{A4}/32", "239.0.0.0/8", Direction.OUTBOUND, mode=Mode.TUNNEL, tunnel=(A4, B4))
    a.spdadd("239.0.0.0/8", f"{A4}/32", Direction.INBOUND, mode=Mode.TUNNEL, tunnel=(B4, A4))
    b.spdadd("239.0.0.0/8", f"{A4}/32", Direction.OUTBOUND, mode=Mode.TUNNEL, tunnel=(B4, A4))
    b.spdadd(f"{A4}/32", "239.0.0.0/8", Direction.INBOUND, mode=Mode.TUNNEL, tunnel=(A4, B4))
    net.pump()
    assert a.kernel.output(A4, "239.1.2.3", 17).acquired
    net.pump()
    assert not a.has_log("ignored")
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2, a.log_text() + b.log_text()


def test_a_tunnel_to_a_multicast_endpoint_is_ignored() -> None:
    net = Net()
    h = net.host("a", A4, CONF, {})
    h.spdadd(
        f"{A4}/32", "0.0.0.0/0", Direction.OUTBOUND, mode=Mode.TUNNEL, tunnel=(A4, "224.0.0.9")
    )
    net.pump()
    assert h.kernel.output(A4, "192.0.2.7", 17).acquired
    events = deliver_acquires(h)
    assert len(events) == 1 and isinstance(events[0], LogEvent), events
    assert events[0].text.startswith(ignored("224.0.0.9", "a multicast address"))


def test_an_acquire_from_our_link_local_address_to_a_global_one_is_ignored() -> None:
    """Neighbour discovery under ``::/0``: an advertisement from fe80:: to a global address.

    Seen on a real kernel: the peer is global, but no ISAKMP socket of ours stands for the
    link-local source, so a phase 1 "from" it went out of an unrelated socket.
    """
    net = Net()
    h = wide_host(net, "a", A6)
    assert h.kernel.output("fe80::1", "fd00::2", 58).acquired
    events = deliver_acquires(h)
    assert len(events) == 1 and isinstance(events[0], LogEvent), events
    assert events[0].text.startswith(
        "ACQUIRE for fd00::2 ignored: its source fe80::1 is an IPv6 link-local address and "
        "cannot be an IKE peer"
    ), events[0].text
    assert not h.engine.ph1s and not h.engine.waiting


def test_acquires_before_the_spd_dump_has_come_back_wait_for_it() -> None:
    """A real kernel hands a new registered socket ACQUIREs for traffic already queued, ahead
    of the replies to its X_SPDDUMP: they must not fail with 'no policy found'."""
    net = Net()
    a = wide_host(net, "a", A4, peer=B4)
    b = wide_host(net, "b", B4, peer=A4)
    # as a daemon started after pysetkey: the engine knows no policy until its dump comes back
    a.engine.spd.clear()
    a.engine.start(a.kernel.clock())
    assert a.engine.spd_loading
    for m in _acquire_now(a, B4):
        a.engine.receive_kernel(a.event(m), a.kernel.clock())
    assert not a.has_log("no policy found")
    assert not a.engine.ph1s  # waiting for the SPD
    net.pump()  # the dump's replies arrive: the kept ACQUIRE is carried out
    assert not a.engine.spd_loading
    assert a.has_log("initiate new phase 1 negotiation: 10.0.0.1[500]<=>10.0.0.2[500]")
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2, a.log_text()


def _acquire_now(h: Host, dst: str) -> list:
    """The ACQUIRE the kernel makes for a packet to ``dst``, taken before the engine sees it."""
    assert h.kernel.output(h.address, dst, 17).acquired
    return [m for m in h.sock.pending() if m.type == MsgType.ACQUIRE]


def test_an_acquire_the_engine_cannot_use_is_an_error_line_not_silence() -> None:
    """An ACQUIRE without its policy (a kernel we misread, a broken kernel) names the problem at
    ERROR; a kernel message of a kind the engine has no use for is a DEBUG line."""
    from pyracoon.kernel.pfkey import Message
    from pyracoon.kernel.sadb import SaType

    net = Net()
    h = wide_host(net, "a", A4)
    h.engine.receive_kernel(h.event(Message(MsgType.ACQUIRE, SaType.ESP, seq=3)), 0.0)
    h.engine.receive_kernel(h.event(Message(MsgType.X_PROMISC, 0)), 0.0)
    lines = [(e.level, e.text) for e in h.engine.events() if isinstance(e, LogEvent)]
    assert (Level.ERROR, "kernel message ignored: ACQUIRE without X_POLICY or addresses") in lines
    assert (Level.DEBUG, "kernel message not used: SADB_X_PROMISC") in lines
    assert not h.engine.ph1s
