"""The kernel vocabulary (:mod:`.ops`) as PF_KEY v2 messages and back (RFC 2367, KAME extensions).

Why it is one module: every SADB number the key manager needs -- message and SA types, modes,
directions, levels, the ``sadb_id`` column of the algorithm table -- is chosen here and nowhere
above the kernel layer, so that the PF_KEY socket and the simulated kernel (which answers
PF_KEY) receive the same bytes racoon's pfkey.c would send for the same decision.  The XFRM
backend has a codec of its own (``XfrmSocket.submit``/``recv_event`` go to netlink directly)
and is held to this one: for every request and event the two give the same result
(tests/kernel/test_xfrm_ops.py).

``message_of`` builds the request racoon's pfkey.c builds for each decision (pk_sendgetspi,
pk_sendupdate, pk_sendadd, pk_senddelete, pk_sendspdupdate2, pk_sendspddelete...).
``event_of`` is total: any decoded :class:`~.pfkey.Message` becomes an event, and one this
vocabulary has no word for (a type we do not use, an SA of a protocol we do not negotiate) is
:class:`~.ops.Unsupported` with the reason, never an exception.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from pyracoon.crypto.algorithms import (
    IPCOMP_ALGORITHMS,
    auth_by_sadb_id,
    cipher_by_sadb_id,
)
from pyracoon.crypto.errors import UnknownAlgorithm

from . import ops
from .pfkey import SA, SA2, Address, IpsecRequest, Key, Lifetime, Message, Policy, SpiRange
from .sadb import Direction, ExtType, Level, Mode, MsgType, PolicyType, SaFlags, SaState, SaType

# The vocabulary's enums name the same things as the SADB numbers, by the same member names
# (Direction aside: IN/OUT against INBOUND/OUTBOUND), so each map is derived, not written out.
SATYPE = {p: SaType[p.name] for p in ops.Proto}
PROTO_OF_SATYPE: dict[SaType | None, ops.Proto] = {v: k for k, v in SATYPE.items()}
MODE = {m: Mode[m.name] for m in ops.Mode}
MODE_OF: dict[Mode | None, ops.Mode] = {v: k for k, v in MODE.items()}
DIRECTION = {
    ops.Direction.IN: Direction.INBOUND,
    ops.Direction.OUT: Direction.OUTBOUND,
    ops.Direction.FWD: Direction.FWD,
}
DIRECTION_OF: dict[Direction | None, ops.Direction] = {v: k for k, v in DIRECTION.items()}
LEVEL = {lv: Level[lv.name] for lv in ops.Level}
LEVEL_OF: dict[Level | None, ops.Level] = {v: k for k, v in LEVEL.items()}
ACTION = {a: PolicyType[a.name] for a in ops.PolicyAction}
ACTION_OF: dict[PolicyType | None, ops.PolicyAction] = {v: k for k, v in ACTION.items()}
STATE_OF: dict[SaState | None, ops.SaState] = {SaState[st.name]: st for st in ops.SaState}

_SA_CHANGE = {
    MsgType.GETSPI: ops.SaChange.GETSPI,
    MsgType.UPDATE: ops.SaChange.UPDATE,
    MsgType.ADD: ops.SaChange.ADD,
    MsgType.DELETE: ops.SaChange.DELETE,
    MsgType.REGISTER: ops.SaChange.REGISTER,
}
_POLICY_CHANGE = {
    MsgType.X_SPDADD: ops.PolicyChange.ADD,
    MsgType.X_SPDUPDATE: ops.PolicyChange.UPDATE,
    MsgType.X_SPDDELETE: ops.PolicyChange.DELETE,
    MsgType.X_SPDDELETE2: ops.PolicyChange.DELETE,
    MsgType.X_SPDEXPIRE: ops.PolicyChange.EXPIRE,
    MsgType.X_SPDFLUSH: ops.PolicyChange.FLUSH,
    MsgType.X_SPDDUMP: ops.PolicyChange.DUMP,
}


# ---------------------------------------------------------------------- requests


def _selector_address(ext_type: ExtType, sel: ops.Selector) -> Address:
    """A policy selector as ADDRESS_SRC/DST: prefix, port and upper-layer protocol."""
    net = sel.network
    return Address(ext_type, net.network_address, sel.port, net.prefixlen, sel.proto)


def _lifetime(ext_type: ExtType, life: ops.Lifetime) -> Lifetime:
    return Lifetime(ext_type, life.allocations, life.bytes, life.addtime, life.usetime)


def _sa_extension(req: ops.InstallSa) -> SA:
    auth = req.auth.sadb_id if req.auth is not None and req.auth.sadb_id is not None else 0
    if req.compression is not None:
        encrypt = req.compression.sadb_id
    else:
        encrypt = req.cipher.sadb_id if req.cipher is not None and req.cipher.sadb_id else 0
    flags = int(SaFlags.RAWCPI) if req.raw_cpi else 0
    return SA(spi=req.sa.spi, replay=req.replay, auth=auth, encrypt=encrypt, flags=flags)


def _install(req: ops.InstallSa, pid: int) -> Message:
    msg = Message(MsgType.UPDATE if req.update else MsgType.ADD, SATYPE[req.sa.proto])
    msg.seq, msg.pid = req.seq, pid
    msg.add(_sa_extension(req))
    msg.add(SA2(mode=MODE[req.mode], reqid=req.reqid))
    msg.add(Address(ExtType.ADDRESS_SRC, req.sa.src))
    msg.add(Address(ExtType.ADDRESS_DST, req.sa.dst))
    # libipsec's pfkey_send_x3 sends KEY_ENCRYPT for every ESP cipher, null's 0 bits too;
    # Linux's af_key refuses an ESP SA without it (EINVAL).
    esp_cipher = (
        req.sa.proto is ops.Proto.ESP and req.cipher is not None and bool(req.cipher.sadb_id)
    )
    if req.enc_key or esp_cipher:
        msg.add(Key(ExtType.KEY_ENCRYPT, req.enc_key))
    if req.auth_key:
        msg.add(Key(ExtType.KEY_AUTH, req.auth_key))
    msg.add(_lifetime(ExtType.LIFETIME_HARD, req.hard))
    msg.add(_lifetime(ExtType.LIFETIME_SOFT, req.soft))
    return msg


def _ipsec_request(r: ops.IpsecRequest) -> IpsecRequest:
    return IpsecRequest(r.proto.ip_number, MODE[r.mode], LEVEL[r.level], r.reqid, r.src, r.dst)


def message_of(req: ops.Request, pid: int) -> Message:
    """The PF_KEY message racoon's pfkey.c sends for ``req``, from process ``pid``."""
    if isinstance(req, ops.InstallSa):
        return _install(req, pid)
    if isinstance(req, ops.GetSpi):
        msg = Message(MsgType.GETSPI, SATYPE[req.proto], seq=req.seq, pid=pid)
        msg.add(SA2(mode=MODE[req.mode], reqid=req.reqid))
        msg.add(Address(ExtType.ADDRESS_SRC, req.src))
        msg.add(Address(ExtType.ADDRESS_DST, req.dst))
        if req.spi_range is not None:
            msg.add(SpiRange(min=req.spi_range[0], max=req.spi_range[1]))
        return msg
    if isinstance(req, ops.DeleteSa):
        msg = Message(MsgType.DELETE, SATYPE[req.sa.proto], seq=req.seq, pid=pid)
        msg.add(SA(spi=req.sa.spi))
        msg.add(Address(ExtType.ADDRESS_SRC, req.sa.src))
        msg.add(Address(ExtType.ADDRESS_DST, req.sa.dst))
        return msg
    if isinstance(req, ops.FlushSa):
        satype = SaType.UNSPEC if req.proto is None else SATYPE[req.proto]
        return Message(MsgType.FLUSH, satype, seq=req.seq, pid=pid)
    if isinstance(req, ops.DumpSa):
        return Message(MsgType.DUMP, SaType.UNSPEC, seq=req.seq, pid=pid)
    if isinstance(req, ops.Register):
        return Message(MsgType.REGISTER, SATYPE[req.proto], seq=req.seq, pid=pid)
    if isinstance(req, ops.AcquireFailed):
        return Message(MsgType.ACQUIRE, SATYPE[req.proto], errno=req.errno, seq=req.seq, pid=pid)
    if isinstance(req, ops.UpdatePolicy):
        p = req.policy
        msg = Message(MsgType.X_SPDUPDATE, 0, seq=req.seq, pid=pid)
        requests = [_ipsec_request(r) for r in p.requests]
        msg.add(Policy(ACTION[p.action], DIRECTION[p.direction], 0, 0, requests))
        msg.add(_selector_address(ExtType.ADDRESS_SRC, p.src))
        msg.add(_selector_address(ExtType.ADDRESS_DST, p.dst))
        msg.add(_lifetime(ExtType.LIFETIME_HARD, p.lifetime))
        return msg
    if isinstance(req, ops.DeletePolicy):
        msg = Message(MsgType.X_SPDDELETE, 0, seq=req.seq, pid=pid)
        msg.add(Policy(PolicyType.IPSEC, DIRECTION[req.direction], 0, 0, []))
        msg.add(_selector_address(ExtType.ADDRESS_SRC, req.src))
        msg.add(_selector_address(ExtType.ADDRESS_DST, req.dst))
        return msg
    if isinstance(req, ops.DumpPolicy):
        return Message(MsgType.X_SPDDUMP, 0, seq=req.seq, pid=pid)
    raise TypeError(f"not a kernel request: {req!r}")


