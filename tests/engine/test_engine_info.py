"""Informational exchanges: INITIAL-CONTACT sent and honoured, Delete on expiry and on a
kernel-side delete, quick-mode rekey on a soft EXPIRE (racoon's pfkey.c; RFC 2407: 4.6.3.3)."""

from __future__ import annotations

from harness import Net

from pyracoon.engine import Engine, PskTable
from pyracoon.kernel import pfkey
from pyracoon.kernel.sadb import ExtType, MsgType, SaType

A, B = "10.0.0.1", "10.0.0.2"


def conf(peer: str, p1life: str = "", p2life: str = "") -> str:
    return f"""
remote {peer} {{
    exchange_mode main; {p1life}
    proposal {{ encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }}
}}
sainfo anonymous {{ {p2life}
    encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate;
}}
"""


def up(p1life: str = "", p2life: str = ""):  # type: ignore[no-untyped-def]
    net = Net()
    a = net.host("a", A, conf(B, p1life, p2life), {B: "k"})
    b = net.host("b", B, conf(A, p1life, p2life), {A: "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    net.acquire(a, b)
    net.pump()
    return net, a, b


def esp(h) -> list:  # type: ignore[no-untyped-def]
    return [s for s in h.sas() if s.satype == SaType.ESP]


def test_initial_contact_sent_once_per_peer() -> None:
    net, a, b = up()
    assert a.has_log("received INITIAL-CONTACT") and b.has_log("received INITIAL-CONTACT")
    sent = [e for e in a.logs if "sendto Information notify INITIAL-CONTACT" in e.text]
    assert len(sent) == 1


def test_initial_contact_from_a_rebooted_peer_purges_old_sas() -> None:
    net, a, b = up()
    old = {s.spi for s in esp(a)}
    assert len(old) == 2
    # b reboots: its kernel forgets every SA, a fresh daemon starts
    b.kernel.sad.clear()
    b.engine = Engine(b.engine.config, psk=PskTable({A: "k"}))
    b.engine.start(net.clock.now)
    net.pump()
    net.acquire(b, a)
    net.pump()
    assert a.has_log("received INITIAL-CONTACT")
    assert a.has_log("purged IPsec-SA proto_id=ESP"), a.log_text()
    new = {s.spi for s in esp(a)}
    assert len(new) == 2 and not (new & old), a.log_text()
    assert {s.spi for s in esp(b)} == new


def test_phase1_expiry_sends_delete() -> None:
    net, a, b = up(p1life="lifetime time 10 min;")
    net.advance(601)
    for h in (a, b):
        assert h.has_log("ISAKMP-SA expired"), h.log_text()
        assert h.has_log("ISAKMP-SA deleted")
        assert not h.engine.ph1s
    assert len(esp(a)) == 2  # phase-2 SAs outlive their ISAKMP SA


def test_soft_expire_rekeys_on_the_initiator() -> None:
    net, a, b = up(p2life="lifetime time 100 sec;")
    first = {s.spi for s in esp(a)}
    net.advance(81)
    assert a.has_log("IPsec-SA expired: ESP/Transport"), a.log_text()
    assert len(esp(a)) == 4 and len(esp(b)) == 4  # the dying pair and the new pair
    net.advance(20)
    rest = {s.spi for s in esp(a)}
    assert len(rest) == 2 and not (rest & first)
    assert {s.spi for s in esp(b)} == rest


def test_kernel_delete_is_announced_to_the_peer() -> None:
    net, a, b = up()
    inbound = next(s for s in esp(a) if s.dst.addr == a.address)
    msg = pfkey.Message(MsgType.DELETE, SaType.ESP, seq=77, pid=31337)
    msg.add(pfkey.SA(spi=inbound.spi))
    msg.add(pfkey.Address(ExtType.ADDRESS_SRC, b.address))
    msg.add(pfkey.Address(ExtType.ADDRESS_DST, a.address))
    other = a.kernel.open()  # "setkey" on host a
    other.send(msg)
    net.pump()
    assert a.has_log(
        f"pfkey DELETE received: ESP/Transport {B}[500]->{A}[500] spi={inbound.spi}"
    ), a.log_text()
    assert b.has_log(f"purged IPsec-SA proto_id=ESP spi={inbound.spi}."), b.log_text()
    assert not esp(b)


def test_unprotected_delete_is_ignored() -> None:
    net, a, b = up()
    from pyracoon.wire import Delete, Message, encode_message
    from pyracoon.wire.constants import ExchangeType, ProtocolID

    ph1 = next(iter(b.engine.ph1s.values()))
    spi = esp(b)[0].spi.to_bytes(4, "big")
    forged = Message(
        ph1.icky, ph1.rcky, ExchangeType.INFORMATIONAL, 0, (Delete(ProtocolID.IPSEC_ESP, (spi,)),)
    )
    b.engine.receive_datagram(
        encode_message(forged), (b.address, 500), (a.address, 500), net.clock.now
    )
    net.pump()
    assert b.has_log("unprotected Delete ignored")
    assert len(esp(b)) == 2


def test_phase1_rekey_force_renegotiates_before_expiry() -> None:
    net, a, b = up(p1life="lifetime time 100 sec; rekey force;")
    old = next(iter(a.engine.ph1s.values()))
    net.advance(81)
    assert a.has_log(f"renegotiating phase1 to {B} due to active phase2"), a.log_text()
    assert len(a.engine.ph1s) == 2 and all(p.established for p in a.engine.ph1s.values())
    net.advance(20)
    assert a.has_log("ISAKMP-SA expired") and list(a.engine.ph1s.values()) != [old]
    assert len(a.engine.ph1s) == 1 and len(b.engine.ph1s) == 1
    # new quick modes run under the new ISAKMP SA
    for s in list(a.kernel.sad):
        del a.kernel.sad[s]
    net.acquire(a, b)
    net.pump()
    new = next(iter(a.engine.ph1s.values()))
    assert any(q.ph1 is new for q in a.engine.established)


def test_rekey_on_without_dpd_does_not_renegotiate() -> None:
    net, a, b = up(p1life="lifetime time 100 sec;")
    net.advance(81)
    assert not a.has_log("renegotiating phase1")


def test_reload_takes_new_sainfo_and_rereads_the_spd() -> None:
    from pyracoon.config import parse_string

    net, a, b = up()
    first = {s.encrypt for s in esp(a)}
    assert first == {12}
    new_a = conf(B).replace("encryption_algorithm aes;", "encryption_algorithm 3des;")
    new_b = conf(A).replace("encryption_algorithm aes;", "encryption_algorithm 3des;")
    a.engine.reload(parse_string(new_a), net.clock.now)
    b.engine.reload(parse_string(new_b), net.clock.now)
    net.pump()
    assert len(a.engine.spd) == 2 and len(b.engine.spd) == 2  # dumped again
    a.kernel.sad.clear()
    b.kernel.sad.clear()
    net.advance(31)  # the kernel sends one ACQUIRE per policy every 30 s
    net.acquire(a, b)
    net.pump()
    assert {s.encrypt for s in esp(a)} == {3}, a.log_text()
    assert len(a.engine.ph1s) == 1  # the ISAKMP SA survived the reload


def test_racoonctl_view_establish_and_delete() -> None:
    net = Net()
    a = net.host("a", A, conf(B), {B: "k"})
    b = net.host("b", B, conf(A), {A: "k"})
    assert a.engine.establish((B, 500), net.clock.now, local=(A, 500))
    net.pump()
    [sa] = a.engine.isakmp_sas()
    assert sa.state == "established" and sa.initiator and sa.exchange == "Identity Protection"
    assert b.engine.isakmp_sas()[0].responder_cookie == sa.responder_cookie
    assert a.engine.establish((B, 500), net.clock.now)  # already there: nothing new
    assert len(a.engine.isakmp_sas()) == 1
    assert a.engine.delete_isakmp(B, net.clock.now) == 1
    net.pump()
    assert not a.engine.isakmp_sas() and not b.engine.isakmp_sas()
    assert b.has_log("purging ISAKMP-SA spi=")


def test_dpd_probes_are_acknowledged() -> None:
    net, a, b = up(p1life="dpd_delay 10;")
    assert a.has_log("received Vendor ID: DPD") and b.has_log("received Vendor ID: DPD")
    net.advance(35)
    sent = [e for e in a.logs if e.text.startswith("DPD R-U-THERE sent")]
    acked = [e for e in a.logs if e.text.startswith("DPD R-U-THERE-ACK received")]
    assert len(sent) == 3 and len(acked) == 3, a.log_text()
    assert b.has_log("DPD R-U-THERE received")
    assert len(esp(a)) == 2


def test_dpd_declares_a_silent_peer_dead_and_purges() -> None:
    from pyracoon.engine.events import PeerDead

    net, a, b = up(p1life="dpd_delay 10; dpd_retry 2; dpd_maxfail 3;")
    net.hook = lambda d: [] if d.local[0] == b.address else [d]
    net.advance(10 + 2 * 3 + 1)
    assert a.has_log("DPD: remote (ISAKMP-SA spi="), a.log_text()
    assert a.has_log("seems to be dead.")
    assert any(isinstance(e, PeerDead) for e in a.other_events)
    assert not a.engine.ph1s and not esp(a)


def test_rekey_on_renegotiates_while_dpd_is_active() -> None:
    net, a, b = up(p1life="lifetime time 100 sec; dpd_delay 30;")
    net.advance(81)
    assert a.has_log(f"renegotiating phase1 to {B} due to active phase2"), a.log_text()


def test_dpd_off_sends_no_vendor_id() -> None:
    net, a, b = up(p1life="dpd off;")
    assert not b.has_log("received Vendor ID: DPD") and not a.has_log("received Vendor ID")
    assert len(esp(a)) == 2


def test_initial_contact_purges_sas_of_an_earlier_run_via_the_sad() -> None:
    """b's daemon restarted without flushing (its kernel keeps the SAs, its new engine does
    not know them); then a reboots and contacts b: b finds the old SAs by dumping the SAD."""
    net, a, b = up()
    old = {s.spi for s in esp(b)}
    b.engine = Engine(b.engine.config, psk=PskTable({A: "k"}))
    b.engine.start(net.clock.now)
    a.kernel.sad.clear()
    a.engine = Engine(a.engine.config, psk=PskTable({B: "k"}))
    a.engine.start(net.clock.now)
    net.advance(31)  # the kernel sends one ACQUIRE per policy every 30 s
    net.acquire(a, b)
    net.pump()
    assert b.has_log("received INITIAL-CONTACT")
    purged = [e for e in b.logs if e.text.startswith("purged IPsec-SA proto_id=ESP")]
    assert len(purged) == 2, b.log_text()
    new = {s.spi for s in esp(b)}
    assert len(new) == 2 and not (new & old)
    assert {s.spi for s in esp(a)} == new


def test_establish_ipsec_from_racoonctl() -> None:
    net = Net()
    a = net.host("a", A, conf(B), {B: "k"})
    b = net.host("b", B, conf(A), {A: "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    assert a.engine.establish_ipsec(A, B, net.clock.now)
    net.pump()
    assert len(esp(a)) == 2 and len(esp(b)) == 2, a.log_text()
    assert not a.engine.establish_ipsec("10.9.9.9", B, net.clock.now)
    net.pump()
    assert a.has_log("no policy found: 10.9.9.9/32")


def test_delete_that_overtakes_the_kernel_replies_still_purges() -> None:
    """strongSwan on a kernel without ESP sends its Delete right after QM3: the datagram can
    reach us before our kernel has answered the UPDATE/ADD of that very quick mode."""
    net = Net()
    a = net.host("a", A, conf(B), {B: "k"})
    b = net.host("b", B, conf(A), {A: "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    held: list[pfkey.Message] = []
    real_pending = a.sock.pending  # type: ignore[attr-defined]

    def hold() -> list[pfkey.Message]:
        msgs = real_pending()
        # GETSPI and the rest answer as usual; the install replies wait
        keep = [
            m for m in msgs if m.type not in (MsgType.UPDATE, MsgType.ADD) or m.pid != a.sock.pid
        ]
        held.extend(m for m in msgs if m not in keep)
        return keep

    a.sock.pending = hold  # type: ignore[attr-defined]
    net.acquire(a, b)
    net.pump()
    assert held and len(esp(a)) == 2 and len(esp(b)) == 2  # installed, answers not yet read
    inbound_b = next(s for s in esp(b) if s.dst.addr == b.address)
    msg = pfkey.Message(MsgType.DELETE, SaType.ESP, seq=78, pid=31337)
    msg.add(pfkey.SA(spi=inbound_b.spi))
    msg.add(pfkey.Address(ExtType.ADDRESS_SRC, a.address))
    msg.add(pfkey.Address(ExtType.ADDRESS_DST, b.address))
    b.kernel.open().send(msg)  # b gives up its SA and tells a
    net.pump()
    assert a.has_log(f"purged IPsec-SA proto_id=ESP spi={inbound_b.spi}."), a.log_text()
    a.sock.pending = real_pending  # type: ignore[attr-defined]
    for m in held:  # the late replies change nothing
        a.engine.receive_kernel(a.event(m), net.clock.now)
    net.pump()
    assert not esp(a), a.log_text()
    assert not a.engine.established and not a.engine.pending


def test_a_replayed_informational_is_not_acted_upon_again() -> None:
    """Informational exchanges are never resent (RFC 2408 4.8): a second copy of a protected one
    is a replay. A replayed INITIAL-CONTACT used to purge the SAs negotiated since."""
    from pyracoon.engine import DatagramOut
    from pyracoon.wire import decode_message
    from pyracoon.wire.constants import ExchangeType

    net = Net()
    a = net.host("a", A, conf(B), {B: "k"})
    b = net.host("b", B, conf(A), {A: "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    informational: list[DatagramOut] = []

    def catch(d: DatagramOut) -> list[DatagramOut]:
        kind = decode_message(d.data).exchange_type
        if kind == ExchangeType.INFORMATIONAL and d.remote[0] == b.address:
            informational.append(d)
        return [d]

    net.hook = catch
    net.acquire(a, b)
    net.pump()
    assert b.has_log("received INITIAL-CONTACT") and len(informational) == 1
    first_pair = {s.spi for s in esp(b)}
    # a new phase 2 under the same ISAKMP SA (a rekey, say), then the old datagram again
    for q in list(a.engine.established):
        a.engine.drop_phase2(q)
    for s in list(a.kernel.sad):
        del a.kernel.sad[s]
    net.acquire(a, b)
    net.pump()
    assert len(esp(b)) == 4  # the old pair and the new one
    ic = informational[0]
    b.engine.receive_datagram(ic.data, ic.remote, ic.local, net.clock.now)
    net.pump()
    assert b.has_log("seen before: a replay, ignored"), b.log_text()
    assert len(esp(b)) == 4 and first_pair <= {s.spi for s in esp(b)}
    assert len([e for e in b.logs if e.text == "received INITIAL-CONTACT"]) == 1


def test_initial_contact_inside_main_mode_purges_the_peers_old_sas(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """charon sends N(INITIAL-CONTACT) inside MM5/MM6, not as an informational exchange: once
    that phase 1 is established it purges the SAs of the peer's previous life, as an
    informational one does."""
    from pyracoon.engine.phase1 import Phase1, Role
    from pyracoon.wire import Notification
    from pyracoon.wire.constants import NotifyType, ProtocolID

    net, a, b = up()
    old = {s.spi for s in esp(a)}
    assert len(old) == 2
    # b reboots: its kernel forgets every SA, and a fresh daemon says INITIAL-CONTACT in MM5
    for s in list(b.kernel.sad):
        del b.kernel.sad[s]
    b.engine = Engine(b.engine.config, psk=PskTable({A: "k"}))
    b.engine.start(net.clock.now)
    conf_b = b.engine.config
    b.engine.reload(conf_b, net.clock.now)
    for remote in conf_b.remotes:
        remote.initial_contact = False  # not as an informational: only inside MM5
    real = Phase1._message

    def mm5_with_initial_contact(self, payloads, *, encrypt, flags=0):  # type: ignore[no-untyped-def]
        mm5 = encrypt and self.role is Role.INITIATOR and not self.established
        if mm5 and self.peer[0] == a.address:
            ic = Notification(NotifyType.INITIAL_CONTACT, ProtocolID.ISAKMP, self.cookies)
            payloads = [*payloads, ic]
        return real(self, payloads, encrypt=encrypt, flags=flags)

    monkeypatch.setattr(Phase1, "_message", mm5_with_initial_contact)
    net.pump()
    net.acquire(b, a)
    net.pump()
    assert a.has_log("received INITIAL-CONTACT (in phase 1)"), a.log_text()
    assert old.isdisjoint({s.spi for s in esp(a)})  # the old pair is gone
    assert len(esp(a)) == 2 and len(esp(b)) == 2  # and the new one is up


def test_phase1_rekeys_every_lifetime_not_only_once() -> None:
    """With ``rekey force`` the ISAKMP SA is renegotiated before each expiry while phase-2 SAs
    with the peer live, also when those phase 2s were made under an earlier ISAKMP SA (racoon
    moves them over, migrate_dying_ph12()): it used to rekey once, then let the SA die."""
    net, a, b = up(
        p1life="lifetime time 100 sec; rekey force;", p2life="lifetime time 1000 sec;"
    )
    for _ in range(4):
        net.advance(100)
    renegotiations = [e for e in a.logs if "renegotiating phase1" in e.text]
    assert len(renegotiations) >= 4, a.log_text()
    up_a = [p for p in a.engine.ph1s.values() if p.established]
    up_b = [p for p in b.engine.ph1s.values() if p.established]
    assert up_a and up_b  # an ISAKMP SA is there for DPD, Deletes and the next rekey
    assert len(esp(a)) == 2 and len(esp(b)) == 2


def test_a_rekey_deletes_the_old_sas_on_both_sides_once_the_new_are_in() -> None:
    """Make before break: the new pair is installed at the soft EXPIRE, and 5 s later the old
    pair goes on both sides (a Delete tells the peer), instead of piling up until its hard
    lifetime -- charon keeps every rekeyed child otherwise."""
    net, a, b = up(p2life="lifetime time 100 sec;")
    first = {s.spi for s in esp(a)}
    net.advance(81)
    assert len(esp(a)) == 4 and len(esp(b)) == 4  # both pairs, for the 5 s of overlap
    net.advance(5)
    assert a.has_log("rekeyed IPsec-SA deleted: ESP/Transport"), a.log_text()
    assert len(esp(a)) == 2 and len(esp(b)) == 2
    assert not ({s.spi for s in esp(a)} & first)
    assert {s.spi for s in esp(a)} == {s.spi for s in esp(b)}
    for _ in range(5):  # five more lifetimes: never more than the overlap
        for _ in range(10):
            net.advance(10)
            assert len(esp(a)) <= 4 and len(esp(b)) <= 4
    assert len(esp(a)) in (2, 4) and len([e for e in a.logs if "rekeyed IPsec-SA" in e.text]) >= 5
