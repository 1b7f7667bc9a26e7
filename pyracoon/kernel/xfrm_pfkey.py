"""PF_KEY messages to and from XFRM netlink, for pysetkey's ``send``/``recv`` path.

``pysetkey`` speaks PF_KEY, so ``XfrmSocket.send``/``recv`` keep the PF_KEY conversation and
translate it the way Linux's own ``af_key`` does (``net/key/af_key.c``): each request into the
neutral builders of :mod:`.xfrm_structs`, each XFRM answer or announcement back into a PF_KEY
message with the same readers, so what pysetkey loads is what the vocabulary path would.
"""

from __future__ import annotations

import errno as errno_mod
import struct
from collections.abc import Callable

from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    IPCOMP_ALGORITHMS,
)

from . import netlink as nl
from . import ops, pfkey_codec
from .memory_tables import ACQUIRE_REPLAY
from .pfkey import (
    SA,
    SA2,
    Address,
    Alg,
    Extension,
    IPAddress,
    IpsecRequest,
    Key,
    Lifetime,
    Message,
    NatTPort,
    NatTType,
    Policy,
    Proposal,
    Supported,
)
from .sadb import (
    ExtType,
    IpProto,
    Level,
    Mode,
    MsgType,
    PolicyType,
    SaState,
    SaType,
)
from .xfrm_structs import (
    AF_INET,
    AF_INET6,
    DIR_TO_XFRM,
    ENCAP_TMPL,
    PROTO_OF_SATYPE,
    SATYPE_OF_PROTO,
    USERPOLICY_ID,
    USERPOLICY_INFO,
    USERSA_INFO,
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
    XFRMA_ENCAP,
    XFRMA_POLICY,
    AuthSpec,
    CipherSpec,
    LifetimeCfg,
    LifetimeCur,
    Refusal,
    Selector,
    Template,
    UserpolicyInfo,
    UsersaInfo,
    current_lifetime,
    flushed_proto,
    hard_lifetime,
    lifetime_cfg,
    pack_addr,
    pair_family,
    parse_acquire,
    parse_delsa,
    parse_expire,
    parse_polexpire,
    policy_info,
    policy_parts,
    sa_algorithms,
    sa_info,
    sa_mode,
    sadb_enum,
    selector,
    soft_lifetime,
    state_algorithms,
    unpack_addr,
)

# ---------------------------------------------------------------------------------------------
# PF_KEY -> XFRM


def _ops_lifetime(life: Lifetime | None) -> ops.Lifetime | None:
    if life is None:
        return None
    return ops.Lifetime(life.allocations, life.bytes, life.addtime, life.usetime)


def _msg_lifetime_cfg(msg: Message) -> LifetimeCfg:
    return lifetime_cfg(
        _ops_lifetime(msg.lifetime(ExtType.LIFETIME_HARD)),
        _ops_lifetime(msg.lifetime(ExtType.LIFETIME_SOFT)),
    )


def msg_endpoints(msg: Message) -> tuple[Address, Address]:
    src, dst = msg.src, msg.dst
    if src is None or dst is None:
        raise Refusal(errno_mod.EINVAL, "source and destination addresses are required")
    pair_family(src.addr, dst.addr)
    return src, dst


def msg_proto(msg: Message) -> int:
    proto = PROTO_OF_SATYPE.get(msg.satype)
    if proto is None:
        raise Refusal(errno_mod.EINVAL, f"SA type {msg.satype} is not AH, ESP or IPComp")
    return int(proto)


def mode_of_pfkey(pfkey_mode: int) -> ops.Mode:
    mode = pfkey_codec.MODE_OF.get(sadb_enum(Mode, pfkey_mode))
    if mode is None:
        raise Refusal(errno_mod.EINVAL, f"IPsec mode {pfkey_mode}")
    return mode


def _key(key: Key | None) -> tuple[bytes, int]:
    if key is None:
        return b"", 0
    return key.key, key.bits if key.bits is not None else 0