# ---------------------------------------------------------------------- racoon's SA records


@dataclass(frozen=True)
class SadbNumbers:
    """The SADB numbers of one :class:`~.ops.InstallSa`: how racoon's backupsa file writes an SA
    (racoon's backupsa.c records the numbers of the SADB_ADD it sent)."""

    satype: int
    mode: int
    encrypt: int
    auth: int
    flags: int


def sadb_satype(proto: ops.Proto) -> int:
    """The SADB SA type of ``proto`` (backupsa's SATYPE column)."""
    return int(SATYPE[proto])


def sadb_numbers(req: ops.InstallSa) -> SadbNumbers:
    """What the SA and SA2 extensions of ``req`` would carry."""
    sa = _sa_extension(req)
    return SadbNumbers(
        int(SATYPE[req.sa.proto]), int(MODE[req.mode]), sa.encrypt, sa.auth, sa.flags
    )


def install_of_numbers(
    numbers: SadbNumbers,
    seq: int,
    sa: tuple[int, ops.IPAddress, ops.IPAddress],
    reqid: int,
    replay: int,
    keys: tuple[bytes, bytes],
    hard: ops.Lifetime,
    soft: ops.Lifetime,
) -> ops.InstallSa:
    """The ADD (``update`` False) of an SA recorded in SADB numbers; ``ValueError`` names a
    number this table does not know."""
    proto = PROTO_OF_SATYPE.get(_member(SaType, numbers.satype))
    if proto is None:
        raise ValueError(f"SA type {numbers.satype} is not AH, ESP or IPComp")
    mode = MODE_OF.get(_member(Mode, numbers.mode))
    if mode is None:
        raise ValueError(f"unknown SA mode {numbers.mode}")
    cipher = auth = compression = None
    try:
        if proto is ops.Proto.IPCOMP:
            compression = IPCOMP_ALGORITHMS.by("sadb_id", numbers.encrypt)
        elif numbers.encrypt:
            cipher = cipher_by_sadb_id(numbers.encrypt)
        if numbers.auth:
            auth = auth_by_sadb_id(numbers.auth)
    except UnknownAlgorithm as e:
        raise ValueError(str(e)) from None
    spi, src, dst = sa
    return ops.InstallSa(
        seq, False, ops.SaId(proto, spi, src, dst), mode, reqid, replay, cipher, keys[0], auth,
        keys[1], compression, raw_cpi=bool(numbers.flags & SaFlags.RAWCPI), hard=hard, soft=soft,
    )  # fmt: skip


