"""The simulated kernel's state, and what changes it without a PF_KEY request.

``KernelState`` is the base of ``InMemoryKernel`` (``memory.py``): it holds the SAD and the SPD,
the open sockets and the counters, delivers messages as ``pfkey_broadcast`` does, builds the SA
and policy messages every reply and broadcast carries, applies lifetimes (``tick``) and passes
packets through the SPD (``output``, ``input``), which is how an ACQUIRE is provoked. The
request handlers that answer what sockets send live in ``memory.py``; keeping them apart keeps
each module one concern and under the project's size rule. The rules they follow are in
``memory.py``'s docstring and docs/kernel.md.
"""

from __future__ import annotations

import ipaddress
import time

from .memory_tables import (
    ACQUIRE_REPLAY,
    LARVAL_LIFETIME,
    SATYPE_OF_PROTO,
    Clock,
    Deliver,
    Endpoint,
    Flow,
    PacketResult,
    SAEntry,
    Selector,
    SPEntry,
    Template,
    Verdict,
)
from .pfkey import (
    SA,
    SA2,
    Address,
    IPAddress,
    Lifetime,
    Message,
    Policy,
    Proposal,
    encode,
)
from .sadb import (
    MANUAL_REQID_MAX,
    ULPROTO_ANY,
    Direction,
    ExtType,
    Mode,
    MsgType,
    PolicyType,
    SaState,
    SaType,
)


