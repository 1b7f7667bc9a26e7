"""The SPD cache and generated policies (racoon's pfkey.c and policy.c).

racoon keeps a copy of the kernel's security policy database: filled by X_SPDDUMP at start and
after a reload, kept current by the SPD broadcasts (X_SPDADD, X_SPDUPDATE, X_SPDDELETE,
X_SPDEXPIRE, X_SPDFLUSH).  ACQUIREs name a policy by id, and a quick-mode responder looks the
peer's IDs up in it (racoon's getsp_r(): exactly first, then the first SP whose selectors
contain them).  A responder without a policy and ``generate_policy on|unique`` installs one
from the peer's first proposal (X_SPDUPDATE in, fwd in tunnel mode, out) and removes it with
X_SPDDELETE when the phase 2 goes.

The cache speaks the kernel vocabulary (:mod:`pyracoon.kernel.ops`): it is filled from
``PolicyEvent`` values and asks with ``DumpPolicy``, ``UpdatePolicy`` and ``DeletePolicy``,
whatever backend carries them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from pyracoon.config.model import GeneratePolicy, SaInfo
from pyracoon.kernel import ops
from pyracoon.wire import SA
from pyracoon.wire.constants import EncapsulationMode

from .context import Output
from .errors import NoProposalChosen
from .events import Endpoint, Level
from .proposals import ProtocolOffer, parse_phase2_transform, sainfo_transforms
from .traffic import ENCAP_OF_MODE, KERNEL_PROTO, PROTOCOL_OF_KERNEL, Selector


@dataclass
class SpdEntry:
    """One cached SPD entry (racoon's SPD cache, racoon's pfkey.c)."""

    policy_id: int
    direction: ops.Direction
    src: Selector
    dst: Selector
    requests: tuple[ops.IpsecRequest, ...]
    action: ops.PolicyAction = ops.PolicyAction.IPSEC


#: One policy generate_policy installed for a quick mode: (direction, src, dst).
Generated = tuple[ops.Direction, Selector, Selector]


def entry_of_policy(policy: ops.Policy) -> SpdEntry:
    """The cache entry of one kernel policy."""
    return SpdEntry(
        policy.id,
        policy.direction,
        Selector.of_kernel(policy.src),
        Selector.of_kernel(policy.dst),
        policy.requests,
        policy.action,
    )


# ---------------------------------------------------------------------- lookups
def _contains(outer: Selector, inner: Selector) -> bool:
    """Does SP selector ``outer`` cover ID selector ``inner`` (address, protocol, port)?"""
    o, i = outer.network, inner.network
    if isinstance(o, IPv4Network) and isinstance(i, IPv4Network):
        covered = i.subnet_of(o)
    elif isinstance(o, IPv6Network) and isinstance(i, IPv6Network):
        covered = i.subnet_of(o)
    else:  # different families
        return False
    if not covered:
        return False
    if outer.proto != 255 and outer.proto != inner.proto:
        return False
    return outer.port in (0, inner.port)


def tunnel_request(sp: SpdEntry) -> ops.IpsecRequest | None:
    """The tunnel-mode request of ``sp`` with its endpoints: its ``dst`` is the IKE peer."""
    return next((r for r in sp.requests if r.mode is ops.Mode.TUNNEL and r.dst), None)


def policy_offers(
    sp: SpdEntry, twin: SpdEntry | None, *, inbound_first: bool
) -> list[ProtocolOffer]:
    """One protocol offer per ipsecrequest of ``sp``, in reverse SPD order as racoon proposes
    them (racoon.conf(5): sainfo), each with the reqids of both directions: ``sp``'s own for its
    direction, ``twin``'s (the SP of the other direction) for the other one when it has a request
    for the same protocol. ``inbound_first`` says that ``sp`` is the inbound SP (responder)."""
    offers = []
    for req in reversed(sp.requests):
        protocol = PROTOCOL_OF_KERNEL[req.proto]
        other = req.reqid
        for r in twin.requests if twin is not None else ():
            if r.proto == req.proto:
                other = r.reqid
        mode = ENCAP_OF_MODE.get(req.mode, EncapsulationMode.TRANSPORT)
        reqid_in, reqid_out = (req.reqid, other) if inbound_first else (other, req.reqid)
        offers.append(ProtocolOffer(protocol, mode, reqid_in, reqid_out))
    return offers


@dataclass
class SpdCache:
    """The cached SPD, and the policies generate_policy made."""

    out: Output
    entries: dict[int, SpdEntry] = field(default_factory=dict)
    #: Between our X_SPDDUMP request and its last reply (ACQUIREs wait meanwhile).
    loading: bool = False
    _next_generated_reqid: int = 0

    def request_dump(self, *, clear: bool) -> None:
        """Ask the kernel for the whole SPD (after emptying the cache, on reload)."""
        if clear:
            self.entries.clear()
        self.loading = True
        self.out.kernel_request(ops.DumpPolicy(self.out.next_seq()))

    def receive(self, event: ops.PolicyEvent) -> bool:
        """An SPD event from the kernel; True when it was the end of our dump."""
        change = event.change
        if change in (ops.PolicyChange.DUMP, ops.PolicyChange.ADD, ops.PolicyChange.UPDATE):
            if event.errno == 0 and event.policy is not None:
                entry = entry_of_policy(event.policy)
                self.entries[entry.policy_id] = entry
            # the last entry of our dump, or ENOENT: an empty SPD
            return change is ops.PolicyChange.DUMP and event.ours and event.last
        if change in (ops.PolicyChange.DELETE, ops.PolicyChange.EXPIRE):
            if event.policy is not None:
                self.entries.pop(event.policy.id, None)
        elif change is ops.PolicyChange.FLUSH:
            self.entries.clear()
        return False

    def find(
        self, direction: ops.Direction, src: Selector, dst: Selector, *, wild: bool = False
    ) -> SpdEntry | None:
        """The SP with exactly these selectors; with ``wild``, else the first whose selectors
        contain them (racoon's getsp_r() falls back to cmpspidxwild() the same way)."""
        for sp in self.entries.values():
            if sp.direction == direction and sp.src == src and sp.dst == dst:
                return sp
        if not wild:
            return None
        for sp in self.entries.values():
            if sp.direction == direction and _contains(sp.src, src) and _contains(sp.dst, dst):
                return sp
        return None

    # ------------------------------------------------------------------ responder
    def responder_offers(
        self,
        generate_policy: GeneratePolicy,
        sa: SA,
        local: Selector,
        remote: Selector,
        sainfo: SaInfo,
        ends: tuple[Endpoint, Endpoint],
        generated: list[Generated],
    ) -> list[ProtocolOffer]:
        """What a quick-mode responder may accept for IDs ``remote -> local``: the inbound SP's
        requests, or with generate_policy the peer's first proposal, whose policies are
        installed now and appended to ``generated``.  ``ends`` is (our endpoint, the peer's)."""
        sp_in = self.find(ops.Direction.IN, remote, local, wild=True)
        sp_out = self.find(ops.Direction.OUT, local, remote, wild=True)
        if sp_in is None:
            if generate_policy is GeneratePolicy.OFF:
                raise NoProposalChosen(
                    f"no policy found: {remote} -> {local} (in)",
                    details=(
                        "add an SPD entry for this traffic (setkey spdadd ... -P in "
                        "ipsec ...) or set generate_policy on in the remote block",
                    ),
                )
            return self._generated_offers(
                generate_policy, sa, local, remote, sainfo, ends, generated
            )
        offers = policy_offers(sp_in, sp_out, inbound_first=True)
        for offer in offers:
            offer.transforms = sainfo_transforms(
                sainfo, offer.protocol, offer.mode, sainfo.pfs_group
            )
        return offers

    def _generated_offers(
        self,
        generate_policy: GeneratePolicy,
        sa: SA,
        local: Selector,
        remote: Selector,
        sainfo: SaInfo,
        ends: tuple[Endpoint, Endpoint],
        generated: list[Generated],
    ) -> list[ProtocolOffer]:
        """generate_policy (racoon's pfkey.c): the responder has no SP, so it takes the
        protocols and modes of the peer's first proposal and installs X_SPDUPDATE in, fwd
        (tunnel mode, as Linux needs) and out, level require -- or unique with a reqid counted
        from 1 under ``generate_policy unique`` -- living as long as the SA."""
        group = sa.proposal_groups()[0]
        unique = generate_policy is GeneratePolicy.UNIQUE
        reqid = 0
        if unique:
            self._next_generated_reqid = self._next_generated_reqid % ops.MANUAL_REQID_MAX + 1
            reqid = self._next_generated_reqid
        offers = []
        for p in group:
            if p.protocol_id not in KERNEL_PROTO or not p.transforms:
                continue
            mode = parse_phase2_transform(p.protocol_id, p.transforms[0]).mode
            offer = ProtocolOffer(p.protocol_id, mode, reqid, reqid)
            offer.transforms = sainfo_transforms(sainfo, p.protocol_id, mode, sainfo.pfs_group)
            offers.append(offer)
        me, peer = ends
        self.out.log(Level.INFO, f"generate policy: {remote} <-> {local}", peer[0])
        tunnel = any(o.mode == EncapsulationMode.TUNNEL for o in offers)
        level = ops.Level.UNIQUE if unique else ops.Level.REQUIRE
        directions = [(ops.Direction.IN, remote, local)]
        if tunnel:
            directions.append((ops.Direction.FWD, remote, local))
        directions.append((ops.Direction.OUT, local, remote))
        for direction, src, dst in directions:
            outbound = direction is ops.Direction.OUT
            addrs = (me[0], peer[0]) if outbound else (peer[0], me[0])
            reqs = tuple(
                ops.IpsecRequest(
                    KERNEL_PROTO[o.protocol],
                    ops.Mode.TUNNEL if tunnel else ops.Mode.TRANSPORT,
                    level,
                    reqid,
                    *(addrs if tunnel else (None, None)),
                )
                for o in reversed(offers)
            )
            policy = ops.Policy(
                direction, src.kernel(), dst.kernel(), ops.PolicyAction.IPSEC, reqs,
                lifetime=ops.Lifetime(addtime=sainfo.lifetime),
            )  # fmt: skip
            self.out.kernel_request(ops.UpdatePolicy(self.out.next_seq(), policy))
            generated.append((direction, src, dst))
        return offers

    def remove_generated(self, generated: list[Generated]) -> None:
        """X_SPDDELETE of what generate_policy installed (racoon's pfkey.c)."""
        for direction, src, dst in generated:
            self.out.kernel_request(
                ops.DeletePolicy(self.out.next_seq(), direction, src.kernel(), dst.kernel())
            )
        generated.clear()


__all__ = [
    "Generated", "SpdCache", "SpdEntry", "entry_of_policy", "policy_offers",
    "tunnel_request",
]  # fmt: skip
