"""Parsed setkey commands as the SADB messages setkey sends, extension for extension.

The extension order is setkey's (``parse.y`` setkeymsg_add / setkeymsg_addr /
setkeymsg_spdaddr), because a byte-exact request is what a real kernel and a packet capture
see: for ADD, KEY_ENCRYPT, KEY_AUTH, LIFETIME_HARD, LIFETIME_SOFT, SEC_CTX, SA, X_SA2,
[NAT_T_TYPE, NAT_T_OA], ADDRESS_SRC, ADDRESS_DST, [NAT_T_SPORT, NAT_T_DPORT]; for the SPD,
X_POLICY first, then the two addresses carrying prefix length and upper-layer protocol.

Nothing here does I/O; ``pid`` and ``seq`` are left 0 for the kernel socket to fill in.
"""

from __future__ import annotations

from pyracoon.kernel.pfkey import (
    SA,
    SA2,
    Address,
    Key,
    Lifetime,
    Message,
    NatTPort,
    NatTType,
    Policy,
    SecCtx,
    SpiRange,
)
from pyracoon.kernel.sadb import Direction, ExtType, MsgType, SaType

from .parser import (
    ULPROTO_ANY,
    DeleteAllCommand,
    Endpoint,
    SaCommand,
    SecurityContext,
    SpdCommand,
    address_pairs,
    fwd_copy,
)

DEFAULT_NATT_PORT = 4500


def _address(
    ext_type: ExtType, ep: Endpoint, prefixlen: int | None = None, proto: int = 255
) -> Address:
    return Address(
        ext_type=ext_type,
        addr=ep.addr,
        port=ep.port,
        prefixlen=ep.addr.max_prefixlen if prefixlen is None else prefixlen,
        proto=proto,
        scope_id=ep.scope_id,
    )


def _sec_ctx(ctx: SecurityContext) -> SecCtx:
    return SecCtx(alg=ctx.alg, doi=ctx.doi, ctx=ctx.text)


def header(msg_type: int, satype: int = SaType.UNSPEC) -> Message:
    """A bare ``sadb_msg`` (FLUSH, DUMP, X_SPDFLUSH, X_SPDDUMP, REGISTER, X_PROMISC)."""
    return Message(msg_type, satype)


def sa_messages(cmd: SaCommand) -> list[Message]:
    """ADD / GETSPI (setkeymsg_add) or GET / DELETE (setkeymsg_addr), one per address pair."""
    msg_type = {
        "add": MsgType.ADD,
        "getspi": MsgType.GETSPI,
        "get": MsgType.GET,
        "delete": MsgType.DELETE,
    }[cmd.verb]
    out = []
    for src, dst in address_pairs(cmd):
        if cmd.verb in ("add", "getspi"):
            out.append(_add_message(msg_type, cmd, src, dst))
        else:
            out.append(sa_lookup_message(msg_type, cmd.satype, src, dst, cmd.spi, cmd))
    return out


def _sa_ext(cmd: SaCommand, spi: int | None = None) -> SA:
    return SA(
        spi=cmd.spi if spi is None else spi,
        replay=cmd.replay,
        state=0,
        auth=cmd.auth_alg,
        encrypt=cmd.enc_alg,
        flags=cmd.flags,
    )


def _add_message(msg_type: int, cmd: SaCommand, src: Endpoint, dst: Endpoint) -> Message:
    msg = Message(msg_type, cmd.satype)
    if cmd.satype != SaType.IPCOMP and cmd.enc_key is not None:
        msg.add(Key(ExtType.KEY_ENCRYPT, cmd.enc_key))
    if cmd.auth_key is not None:
        msg.add(Key(ExtType.KEY_AUTH, cmd.auth_key))
    if cmd.lifetime_hard_time or cmd.lifetime_hard_bytes:
        msg.add(
            Lifetime(
                ExtType.LIFETIME_HARD,
                bytes=cmd.lifetime_hard_bytes,
                addtime=cmd.lifetime_hard_time,
            )
        )
    if cmd.lifetime_soft_time or cmd.lifetime_soft_bytes:
        msg.add(
            Lifetime(
                ExtType.LIFETIME_SOFT,
                bytes=cmd.lifetime_soft_bytes,
                addtime=cmd.lifetime_soft_time,
            )
        )
    if cmd.ctx is not None:
        msg.add(_sec_ctx(cmd.ctx))
    if msg_type == MsgType.GETSPI and cmd.spi:
        msg.add(SpiRange(cmd.spi, cmd.spi))
    msg.add(_sa_ext(cmd))
    msg.add(SA2(mode=cmd.mode, reqid=cmd.reqid))
    if cmd.natt_type:
        msg.add(NatTType(cmd.natt_type))
        if cmd.natt_oa is not None:
            msg.add(_address(ExtType.X_NAT_T_OA, Endpoint(cmd.natt_oa.addr)))
    msg.add(_address(ExtType.ADDRESS_SRC, src))
    msg.add(_address(ExtType.ADDRESS_DST, dst))
    if cmd.natt_type:
        msg.add(NatTPort(ExtType.X_NAT_T_SPORT, src.port or DEFAULT_NATT_PORT))
        msg.add(NatTPort(ExtType.X_NAT_T_DPORT, dst.port or DEFAULT_NATT_PORT))
    return msg