def sa_request(msg: Message) -> tuple[UsersaInfo, list[tuple[int, bytes]]]:
    """ADD/UPDATE as ``xfrm_usersa_info`` and its algorithm (and NAT-T) attributes."""
    proto = msg_proto(msg)
    src, dst = msg_endpoints(msg)
    sa = msg.sa
    if sa is None:
        raise Refusal(errno_mod.EINVAL, "an SA extension is required")
    sa2 = msg.sa2
    info = sa_info(
        proto,
        src.addr,
        dst.addr,
        spi=sa.spi,
        seq=msg.seq,
        reqid=sa2.reqid if sa2 else 0,
        mode=mode_of_pfkey(sa2.mode if sa2 else Mode.ANY),
        replay=sa.replay,
        lft=_msg_lifetime_cfg(msg),
    )
    if proto == IpProto.IPCOMP:
        comp = IPCOMP_ALGORITHMS.get("sadb_id", sa.encrypt)
        return info, sa_algorithms(proto, None, None, comp)
    auth: AuthSpec | None = None
    cipher: CipherSpec | None = None
    if sa.auth:
        arow = AUTH_ALGORITHMS.get("sadb_id", sa.auth)
        if arow is None:
            raise Refusal(errno_mod.EINVAL, f"no XFRM name for SADB auth algorithm {sa.auth}")
        auth = (arow, *_key(msg.key(ExtType.KEY_AUTH)))
    if proto == IpProto.ESP and sa.encrypt:
        crow = CIPHERS.get("sadb_id", sa.encrypt)
        if crow is None:
            raise Refusal(errno_mod.EINVAL, f"no XFRM name for SADB encryption {sa.encrypt}")
        cipher = (crow, *_key(msg.key(ExtType.KEY_ENCRYPT)))
    out = sa_algorithms(proto, auth, cipher, None)
    nat = msg.get(ExtType.X_NAT_T_TYPE)
    if isinstance(nat, NatTType) and nat.nat_t_type:
        sport, dport = msg.get(ExtType.X_NAT_T_SPORT), msg.get(ExtType.X_NAT_T_DPORT)
        oa = msg.get(ExtType.X_NAT_T_OA)
        out.append(
            (
                XFRMA_ENCAP,
                ENCAP_TMPL.pack(
                    nat.nat_t_type,
                    struct.pack("!H", sport.port if isinstance(sport, NatTPort) else 0),
                    struct.pack("!H", dport.port if isinstance(dport, NatTPort) else 0),
                    pack_addr(oa.addr if isinstance(oa, Address) else None),
                ),
            )
        )
    return info, out


def selector_of(msg: Message) -> Selector:
    """A policy's ``xfrm_selector`` from its ADDRESS_SRC/DST."""
    src, dst = msg_endpoints(msg)
    return selector(
        src.addr,
        src.prefixlen if src.prefixlen is not None else src.addr.max_prefixlen,
        src.port,
        dst.addr,
        dst.prefixlen if dst.prefixlen is not None else dst.addr.max_prefixlen,
        dst.port,
        src.proto,
    )


def xfrm_dir_of(policy: Policy) -> int:
    d = DIR_TO_XFRM.get(policy.dir)
    if d is None:
        raise Refusal(errno_mod.EINVAL, f"policy direction {policy.dir}")
    return d


def policy_request(
    msg: Message, new_reqid: Callable[[], int]
) -> tuple[UserpolicyInfo, list[tuple[int, bytes]]]:
    """X_SPDADD/X_SPDUPDATE as ``xfrm_userpolicy_info`` and its ``XFRMA_TMPL``."""
    pol = msg.policy
    if pol is None:
        raise Refusal(errno_mod.EINVAL, "an X_POLICY extension is required")
    action = pfkey_codec.ACTION_OF.get(sadb_enum(PolicyType, pol.policy_type))
    if action is None:
        raise Refusal(errno_mod.EINVAL, f"policy type {pol.policy_type}")
    sel = selector_of(msg)
    templates = [
        Template(
            req.proto,
            mode_of_pfkey(req.mode),
            pfkey_codec.LEVEL_OF.get(sadb_enum(Level, req.level), ops.Level.DEFAULT),
            req.reqid,
            req.src,
            req.dst,
        )
        for req in pol.requests
    ]
    return policy_info(
        sel, action, xfrm_dir_of(pol), _msg_lifetime_cfg(msg), templates, new_reqid, pol.priority
    )


# ---------------------------------------------------------------------------------------------
# XFRM -> PF_KEY


def _address(
    ext: ExtType, addr: IPAddress, prefixlen: int | None = None, proto: int = 0, port: int = 0
) -> Address:
    return Address(ext, addr, port, addr.max_prefixlen if prefixlen is None else prefixlen, proto)


