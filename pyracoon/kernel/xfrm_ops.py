"""XFRM netlink to and from the kernel vocabulary (:mod:`.ops`), for ``XfrmSocket``'s own path.

XFRM's answers and announcements (ACQUIRE, EXPIRE, SA and policy changes) become events
directly, with no PF_KEY message on the way, and each request becomes XFRM structures through
the neutral builders of :mod:`.xfrm_structs`; the events are the ones ``pfkey_codec.event_of``
makes of the PF_KEY path's messages (``tests/kernel/test_xfrm_ops.py``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Protocol, TypeVar

from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    Table,
)

from . import netlink as nl
from . import ops, pfkey_codec
from .pfkey import (
    IPAddress,
)
from .sadb import (
    MsgType,
)
from .xfrm_structs import (
    AF_INET,
    AF_INET6,
    DIRECTION_OF_XFRM,
    USERPOLICY_ID,
    USERPOLICY_INFO,
    USERSA_INFO,
    XFRM_DIR,
    XFRM_MSG_ACQUIRE,
    XFRM_MSG_DELPOLICY,
    XFRM_MSG_DELSA,
    XFRM_MSG_EXPIRE,
    XFRM_MSG_FLUSHPOLICY,
    XFRM_MSG_FLUSHSA,
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_NEWSA,
    XFRM_MSG_POLEXPIRE,
    XFRM_MSG_UPDPOLICY,
    XFRM_MSG_UPDSA,
    XFRMA_POLICY,
    Selector,
    Template,
    UserpolicyInfo,
    UsersaInfo,
    flushed_proto,
    hard_lifetime,
    lifetime_cfg,
    parse_acquire,
    parse_delsa,
    parse_expire,
    parse_polexpire,
    policy_info,
    policy_parts,
    sa_algorithms,
    sa_info,
    sa_mode,
    selector,
    state_algorithms,
)

# ---------------------------------------------------------------------------------------------
# XFRM -> the vocabulary: what pfkey_codec.event_of makes of the PF_KEY path's messages


def kernel_sa(
    info: UsersaInfo, a: nl.Attributes, state: ops.SaState | None = None
) -> ops.KernelSa | None:
    """One XFRM state as the vocabulary names it (None for a protocol it has no name for, such
    as the IP-in-IP states the kernel makes for IPComp tunnels)."""
    proto = ops.Proto.of_ip_number(info.proto)
    if proto is None:
        return None
    if state is None:
        state = ops.SaState.MATURE if state_algorithms(a).keyed else ops.SaState.LARVAL
    sa = ops.SaId(proto, info.spi, info.saddr, info.daddr)
    return ops.KernelSa(sa, state, sa_mode(info.mode), info.reqid)


def _side(addr: IPAddress, prefixlen: int, proto: int, port: int) -> ops.Selector:
    return ops.Selector(ipaddress.ip_network(f"{addr}/{prefixlen}", strict=False), proto, port)


def vocabulary_policy(info: UserpolicyInfo, a: nl.Attributes) -> ops.Policy | str | None:
    """One XFRM policy as the vocabulary names it; a string says why it cannot (a per-socket
    policy, a selector of no address family), in the words ``pfkey_codec.policy_of`` uses;
    None for a sub-policy."""
    parts = policy_parts(info, a)
    if parts is None:
        return None
    sel = info.sel
    if sel.family not in (AF_INET, AF_INET6):
        return _NO_POLICY
    direction = DIRECTION_OF_XFRM.get(parts.direction)
    if direction is None:
        ptype = int(pfkey_codec.ACTION[parts.action])
        return f"policy direction {parts.direction + 1} / type {ptype}"
    requests = []
    for t in parts.templates:
        proto = ops.Proto.of_ip_number(t.proto)
        if proto is not None:  # another protocol is not ours to negotiate
            requests.append(ops.IpsecRequest(proto, t.mode, t.level, t.reqid, t.src, t.dst))
    ulp = sel.proto or 255
    return ops.Policy(
        direction,
        _side(sel.saddr, sel.prefixlen_s, ulp, sel.sport),
        _side(sel.daddr, sel.prefixlen_d, ulp, sel.dport),
        parts.action,
        tuple(requests),
        info.index,
        hard_lifetime(info.lft),
    )


def policy_event(
    change: ops.PolicyChange,
    mtype: MsgType,
    info: UserpolicyInfo,
    a: nl.Attributes,
    seq: int,
    ours: bool,
    last: bool = True,
) -> ops.Event | None:
    """A PolicyEvent, or Unsupported named by the PF_KEY message type the PF_KEY path would
    have built (``mtype``), so that both paths say the same."""
    found = vocabulary_policy(info, a)
    if found is None:
        return None
    if isinstance(found, str):
        if mtype == MsgType.X_SPDDUMP:  # a dump entry still counts towards the dump's end
            return ops.PolicyEvent(change, seq, ours, None, 0, last)
        return ops.Unsupported(f"SADB_{mtype.name} with {found}", found == _NO_POLICY)
    return ops.PolicyEvent(change, seq, ours, found, 0, last)


_NO_POLICY = "no X_POLICY or address extension"


def no_policy(mtype: MsgType) -> ops.Unsupported:
    """What the PF_KEY path's bare reply (no X_POLICY) to an SPD request reads as."""
    return ops.Unsupported(f"SADB_{mtype.name} with {_NO_POLICY}", True)