def sa_lookup_message(
    msg_type: int,
    satype: int,
    src: Endpoint,
    dst: Endpoint,
    spi: int,
    cmd: SaCommand | None = None,
) -> Message:
    """GET or DELETE of one SA: SA, X_SA2, ADDRESS_SRC, ADDRESS_DST (setkeymsg_addr)."""
    msg = Message(msg_type, satype)
    if cmd is not None:
        msg.add(_sa_ext(cmd, spi))
        msg.add(SA2(mode=cmd.mode, reqid=cmd.reqid))
    else:
        msg.add(SA(spi=spi, flags=0x40))
        msg.add(SA2())
    msg.add(_address(ExtType.ADDRESS_SRC, src))
    msg.add(_address(ExtType.ADDRESS_DST, dst))
    return msg


def deleteall_matches(cmd: DeleteAllCommand, entry: Message) -> bool:
    """Whether a DUMP entry is one ``deleteall`` must delete (same satype, src and dst)."""
    if entry.satype != cmd.satype or entry.sa is None:
        return False
    s, d = entry.src, entry.dst
    if s is None or d is None:
        return False
    return any(ep.addr == s.addr and ep.port == s.port for ep in cmd.srcs) and any(
        ep.addr == d.addr and ep.port == d.port for ep in cmd.dsts
    )


def spd_messages(cmd: SpdCommand, rfc_mode: bool = True) -> list[Message]:
    """X_SPDADD / X_SPDUPDATE / X_SPDDELETE, plus the ``fwd`` twin of an ``in`` policy in
    Linux RFC mode (``-r``, the default), as setkeymsg_spdaddr sends it."""
    msg_type = {
        "spdadd": MsgType.X_SPDADD,
        "spdupdate": MsgType.X_SPDUPDATE,
        "spddelete": MsgType.X_SPDDELETE,
    }[cmd.verb]
    if cmd.src is None or cmd.dst is None:  # "tagged": Linux has no SADB_X_EXT_TAG
        return [Message(msg_type, SaType.UNSPEC).add(_copy_policy(cmd.policy))]
    out = [_spd_message(msg_type, cmd, _copy_policy(cmd.policy))]
    if rfc_mode and cmd.policy.dir == Direction.INBOUND:
        out.append(_spd_message(msg_type, cmd, fwd_copy(cmd.policy)))
    return out


def _copy_policy(p: Policy) -> Policy:
    return Policy(p.policy_type, p.dir, p.id, p.priority, list(p.requests))


def _spd_message(msg_type: int, cmd: SpdCommand, policy: Policy) -> Message:
    assert cmd.src is not None and cmd.dst is not None
    msg = Message(msg_type, SaType.UNSPEC).add(policy)
    msg.add(_address(ExtType.ADDRESS_SRC, cmd.src, cmd.src_prefix, cmd.ulproto))
    msg.add(_address(ExtType.ADDRESS_DST, cmd.dst, cmd.dst_prefix, cmd.ulproto))
    if cmd.ctx is not None:
        msg.add(_sec_ctx(cmd.ctx))
    return msg


__all__ = [
    "DEFAULT_NATT_PORT",
    "ULPROTO_ANY",
    "deleteall_matches",
    "header",
    "sa_lookup_message",
    "sa_messages",
    "spd_messages",
]