class KernelState:
    """The SAD, the SPD and the sockets of an ``InMemoryKernel``, with delivery, lifetimes
    and the packet path; ``InMemoryKernel`` adds the PF_KEY requests."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.sad: dict[tuple[int, IPAddress, int], SAEntry] = {}
        """The states with an SPI, by (SA type, destination, SPI)."""
        self.acquiring: list[SAEntry] = []
        """Larval states without an SPI yet: what an ACQUIRE (or a GETSPI that found no free
        SPI) leaves in the SAD until an SA replaces it or it expires."""
        self.spd: list[SPEntry] = []
        self.endpoints: dict[int, Endpoint] = {}
        self._next_endpoint = 1
        self._idx_generator = 0
        """``xfrm_gen_index``'s counter: +8 per policy, never reset (flushes keep it)."""
        self._born = 0
        self._acquire_seq = 0
        self._last_reqid = MANUAL_REQID_MAX
        """``gen_reqid``'s counter: it only grows (wrapping past 2**32), flushes do not reset it."""

    # -- clients ------------------------------------------------------------------------------

    def attach(self) -> Endpoint:
        ep = Endpoint(self._next_endpoint)
        self._next_endpoint += 1
        self.endpoints[ep.id] = ep
        return ep

    def detach(self, ep: Endpoint) -> None:
        self.endpoints.pop(ep.id, None)

    def now(self) -> int:
        return int(self.clock())

    def _next_born(self) -> int:
        self._born += 1
        return self._born

    # -- delivery -----------------------------------------------------------------------------

    def _deliver(self, msg: Message | bytes, how: Deliver, one: Endpoint | None = None) -> None:
        """``pfkey_broadcast``: every promiscuous socket gets a copy of everything, even what it
        also gets as a target ("you receive it twice", says af_key); then the targets."""
        data = msg if isinstance(msg, bytes) else encode(msg)
        for ep in list(self.endpoints.values()):
            if ep.promisc:
                ep.deliver(data)
            if ep is one:
                continue
            if how is Deliver.ALL or (how is Deliver.REGISTERED and ep.registered):
                ep.deliver(data)
        if one is not None and one.id in self.endpoints:
            one.deliver(data)

    def _unicast(self, msg: Message, ep: Endpoint) -> None:
        self._deliver(msg, Deliver.ONE, ep)

    def _broadcast(self, msg: Message) -> None:
        self._deliver(msg, Deliver.ALL)

    def _to_registered(self, msg: Message, also: Endpoint | None = None) -> None:
        """REGISTER, ACQUIRE and EXPIRE: ``BROADCAST_REGISTERED`` asks only whether a socket is
        registered at all, not for which SA type, so an AH-only listener hears of ESP too."""
        self._deliver(msg, Deliver.REGISTERED, also)

    # -- the SAD's states ---------------------------------------------------------------------

    def states(self) -> list[SAEntry]:
        """Every state of the SAD, larval ones without an SPI too, the newest first (the order
        of Linux's ``state_all`` list, which DUMP walks)."""
        return sorted([*self.sad.values(), *self.acquiring], key=lambda e: -e.born)

    def _insert(self, e: SAEntry) -> None:
        e.born = self._next_born()
        if e.spi:
            self.sad[e.key] = e
        else:
            self.acquiring.append(e)

    def _unlink(self, e: SAEntry) -> None:
        if e.spi and self.sad.get(e.key) is e:
            del self.sad[e.key]
        elif e in self.acquiring:
            self.acquiring.remove(e)

    def _find_acq(
        self, satype: int, src: IPAddress, dst: IPAddress, mode: int, reqid: int
    ) -> SAEntry | None:
        """``__find_acq_core``: a larval state without an SPI for exactly this SA."""
        for e in self.acquiring:
            if (
                e.state == SaState.LARVAL
                and not e.failed
                and (e.satype, e.src.addr, e.dst.addr, e.mode, e.reqid)
                == (satype, src, dst, mode, reqid)
            ):
                return e
        return None

    def _find_acq_byseq(self, seq: int) -> SAEntry | None:
        """``__xfrm_find_acq_byseq``: the larval state an ACQUIRE with this seq announced."""
        for e in self.states():
            if seq and e.acquire_seq == seq and e.state == SaState.LARVAL and not e.failed:
                return e
        return None

    # -- what the kernel reports -------------------------------------------------------------

    def _sa_message(
        self, head: Message, e: SAEntry, *, keys: bool = True, lifetimes: int = 3
    ) -> Message:
        """``pfkey_xfrm_state2msg``: what every SA message carries, in Linux's order.

        ``lifetimes`` is af_key's ``hsc``: 3 for both limits, 2 the hard one (a hard EXPIRE),
        1 the soft one. Keys go out whenever af_key's ``add_keys`` is set, which is every
        message but EXPIRE -- the broadcasts of ADD, UPDATE and DELETE to every socket too.
        """
        head.satype = e.satype
        head.add(SA(e.spi, e.replay, e.state, e.auth, e.encrypt, e.flags))
        if lifetimes & 2:
            head.add(_limit(ExtType.LIFETIME_HARD, e.hard))
        if lifetimes & 1:
            head.add(_limit(ExtType.LIFETIME_SOFT, e.soft))
        head.add(Lifetime(ExtType.LIFETIME_CURRENT, e.allocations, e.bytes, e.addtime, e.usetime))
        head.add(e.src).add(e.dst)
        sel = e.sel()
        if sel.src != e.src.addr:
            proto = sel.proto or ULPROTO_ANY
            head.add(Address(ExtType.ADDRESS_PROXY, sel.src, sel.sport, sel.src_plen, proto))
        if keys and e.key_auth is not None and e.key_auth.bits:
            head.add(e.key_auth)
        if keys and e.key_encrypt is not None and e.key_encrypt.bits:
            head.add(e.key_encrypt)
        head.add(SA2(e.mode, 0, e.reqid))
        for x in e.extras:
            if x.type != ExtType.X_NAT_T_OA:  # kept for the SA, never reported
                head.add(x)
        return head

    def _sp_message(self, head: Message, p: SPEntry) -> Message:
        """``pfkey_xfrm_policy2msg``: what SPDGET, SPDDUMP and the SPD broadcasts carry, in
        Linux's order -- both limits always, zero when none was set."""
        head.add(p.src).add(p.dst)
        head.add(_limit(ExtType.LIFETIME_HARD, p.hard))
        head.add(_limit(ExtType.LIFETIME_SOFT, p.soft))
        head.add(Lifetime(ExtType.LIFETIME_CURRENT, 0, 0, p.created, p.lastused))
        requests = [t.request() for t in p.requests]
        head.add(Policy(p.policy_type, p.dir, p.id, p.priority, requests))
        if p.ctx is not None:
            head.add(p.ctx)
        return head

    # -- lifetimes ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply every lifetime that has run out by now (soft: dying + EXPIRE; hard: remove)."""
        now = self.now()
        for entry in self.states():
            self._check_expiry(entry, now)
        for p in list(self.spd):
            if self._policy_expired(p, now):
                # xfrm_policy_timer deletes it; af_key's key_notify_policy_expire is empty.
                self.spd.remove(p)

    @staticmethod
    def _policy_expired(p: SPEntry, now: int) -> bool:
        if p.hard is None:
            return False
        if p.hard.addtime and now - p.created >= p.hard.addtime:
            return True
        return bool(p.hard.usetime and now - (p.lastused or p.created) >= p.hard.usetime)

    @staticmethod
    def _deadline(limit: Lifetime | None, e: SAEntry) -> int | None:
        """When ``limit``'s time part runs out (usetime counts from the first use only)."""
        if limit is None:
            return None
        times = []
        if limit.addtime:
            times.append(e.addtime + limit.addtime)
        if limit.usetime and e.usetime:
            times.append(e.usetime + limit.usetime)
        return min(times) if times else None

    @staticmethod
    def _count_hit(limit: Lifetime | None, e: SAEntry) -> bool:
        if limit is None:
            return False
        if limit.bytes and e.bytes >= limit.bytes:
            return True
        return bool(limit.allocations and e.allocations >= limit.allocations)

    def _check_expiry(self, e: SAEntry, now: int) -> None:
        """``xfrm_timer_handler`` and ``xfrm_state_check_expire``: each limit fires when its
        time comes, so a clock that jumps past both sends the soft EXPIRE before the hard one;
        a byte or packet count that passes both at once sends only the hard one."""
        if self.sad.get(e.key) is not e and e not in self.acquiring:
            return
        hard_at, soft_at = self._deadline(e.hard, e), self._deadline(e.soft, e)
        hard = (hard_at is not None and hard_at <= now) or self._count_hit(e.hard, e)
        may_warn = not e.soft_expired and e.state != SaState.LARVAL
        if may_warn and soft_at is not None and soft_at <= now:
            if not hard or hard_at is None or soft_at < hard_at:
                self._soft_expire(e)
        if hard:
            self._unlink(e)
            e.state = SaState.DEAD
            self._expire(e, hard=True)
        elif may_warn and not e.soft_expired and self._count_hit(e.soft, e):
            self._soft_expire(e)

    def _soft_expire(self, e: SAEntry) -> None:
        e.soft_expired = True
        e.state = SaState.DYING
        self._expire(e, hard=False)

    def _expire(self, e: SAEntry, *, hard: bool) -> None:
        """``key_notify_sa_expire``: the SA without keys, with the limit that ran out."""
        head = Message(MsgType.EXPIRE, e.satype, 0, 0, 0)
        self._to_registered(self._sa_message(head, e, keys=False, lifetimes=2 if hard else 1))

    # -- the packet path ----------------------------------------------------------------------

    def _lookup_policy(
        self, direction: int, src: IPAddress, dst: IPAddress, proto: int, sport: int, dport: int
    ) -> SPEntry | None:
        best: SPEntry | None = None
        for p in self.spd:
            if p.dir == direction and p.matches(src, dst, proto, sport, dport):
                if best is None or p.priority < best.priority:
                    best = p
        return best

    def _candidates(
        self, satype: int, src: IPAddress, dst: IPAddress, t: Template
    ) -> list[SAEntry]:
        """The states ``xfrm_state_find`` looks at for a template: same addresses, protocol,
        mode and reqid -- exactly the reqid, 0 only matching 0."""
        return [
            e
            for e in self.states()
            if e.satype == satype
            and e.src.addr == src
            and e.dst.addr == dst
            and e.mode == t.mode
            and e.reqid == t.reqid
        ]

    def _find_sa(
        self, satype: int, src: IPAddress, dst: IPAddress, t: Template, flow: Flow
    ) -> SAEntry | None:
        """A usable SA for the template: valid, selecting the flow, not dying if it can be
        helped, else the newest."""
        best: SAEntry | None = None
        for e in self._candidates(satype, src, dst, t):
            if e.state not in (SaState.MATURE, SaState.DYING) or not e.sel().matches(*flow):
                continue
            rank = (e.state == SaState.MATURE, e.addtime)
            if best is None or rank > (best.state == SaState.MATURE, best.addtime):
                best = e
        return best

    def output(
        self,
        src: str | IPAddress,
        dst: str | IPAddress,
        proto: int = 17,
        sport: int = 0,
        dport: int = 0,
        size: int = 64,
    ) -> PacketResult:
        """Send one packet of ``size`` bytes from this host: what does the SPD do with it?

        A policy that wants IPsec but finds no SA for a template sends an ACQUIRE to the
        registered key managers and leaves a larval state for it, unless one is there already
        (negotiation under way) or a failed one selects this very flow; templates are tried in
        order and the first required one that is missing stops the search. With level ``use``
        the packet leaves in the clear meanwhile -- the seed memo's "the first few packets go
        out unencrypted" -- with ``require`` or ``unique`` it is dropped.
        """
        self.tick()
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        policy = self._lookup_policy(Direction.OUTBOUND, s, d, proto, sport, dport)
        if policy is None:
            return PacketResult(Verdict.CLEAR, reason="no policy")
        policy.lastused = self.now()
        if policy.policy_type == PolicyType.DISCARD:
            return PacketResult(Verdict.DROPPED, policy.id, reason="policy discard")
        if policy.policy_type != PolicyType.IPSEC:
            return PacketResult(Verdict.CLEAR, policy.id, reason="policy bypasses IPsec")
        flow: Flow = (s, d, proto, sport, dport)
        found: list[SAEntry] = []
        missing: list[Template] = []
        acquired = False
        for t in policy.requests:
            a, b = (t.src, t.dst) if t.mode == Mode.TUNNEL else (s, d)
            assert a is not None and b is not None  # a tunnel template has both endpoints
            satype = SATYPE_OF_PROTO.get(t.proto)
            sa = None if satype is None else self._find_sa(satype, a, b, t, flow)
            if sa is not None:
                found.append(sa)
                continue
            if satype is not None:  # routing/dstopts templates have no SA type to ask for
                acquired = self._acquire(policy, t, satype, a, b, flow) or acquired
            missing.append(t)
            if not t.optional:
                break
        if missing:
            if all(t.optional for t in missing):
                verdict, why = Verdict.CLEAR, "no SA yet, level use"
            else:
                verdict, why = Verdict.DROPPED, "no SA yet, level require"
            return PacketResult(verdict, policy.id, acquired=acquired, reason=why)
        now = self.now()
        for sa in found:
            sa.bytes += size
            sa.allocations += 1
            if not sa.usetime:
                sa.usetime = now
            self._check_expiry(sa, now)
        return PacketResult(Verdict.PROTECTED, policy.id, [sa.spi for sa in found])

    def input(
        self,
        src: str | IPAddress,
        dst: str | IPAddress,
        proto: int = 17,
        sport: int = 0,
        dport: int = 0,
        spi: int | None = None,
        size: int = 64,
    ) -> PacketResult:
        """Receive one packet; ``spi`` set means it arrived inside ESP with that SPI.

        A clear packet that meets an inbound ipsec policy of level require is dropped, which is
        why the memo's traffic stops while only one side has its keys.
        """
        self.tick()
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        if spi is not None:
            sa = self.sad.get((SaType.ESP, d, spi))
            if sa is None or sa.state not in (SaState.MATURE, SaState.DYING):
                return PacketResult(Verdict.DROPPED, reason=f"no SA for SPI {spi:#x}")
            now = self.now()
            sa.bytes += size
            sa.allocations += 1
            if not sa.usetime:
                sa.usetime = now
            self._check_expiry(sa, now)
            return PacketResult(Verdict.PROTECTED, spis=[spi])
        policy = self._lookup_policy(Direction.INBOUND, s, d, proto, sport, dport)
        if policy is None or policy.policy_type in (PolicyType.NONE, PolicyType.BYPASS):
            return PacketResult(Verdict.CLEAR, policy.id if policy else None)
        if policy.policy_type == PolicyType.DISCARD:
            return PacketResult(Verdict.DROPPED, policy.id, reason="policy discard")
        if policy.policy_type == PolicyType.IPSEC and any(not r.optional for r in policy.requests):
            return PacketResult(Verdict.DROPPED, policy.id, reason="clear packet, level require")
        return PacketResult(Verdict.CLEAR, policy.id)

    def _acquire(
        self,
        policy: SPEntry,
        t: Template,
        satype: int,
        src: IPAddress,
        dst: IPAddress,
        flow: Flow,
    ) -> bool:
        """``xfrm_state_find`` for a missing SA: ask the key managers unless a larval state is
        there already or a failed one selects this flow; then leave a larval state, SPI 0, with
        the ACQUIRE's seq, selecting the flow. No registered socket, no ACQUIRE and no state
        (``km_is_alive``)."""
        for e in self._candidates(satype, src, dst, t):
            if e.state == SaState.LARVAL:
                return False
            if e.failed and e.sel().matches(*flow):
                return False
        if not any(ep.registered for ep in self.endpoints.values()):
            return False
        self._acquire_seq = (self._acquire_seq + 1) & 0xFFFFFFFF or 1
        larval = SAEntry(
            satype,
            0,
            Address(ExtType.ADDRESS_SRC, src, 0, None, 0),
            Address(ExtType.ADDRESS_DST, dst, 0, None, 0),
            state=SaState.LARVAL,
            mode=t.mode,
            reqid=t.reqid,
            addtime=self.now(),
            hard=Lifetime(ExtType.LIFETIME_HARD, addtime=LARVAL_LIFETIME),
            selector=Selector.flow(*flow),
            acquire_seq=self._acquire_seq,
        )
        self._insert(larval)
        self._send_acquire(policy, larval)
        return True

    def _send_acquire(self, policy: SPEntry, x: SAEntry) -> None:
        """``pfkey_send_acquire``: the SA's addresses (full prefix, protocol 0), the policy as
        a bare X_POLICY header (type ipsec, dir out, its id and priority, no requests) and a
        proposal without combinations."""
        msg = Message(MsgType.ACQUIRE, x.satype, 0, x.acquire_seq, 0)
        msg.add(x.src).add(x.dst)
        msg.add(Policy(PolicyType.IPSEC, Direction.OUTBOUND, policy.id, policy.priority, []))
        msg.add(Proposal(ACQUIRE_REPLAY, []))
        self._to_registered(msg)


def _limit(ext_type: ExtType, lt: Lifetime | None) -> Lifetime:
    """A hard or soft limit as Linux reports it: zeros where nothing was set."""
    if lt is None:
        return Lifetime(ext_type)
    return Lifetime(ext_type, lt.allocations, lt.bytes, lt.addtime, lt.usetime)
