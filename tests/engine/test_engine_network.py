"""Loss, duplication, reordering and time-outs, with a fake clock (racoon's isakmp.c)."""

from __future__ import annotations

from harness import Net, esp_sas

from pyracoon.engine import DatagramOut, NegotiationFailed
from pyracoon.kernel import ops
from pyracoon.kernel.sadb import MsgType
from pyracoon.wire import decode_message
from pyracoon.wire.constants import ExchangeType

A, B = "10.0.0.1", "10.0.0.2"


def conf(peer: str, mode: str = "main", timer: str = "") -> str:
    return f"""
{timer}
remote {peer} {{
    exchange_mode {mode};
    proposal {{ encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group modp1024; }}
}}
sainfo anonymous {{
    encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate;
}}
"""


def setup(mode: str = "main", timer: str = "") -> tuple[Net, object, object]:
    net = Net()
    a = net.host("a", A, conf(B, mode, timer), {B: "k"})
    b = net.host("b", B, conf(A, mode, timer), {A: "k"})
    a.transport_policy(b)
    b.transport_policy(a)
    net.pump()
    return net, a, b


def exchange(d: DatagramOut) -> int:
    return decode_message(d.data).exchange_type


def test_lost_first_message_is_resent_after_the_interval() -> None:
    net, a, b = setup()
    dropped: list[DatagramOut] = []

    def drop_first(d: DatagramOut) -> list[DatagramOut]:
        if not dropped:
            dropped.append(d)
            return []
        return [d]

    net.hook = drop_first
    net.acquire(a, b)
    net.pump()
    assert not esp_sas(a)
    net.advance(10)
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2


def drop_once_hook(seen: set[bytes]):  # type: ignore[no-untyped-def]
    def drop_once(d: DatagramOut) -> list[DatagramOut]:
        if d.data in seen:
            return [d]
        seen.add(d.data)
        return []

    return drop_once


def test_every_message_lost_once() -> None:
    """Each distinct datagram is dropped the first time: timers carry the exchange through."""
    for mode in ("main", "aggressive"):
        net, a, b = setup(mode, timer="timer { interval 2 sec; }")
        net.hook = drop_once_hook(set())
        net.acquire(a, b)
        net.pump()
        net.advance(60)
        assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2, (mode, a.log_text())
        assert a.has_log("the packet is retransmitted") or b.has_log("the packet is retransm")


def test_duplicates_replay_the_stored_reply() -> None:
    net, a, b = setup()
    net.hook = lambda d: [d, d]
    net.acquire(a, b)
    net.pump()
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2
    assert b.has_log(f"the packet is retransmitted by {A}[500] (1)."), b.log_text()
    assert a.has_log(f"the packet is retransmitted by {B}[500] (1).")


def test_reordered_initial_contact_and_quick_mode() -> None:
    """The INITIAL-CONTACT notify overtaken by QM1: both still work."""
    net, a, b = setup()
    held: list[DatagramOut] = []

    def hold_info(d: DatagramOut) -> list[DatagramOut]:
        if d.local[0] == a.address and exchange(d) == ExchangeType.INFORMATIONAL and not held:
            held.append(d)
            return []
        if held and exchange(d) == ExchangeType.QUICK:
            return [d, held.pop()]
        return [d]

    net.hook = hold_info
    net.acquire(a, b)
    net.pump()
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2
    assert b.has_log("received INITIAL-CONTACT")


def test_late_mm5_after_establishment_is_answered_with_mm6() -> None:
    net, a, b = setup()
    mm5: list[DatagramOut] = []

    def keep_mm5(d: DatagramOut) -> list[DatagramOut]:
        m = decode_message(d.data)
        if (
            d.local[0] == a.address
            and m.exchange_type == ExchangeType.IDENTITY_PROTECTION
            and m.encrypted is not None
        ):
            mm5.append(d)
        return [d]

    net.hook = keep_mm5
    net.acquire(a, b)
    net.pump()
    assert len(esp_sas(a)) == 2
    net.hook = None
    net.in_flight.append(mm5[0])
    net.pump()
    assert b.has_log(f"the packet is retransmitted by {A}[500] (1).")
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2


def test_phase1_time_up_and_acquire_error() -> None:
    net, a, b = setup()
    net.hook = lambda d: [] if d.local[0] == a.address else [d]
    net.acquire(a, b)
    net.pump()
    sent = len([d for d in net.delivered])
    assert sent == 0
    net.advance(60)
    assert a.has_log(
        f"phase2 negotiation failed due to time up waiting for phase1. ESP {B}[500]->{A}[500]"
    ), a.log_text()
    assert a.has_log(f"{B} give up to get IPsec-SA due to time up to wait.")
    assert a.has_log("phase1 negotiation failed due to time up.")
    assert any(isinstance(e, NegotiationFailed) and e.phase == 1 for e in a.other_events)