# ---------------------------------------------------------------------- events


E = TypeVar("E", bound=IntEnum)


def _member(enum_type: type[E], value: int) -> E | None:
    """The member of ``enum_type`` with ``value``, or None for a number it does not name."""
    member = enum_type._value2member_map_.get(value)
    return member if isinstance(member, enum_type) else None


def _selector(addr: Address) -> ops.Selector:
    network = ipaddress.ip_network(f"{addr.addr}/{addr.prefixlen}", strict=False)
    return ops.Selector(network, addr.proto, addr.port)


def policy_of(msg: Message) -> ops.Policy | ops.Unsupported:
    """The policy an X_SPD* message carries, or why it carries none we can use: a message
    without its X_POLICY or addresses is malformed; a direction outside in/out/fwd is a
    per-socket policy (Linux lists the IKE sockets' bypass policies with directions 4 and 5 in
    an SPD dump), of no use to a key manager and no error."""
    name = f"SADB_{MsgType(msg.type).name}"
    pol, src, dst = msg.policy, msg.src, msg.dst
    if pol is None or src is None or dst is None:
        return ops.Unsupported(f"{name} with no X_POLICY or address extension", True)
    direction = DIRECTION_OF.get(_member(Direction, pol.dir))
    action = ACTION_OF.get(_member(PolicyType, pol.policy_type))
    if direction is None or action is None:
        return ops.Unsupported(f"{name} with policy direction {pol.dir} / type {pol.policy_type}")
    requests = []
    for r in pol.requests:
        proto = ops.Proto.of_ip_number(r.proto)
        mode = MODE_OF.get(_member(Mode, r.mode))
        level = LEVEL_OF.get(_member(Level, r.level))
        if proto is None or mode is None or level is None:
            continue  # a request we cannot negotiate (another protocol, BEET): not ours to offer
        requests.append(ops.IpsecRequest(proto, mode, level, r.reqid, r.src, r.dst))
    hard = msg.lifetime(ExtType.LIFETIME_HARD)
    life = (
        ops.Lifetime()
        if hard is None
        else ops.Lifetime(hard.allocations, hard.bytes, hard.addtime, hard.usetime)
    )
    return ops.Policy(
        direction, _selector(src), _selector(dst), action, tuple(requests), pol.id, life
    )