def _lifetimes(lft: LifetimeCfg, cur: LifetimeCur, which: str = "hsc") -> list[Extension]:
    out: list[Extension] = []
    for letter, ext, life in (
        ("h", ExtType.LIFETIME_HARD, hard_lifetime(lft)),
        ("s", ExtType.LIFETIME_SOFT, soft_lifetime(lft)),
        ("c", ExtType.LIFETIME_CURRENT, current_lifetime(cur)),
    ):
        if letter in which:
            out.append(Lifetime(ext, life.allocations, life.bytes, life.addtime, life.usetime))
    return out


def state_message(
    mtype: int,
    info: UsersaInfo,
    a: nl.Attributes,
    *,
    keys: bool,
    seq: int = 0,
    pid: int = 0,
    state: int | None = None,
    lifetimes: str = "hsc",
) -> Message | None:
    """A PF_KEY message describing one XFRM state (None for what PF_KEY cannot name, such as
    the IP-in-IP states the kernel makes for IPComp tunnels)."""
    satype = SATYPE_OF_PROTO.get(info.proto)
    if satype is None:
        return None
    algs = state_algorithms(a)
    auth_id = algs.auth.sadb_id or 0 if algs.auth else 0
    if algs.compression is not None:
        enc_id = algs.compression.sadb_id
    else:
        enc_id = algs.cipher.sadb_id or 0 if algs.cipher else 0
    if state is None:
        state = SaState.MATURE if algs.keyed else SaState.LARVAL
    msg = Message(mtype, satype, 0, seq, pid)
    msg.add(SA(info.spi, info.replay_window, state, auth_id, enc_id, 0))
    for ext in _lifetimes(info.lft, info.curlft, lifetimes):
        msg.add(ext)
    msg.add(_address(ExtType.ADDRESS_SRC, info.saddr))
    msg.add(_address(ExtType.ADDRESS_DST, info.daddr))
    if keys and algs.auth_key is not None and algs.auth_key[1]:
        msg.add(Key(ExtType.KEY_AUTH, *algs.auth_key))
    if keys and algs.enc_key is not None and algs.enc_key[1]:
        msg.add(Key(ExtType.KEY_ENCRYPT, *algs.enc_key))
    msg.add(SA2(pfkey_codec.MODE[sa_mode(info.mode)], 0, info.reqid))
    if (raw := a.get(XFRMA_ENCAP)) is not None and len(raw) >= ENCAP_TMPL.size:
        etype, sport, dport, oa = ENCAP_TMPL.unpack_from(raw)
        msg.add(NatTType(etype))
        msg.add(NatTPort(ExtType.X_NAT_T_SPORT, struct.unpack("!H", sport)[0]))
        msg.add(NatTPort(ExtType.X_NAT_T_DPORT, struct.unpack("!H", dport)[0]))
        if any(oa):
            msg.add(_address(ExtType.X_NAT_T_OA, unpack_addr(oa, info.family)))
    return msg


def policy_message(
    mtype: int, info: UserpolicyInfo, a: nl.Attributes, *, seq: int = 0, pid: int = 0
) -> Message | None:
    """A PF_KEY SPD message for one XFRM policy (None for sub-policies PF_KEY never shows)."""
    parts = policy_parts(info, a)
    if parts is None:
        return None
    reqs = [
        IpsecRequest(
            t.proto, pfkey_codec.MODE[t.mode], pfkey_codec.LEVEL[t.level], t.reqid, t.src, t.dst
        )
        for t in parts.templates
    ]
    msg = Message(mtype, 0, 0, seq, pid)
    sel = info.sel
    if sel.family in (AF_INET, AF_INET6):
        proto = sel.proto or 255
        msg.add(_address(ExtType.ADDRESS_SRC, sel.saddr, sel.prefixlen_s, proto, sel.sport))
        msg.add(_address(ExtType.ADDRESS_DST, sel.daddr, sel.prefixlen_d, proto, sel.dport))
    for ext in _lifetimes(info.lft, info.curlft):
        msg.add(ext)
    ptype = pfkey_codec.ACTION[parts.action]
    msg.add(Policy(ptype, parts.direction + 1, info.index, info.priority, reqs))
    return msg