def sa_event(
    change: ops.SaChange,
    info: UsersaInfo,
    a: nl.Attributes,
    seq: int,
    ours: bool,
    state: ops.SaState | None = None,
    last: bool = True,
) -> ops.SaEvent | None:
    sa = kernel_sa(info, a, state)
    return None if sa is None else ops.SaEvent(change, seq, ours, sa.id.proto, sa, 0, last)


def vocabulary_event(m: nl.NlMsg, pid: int) -> ops.Event | None:
    """One XFRM notification as an event for the socket of process ``pid`` (None for what the
    vocabulary has no word for); ``event_message`` is its PF_KEY twin."""
    p, ours = m.payload, m.pid == pid
    if m.type == XFRM_MSG_ACQUIRE:
        seq, ip_proto, saddr, daddr, policy = parse_acquire(p)
        proto = ops.Proto.of_ip_number(ip_proto)
        return None if proto is None else ops.Acquire(seq, policy.index, saddr, daddr, proto)
    if m.type == XFRM_MSG_EXPIRE:
        info, hard = parse_expire(p)
        if hard:
            return sa_event(
                ops.SaChange.HARD_EXPIRE, info, nl.Attributes(), 0, False, ops.SaState.DEAD
            )
        return sa_event(
            ops.SaChange.SOFT_EXPIRE, info, nl.Attributes(), 0, False, ops.SaState.DYING
        )
    if m.type == XFRM_MSG_POLEXPIRE:
        pol, hard, a = parse_polexpire(p)
        if not hard:
            return None  # PF_KEY has no soft policy expiry, so the vocabulary has none either
        return policy_event(ops.PolicyChange.EXPIRE, MsgType.X_SPDEXPIRE, pol, a, 0, False)
    if m.type in (XFRM_MSG_NEWSA, XFRM_MSG_UPDSA):
        change = ops.SaChange.ADD if m.type == XFRM_MSG_NEWSA else ops.SaChange.UPDATE
        a = nl.parse_attrs(p, USERSA_INFO.size)
        return sa_event(change, UsersaInfo.unpack(p), a, m.seq, ours)
    if m.type == XFRM_MSG_DELSA:
        info, a = parse_delsa(p)
        return sa_event(ops.SaChange.DELETE, info, a, m.seq, ours)
    if m.type == XFRM_MSG_FLUSHSA:
        flushed = ops.Proto.of_ip_number(flushed_proto(p))
        return ops.SaEvent(ops.SaChange.FLUSH, m.seq, ours, flushed, None, 0)
    if m.type in (XFRM_MSG_NEWPOLICY, XFRM_MSG_UPDPOLICY):
        new = m.type == XFRM_MSG_NEWPOLICY
        return policy_event(
            ops.PolicyChange.ADD if new else ops.PolicyChange.UPDATE,
            MsgType.X_SPDADD if new else MsgType.X_SPDUPDATE,
            UserpolicyInfo.unpack(p),
            nl.parse_attrs(p, USERPOLICY_INFO.size),
            m.seq,
            ours,
        )
    if m.type == XFRM_MSG_DELPOLICY:
        a = nl.parse_attrs(p, USERPOLICY_ID.size)
        raw = a.get(XFRMA_POLICY)
        if raw is None:
            return None
        pol = UserpolicyInfo.unpack(raw)
        return policy_event(ops.PolicyChange.DELETE, MsgType.X_SPDDELETE, pol, a, m.seq, ours)
    if m.type == XFRM_MSG_FLUSHPOLICY:
        return ops.PolicyEvent(ops.PolicyChange.FLUSH, m.seq, ours, None, 0)
    return None