def test_resend_count_follows_timer_counter() -> None:
    net, a, b = setup(timer="timer { counter 3; interval 2 sec; }")
    sends: list[DatagramOut] = []

    def swallow(d: DatagramOut) -> list[DatagramOut]:
        sends.append(d)
        return []

    net.hook = swallow
    net.acquire(a, b)
    net.pump()
    net.advance(20)
    assert len(sends) == 3
    assert a.has_log("phase1 negotiation failed due to time up.")


def test_phase2_time_up() -> None:
    net, a, b = setup()

    def no_quick_replies(d: DatagramOut) -> list[DatagramOut]:
        if d.local[0] == b.address and exchange(d) == ExchangeType.QUICK:
            return []
        return [d]

    net.hook = no_quick_replies
    net.acquire(a, b)
    net.pump()
    net.advance(40)
    assert a.has_log("phase2 negotiation failed due to time up."), a.log_text()
    # the kernel was told (ACQUIRE with errno EINVAL) so it can ask again
    assert not esp_sas(a)


def test_kernel_request_flow_initiator() -> None:
    """GETSPI before QM1 reusing the ACQUIRE seq, then UPDATE inbound and ADD outbound."""
    net, a, b = setup()
    requests = []
    orig = a.sock.send

    def spy(msg):  # type: ignore[no-untyped-def]
        requests.append(msg)
        orig(msg)

    a.sock.send = spy  # type: ignore[method-assign]
    net.acquire(a, b)
    net.pump()
    kinds = [
        (m.type, m.seq) for m in requests if m.type in (MsgType.GETSPI, MsgType.UPDATE, MsgType.ADD)
    ]
    assert [k for k, _ in kinds] == [MsgType.GETSPI, MsgType.UPDATE, MsgType.ADD]
    assert len({s for _, s in kinds}) == 1
    getspi = next(m for m in requests if m.type == MsgType.GETSPI)
    assert getspi.src.addr == b.address and getspi.dst.addr == a.address
    update = next(m for m in requests if m.type == MsgType.UPDATE)
    add = next(m for m in requests if m.type == MsgType.ADD)
    assert update.src.addr == b.address and add.src.addr == a.address
    assert update.sa.replay == 4 and update.lifetime(3).addtime == 28800
    assert update.lifetime(4).addtime == 23040


def test_an_acquire_before_the_spd_dump_is_answered_waits_for_it() -> None:
    """af_key can answer the start-up X_SPDDUMP seconds late (each REGISTER probes every
    algorithm); an ACQUIRE in between must not be lost as "no policy found"."""
    from pyracoon.kernel.pfkey import Address, Message, Policy
    from pyracoon.kernel.sadb import ExtType, SaType

    net, a, b = setup()
    out_id = next(sp.policy_id for sp in a.engine.spd.values() if sp.direction is ops.Direction.OUT)
    a.engine.reload(a.engine.config, net.clock.now)  # the cache is empty, the dump unanswered
    assert not a.engine.spd
    acquire = Message(MsgType.ACQUIRE, SaType.ESP, seq=77, pid=0)
    acquire.add(Address(ExtType.ADDRESS_SRC, a.address))
    acquire.add(Address(ExtType.ADDRESS_DST, b.address))
    acquire.add(Policy(2, 2, out_id, 0, []))
    a.engine.receive_kernel(a.event(acquire), net.clock.now)
    assert not a.engine.ph1s  # waiting, not refused
    net.pump()  # the dump's replies arrive; the ACQUIRE is served
    assert not a.has_log("no policy found"), a.log_text()
    assert esp_sas(a) and esp_sas(b)


def test_a_phase_1_slowed_by_loss_still_carries_its_phase_2() -> None:
    """racoon gives the phase-2 request up after ``timer phase1`` even while the phase 1 still
    resends, and nothing retries it when the phase 1 then succeeds: on a lossy path the SAs
    never come. Here the request waits as long as its phase 1 is alive."""
    net, a, b = setup(timer="timer { phase1 15 sec; interval 10 sec; counter 5; }")
    lost: list[DatagramOut] = []

    def lose_two_mm1s(d: DatagramOut) -> list[DatagramOut]:
        if d.remote[0] == b.address and len(lost) < 2:
            lost.append(d)
            return []
        return [d]

    net.hook = lose_two_mm1s
    net.acquire(a, b)
    net.pump()
    net.advance(60)
    assert len(lost) == 2
    assert not a.has_log("give up to get IPsec-SA"), a.log_text()
    assert len(esp_sas(a)) == 2 and len(esp_sas(b)) == 2, a.log_text()