def register_reply(msg: Message) -> Message:
    """REGISTER has no XFRM counterpart; the algorithm table says what XFRM can be given."""
    reply = msg.reply()
    if msg.satype == SaType.IPCOMP:
        algs = [Alg(c.sadb_id, 0, 0, 0) for c in IPCOMP_ALGORITHMS if c.xfrm_name]
        return reply.add(Supported(ExtType.SUPPORTED_ENCRYPT, algs))
    seen: set[int] = set()
    auths = []
    for r in AUTH_ALGORITHMS:
        if r.xfrm_name and r.sadb_id and r.sadb_id not in seen:
            seen.add(r.sadb_id)
            auths.append(Alg(r.sadb_id, 0, r.min_bits, r.max_bits))
    reply.add(Supported(ExtType.SUPPORTED_AUTH, auths))
    if msg.satype != SaType.AH:
        seen.clear()
        encs = []
        for c in CIPHERS:
            if c.xfrm_name and c.sadb_id is not None and c.sadb_id not in seen:
                seen.add(c.sadb_id)
                iv = 8 if c.block_size == 1 else c.block_size
                encs.append(Alg(c.sadb_id, iv, c.min_bits, c.max_bits))
        reply.add(Supported(ExtType.SUPPORTED_ENCRYPT, encs))
    return reply


def event_message(m: nl.NlMsg) -> Message | None:
    """The PF_KEY message for one XFRM notification (None for what PF_KEY has no word for)."""
    p = m.payload
    if m.type == XFRM_MSG_ACQUIRE:
        return acquire_message(p)
    if m.type == XFRM_MSG_EXPIRE:
        info, hard = parse_expire(p)
        return state_message(
            MsgType.EXPIRE,
            info,
            nl.Attributes(),
            keys=False,
            state=SaState.DEAD if hard else SaState.DYING,
            lifetimes="hc" if hard else "sc",
        )
    if m.type == XFRM_MSG_POLEXPIRE:
        pol, hard, a = parse_polexpire(p)
        if not hard:
            return None  # PF_KEY has no soft policy expiry
        return policy_message(MsgType.X_SPDEXPIRE, pol, a)
    if m.type in (XFRM_MSG_NEWSA, XFRM_MSG_UPDSA):
        info = UsersaInfo.unpack(p)
        mt = MsgType.ADD if m.type == XFRM_MSG_NEWSA else MsgType.UPDATE
        return state_message(
            mt, info, nl.parse_attrs(p, USERSA_INFO.size), keys=False, seq=m.seq, pid=m.pid
        )
    if m.type == XFRM_MSG_DELSA:
        info, a = parse_delsa(p)
        return state_message(MsgType.DELETE, info, a, keys=False, seq=m.seq, pid=m.pid)
    if m.type == XFRM_MSG_FLUSHSA:
        sat = SATYPE_OF_PROTO.get(flushed_proto(p), SaType.UNSPEC)
        return Message(MsgType.FLUSH, sat, 0, m.seq, m.pid)
    if m.type in (XFRM_MSG_NEWPOLICY, XFRM_MSG_UPDPOLICY):
        mt = MsgType.X_SPDADD if m.type == XFRM_MSG_NEWPOLICY else MsgType.X_SPDUPDATE
        return policy_message(
            mt,
            UserpolicyInfo.unpack(p),
            nl.parse_attrs(p, USERPOLICY_INFO.size),
            seq=m.seq,
            pid=m.pid,
        )
    if m.type == XFRM_MSG_DELPOLICY:
        a = nl.parse_attrs(p, USERPOLICY_ID.size)
        raw = a.get(XFRMA_POLICY)
        if raw is None:
            return None
        return policy_message(
            MsgType.X_SPDDELETE, UserpolicyInfo.unpack(raw), a, seq=m.seq, pid=m.pid
        )
    if m.type == XFRM_MSG_FLUSHPOLICY:
        return Message(MsgType.X_SPDFLUSH, 0, 0, m.seq, m.pid)
    return None


def acquire_message(p: bytes) -> Message | None:
    """ACQUIRE: the SA to negotiate, and the policy id the engine finds its SP by."""
    seq, proto, saddr, daddr, policy = parse_acquire(p)
    sat = SATYPE_OF_PROTO.get(proto)
    if sat is None:
        return None
    msg = Message(MsgType.ACQUIRE, sat, 0, seq, 0)
    msg.add(_address(ExtType.ADDRESS_SRC, saddr))
    msg.add(_address(ExtType.ADDRESS_DST, daddr))
    msg.add(Policy(PolicyType.IPSEC, policy.dir + 1, policy.index, policy.priority, []))
    msg.add(Proposal(ACQUIRE_REPLAY, []))  # as pfkey_send_acquire: no combinations
    return msg


def without_keys(msg: Message) -> Message:
    """The reply to ADD/UPDATE/DELETE: the request's extensions less its key material."""
    reply = msg.reply()
    for ext in msg:
        if ext.type not in (ExtType.KEY_AUTH, ExtType.KEY_ENCRYPT):
            reply.add(ext)
    return reply