# ---------------------------------------------------------------------------------------------
# the vocabulary -> XFRM


class _Row(Protocol):
    @property
    def xfrm_name(self) -> str | None: ...

    @property
    def sadb_id(self) -> int | None: ...


R = TypeVar("R", bound=_Row)


def kernel_row(row: R | None, table: Table[R]) -> R | None:
    """The row a kernel knows ``row`` by: itself when it has an XFRM name; else the row of its
    SADB number (``des_iv64`` is DES to every kernel); None for "no algorithm" -- racoon's
    ``non_auth`` (SADB number 0), and what no kernel interface numbers, which PF_KEY cannot
    send either."""
    if row is None or row.xfrm_name is not None:
        return row
    return table.get("sadb_id", row.sadb_id) if row.sadb_id else None


def _keyed(row: R | None, key: bytes) -> tuple[R, bytes, int] | None:
    return None if row is None else (row, key, len(key) * 8)


def install_request(req: ops.InstallSa) -> tuple[UsersaInfo, list[tuple[int, bytes]]]:
    """NEWSA/UPDSA for ``req``: the table's rows give the XFRM names."""
    proto = req.sa.proto.ip_number
    info = sa_info(
        proto,
        req.sa.src,
        req.sa.dst,
        spi=req.sa.spi,
        seq=req.seq,
        reqid=req.reqid,
        mode=req.mode,
        replay=req.replay,
        lft=lifetime_cfg(req.hard, req.soft),
    )
    auth = _keyed(kernel_row(req.auth, AUTH_ALGORITHMS), req.auth_key)
    cipher = _keyed(kernel_row(req.cipher, CIPHERS), req.enc_key)
    return info, sa_algorithms(proto, auth, cipher, req.compression)


def ops_selector(src: ops.Selector, dst: ops.Selector) -> Selector:
    s, d = src.network, dst.network
    return selector(
        s.network_address, s.prefixlen, src.port, d.network_address, d.prefixlen, dst.port,
        src.proto,
    )  # fmt: skip


def update_policy_request(
    req: ops.UpdatePolicy, new_reqid: Callable[[], int]
) -> tuple[UserpolicyInfo, list[tuple[int, bytes]]]:
    p = req.policy
    templates = [
        Template(r.proto.ip_number, r.mode, r.level, r.reqid, r.src, r.dst) for r in p.requests
    ]
    return policy_info(
        ops_selector(p.src, p.dst),
        p.action,
        XFRM_DIR[p.direction],
        lifetime_cfg(p.lifetime),
        templates,
        new_reqid,
    )


def refusal_event(req: ops.Request, err: int) -> ops.Event:
    """The answer to ``req`` when the kernel (or this backend) refused it with ``err``."""
    if isinstance(req, ops.UpdatePolicy | ops.DeletePolicy | ops.DumpPolicy):
        pchange = {
            ops.UpdatePolicy: ops.PolicyChange.UPDATE,
            ops.DeletePolicy: ops.PolicyChange.DELETE,
            ops.DumpPolicy: ops.PolicyChange.DUMP,
        }[type(req)]
        return ops.PolicyEvent(pchange, req.seq, True, None, err)
    proto: ops.Proto | None = None
    if isinstance(req, ops.InstallSa):
        change = ops.SaChange.UPDATE if req.update else ops.SaChange.ADD
        proto = req.sa.proto
    elif isinstance(req, ops.DeleteSa):
        change, proto = ops.SaChange.DELETE, req.sa.proto
    elif isinstance(req, ops.GetSpi | ops.Register | ops.FlushSa):
        change = {
            ops.GetSpi: ops.SaChange.GETSPI,
            ops.Register: ops.SaChange.REGISTER,
            ops.FlushSa: ops.SaChange.FLUSH,
        }[type(req)]
        proto = req.proto
    else:
        change = ops.SaChange.DUMP
    return ops.SaEvent(change, req.seq, True, proto, None, err)