def _kernel_sa(msg: Message, proto: ops.Proto) -> ops.KernelSa | None:
    sa, src, dst = msg.sa, msg.src, msg.dst
    if sa is None or src is None or dst is None:
        return None
    sa2 = msg.sa2
    mode = MODE_OF.get(_member(Mode, sa2.mode), ops.Mode.ANY) if sa2 else ops.Mode.ANY
    state = STATE_OF.get(_member(SaState, sa.state), ops.SaState.MATURE)
    return ops.KernelSa(
        ops.SaId(proto, sa.spi, src.addr, dst.addr), state, mode, sa2.reqid if sa2 else 0
    )


def event_of(msg: Message, pid: int) -> ops.Event:
    """What ``msg`` from the kernel means, for the socket of process ``pid``."""
    ours = msg.pid == pid
    mtype = msg.type
    if mtype in _POLICY_CHANGE:
        pchange = _POLICY_CHANGE[MsgType(mtype)]
        policy = None
        if mtype != MsgType.X_SPDFLUSH and not msg.errno:
            found = policy_of(msg)
            if isinstance(found, ops.Unsupported):
                if mtype != MsgType.X_SPDDUMP:
                    return found
                # a dump entry still counts towards the dump's end (its seq 0 may be this one)
            else:
                policy = found
        last = mtype != MsgType.X_SPDDUMP or bool(msg.errno) or msg.seq == 0
        return ops.PolicyEvent(pchange, msg.seq, ours, policy, msg.errno, last)
    if mtype == MsgType.ACQUIRE:
        if msg.errno or msg.pid:
            return ops.Unsupported("an ACQUIRE answer of a key manager (errno or pid set)")
        pol, src, dst = msg.policy, msg.src, msg.dst
        if pol is None or src is None or dst is None:
            return ops.Unsupported("ACQUIRE without X_POLICY or addresses", True)
        first = pol.requests[0].proto if pol.requests else None
        proto = PROTO_OF_SATYPE.get(_member(SaType, msg.satype))
        if proto is None and first is not None:
            proto = ops.Proto.of_ip_number(first)
        return ops.Acquire(msg.seq, pol.id, src.addr, dst.addr, proto)
    if mtype == MsgType.FLUSH:
        proto = PROTO_OF_SATYPE.get(_member(SaType, msg.satype))
        if proto is None and msg.satype != SaType.UNSPEC:
            return ops.Unsupported(f"SADB_FLUSH of SA type {msg.satype}")
        return ops.SaEvent(ops.SaChange.FLUSH, msg.seq, ours, proto, None, msg.errno)
    if mtype in (MsgType.DUMP, MsgType.EXPIRE) or mtype in _SA_CHANGE:
        if mtype == MsgType.DUMP:
            change = ops.SaChange.DUMP
        elif mtype == MsgType.EXPIRE:
            hard = ExtType.LIFETIME_HARD in msg
            change = ops.SaChange.HARD_EXPIRE if hard else ops.SaChange.SOFT_EXPIRE
        else:
            change = _SA_CHANGE[MsgType(mtype)]
        last = mtype != MsgType.DUMP or bool(msg.errno) or msg.seq == 0
        proto = PROTO_OF_SATYPE.get(_member(SaType, msg.satype))
        if proto is None:
            if msg.errno or mtype == MsgType.DUMP:
                return ops.SaEvent(change, msg.seq, ours, None, None, msg.errno, last)
            return ops.Unsupported(f"SADB_{MsgType(mtype).name} of SA type {msg.satype}")
        sa = None if msg.errno else _kernel_sa(msg, proto)
        return ops.SaEvent(change, msg.seq, ours, proto, sa, msg.errno, last)
    known = _member(MsgType, mtype)
    return ops.Unsupported(f"SADB_{known.name if known is not None else mtype}")


__all__ = [
    "SadbNumbers", "event_of", "install_of_numbers", "message_of", "policy_of", "sadb_numbers",
    "sadb_satype",
]  # fmt: skip
