"""The Linux XFRM backend: PF_KEY ``Message`` requests answered through XFRM netlink.

Everything above the kernel layer speaks PF_KEY. Linux's native key-management interface is
XFRM over netlink (``xfrm_user``), which every Linux has, while ``af_key`` is an optional,
deprecated module many distributions leave out. ``XfrmSocket`` therefore keeps the PF_KEY
conversation and translates it, the way Linux's own ``af_key`` does inside the kernel:

========================  ================================================================
PF_KEY                    XFRM netlink
========================  ================================================================
GETSPI (SPIRANGE)         ALLOCSPI (``xfrm_userspi_info``)
ADD / UPDATE              NEWSA / UPDSA (``xfrm_usersa_info`` + algorithm attributes)
DELETE / GET              DELSA / GETSA (``xfrm_usersa_id``)
FLUSH, DUMP               FLUSHSA, GETSA with ``NLM_F_DUMP``
X_SPDADD / X_SPDUPDATE    NEWPOLICY / UPDPOLICY (``xfrm_userpolicy_info`` + templates)
X_SPDDELETE(2) / SPDGET   DELPOLICY / GETPOLICY (``xfrm_userpolicy_id``, by selector or index)
X_SPDFLUSH, X_SPDDUMP     FLUSHPOLICY, GETPOLICY with ``NLM_F_DUMP``
ACQUIRE, EXPIRE           the ACQUIRE and EXPIRE multicast groups
X_SPDEXPIRE               POLEXPIRE (hard)
ADD/DELETE/... by others  the SA and POLICY multicast groups
REGISTER                  no XFRM counterpart: answered from the one algorithm table
========================  ================================================================

The rules are af_key's (``net/key/af_key.c``), so one SPD file means the same on both backends:
an SA's selector is left open with only its family set; lifetimes of 0 are "no limit"
(``XFRM_INF``); a policy's ``use`` level is an optional template, ``unique`` keeps (or is given,
from 0x4000 up) its reqid and ``require``/``default`` have none; the SPD id is the kernel's policy
index, whose low three bits are the direction; per-socket policies dump with direction 4-6.

Replies keep PF_KEY's shape: the request's type, seq and pid, errno set on failure, one reply
per entry for a dump with ``seq`` counting down to 0 on the last (ENOENT when empty). What the
kernel multicasts about our own requests is dropped, since the reply already told the caller;
what other processes cause (``ip xfrm``, another daemon) arrives as PF_KEY broadcasts.

Struct layouts are those of ``linux/xfrm.h`` on 64-bit Linux (``xfrm_usersa_info`` is 224 bytes,
``xfrm_userpolicy_info`` 168, ``xfrm_user_tmpl`` 64, ...); ``tests/kernel/test_xfrm_codec.py``
checks them against the header with a C compiler, and the lab tests against the real kernel.
"""

from __future__ import annotations

import errno as errno_mod
import ipaddress
import os
import select
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    IPCOMP_ALGORITHMS,
    Cipher,
)

from . import netlink as nl
from .base import KernelError, KernelSocket, KernelUnavailable
from .memory import ACQUIRE_REPLAY
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
    SpiRange,
    Supported,
)
from .sadb import (
    MANUAL_REQID_MAX,
    ExtType,
    IpProto,
    Level,
    Mode,
    MsgType,
    PolicyType,
    SaState,
    SaType,
)

# ---------------------------------------------------------------------------------------------
# numbers of linux/xfrm.h

XFRM_MSG_NEWSA = 0x10
XFRM_MSG_DELSA = 0x11
XFRM_MSG_GETSA = 0x12
XFRM_MSG_NEWPOLICY = 0x13
XFRM_MSG_DELPOLICY = 0x14
XFRM_MSG_GETPOLICY = 0x15
XFRM_MSG_ALLOCSPI = 0x16
XFRM_MSG_ACQUIRE = 0x17
XFRM_MSG_EXPIRE = 0x18
XFRM_MSG_UPDPOLICY = 0x19
XFRM_MSG_UPDSA = 0x1A
XFRM_MSG_POLEXPIRE = 0x1B
XFRM_MSG_FLUSHSA = 0x1C
XFRM_MSG_FLUSHPOLICY = 0x1D

XFRMA_ALG_AUTH = 1
XFRMA_ALG_CRYPT = 2
XFRMA_ALG_COMP = 3
XFRMA_ENCAP = 4
XFRMA_TMPL = 5
XFRMA_SA = 6
XFRMA_POLICY = 7
XFRMA_SEC_CTX = 8
XFRMA_SRCADDR = 13
XFRMA_POLICY_TYPE = 16
XFRMA_ALG_AEAD = 18
XFRMA_ALG_AUTH_TRUNC = 20
XFRMA_PROTO = 25

XFRMNLGRP_ACQUIRE = 1
XFRMNLGRP_EXPIRE = 2
XFRMNLGRP_SA = 3
XFRMNLGRP_POLICY = 4

XFRM_POLICY_IN, XFRM_POLICY_OUT, XFRM_POLICY_FWD = 0, 1, 2
XFRM_POLICY_ALLOW, XFRM_POLICY_BLOCK = 0, 1
XFRM_POLICY_TYPE_MAIN = 0
XFRM_MODE_TRANSPORT, XFRM_MODE_TUNNEL = 0, 1
XFRM_INF = (1 << 64) - 1
IPSEC_PROTO_ANY = 255

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6

SATYPE_OF_PROTO = {IpProto.ESP: SaType.ESP, IpProto.AH: SaType.AH, IpProto.IPCOMP: SaType.IPCOMP}
PROTO_OF_SATYPE = {v: k for k, v in SATYPE_OF_PROTO.items()}
DIR_TO_XFRM = {1: XFRM_POLICY_IN, 2: XFRM_POLICY_OUT, 3: XFRM_POLICY_FWD}
SPI_RANGE_DEFAULT = (0x100, 0x0FFFFFFF)
CPI_RANGE_DEFAULT = (0x100, 0xFFFF)
REPLAY_MAX = 32
"""af_key caps the replay window at the legacy 32-bit bitmap; so do we, for the same SAs."""


class XfrmDecodeError(ValueError):
    """An XFRM structure shorter than its layout, or otherwise not what the kernel sends."""


# ---------------------------------------------------------------------------------------------
# structures


def pack_addr(addr: IPAddress | None) -> bytes:
    """``xfrm_address_t``: 16 bytes, an IPv4 address in the first four."""
    if addr is None:
        return bytes(16)
    return addr.packed + bytes(16 - len(addr.packed))


def unpack_addr(raw: bytes, family: int) -> IPAddress:
    if family == AF_INET6:
        return ipaddress.IPv6Address(raw[:16])
    return ipaddress.IPv4Address(raw[:4])


def family_of(addr: IPAddress) -> int:
    return AF_INET if addr.version == 4 else AF_INET6


def _unpack(st: struct.Struct, data: bytes, offset: int, what: str) -> tuple:
    if len(data) - offset < st.size:
        raise XfrmDecodeError(f"{what}: {len(data) - offset} bytes, need {st.size}")
    return st.unpack_from(data, offset)


SELECTOR = struct.Struct("=16s16s2s2s2s2sHBBB3xiI")


@dataclass
class Selector:
    """``xfrm_selector``: the traffic a policy (or SA) covers. Ports are host integers here."""

    family: int = AF_INET
    saddr: IPAddress = field(default_factory=lambda: ipaddress.IPv4Address(0))
    daddr: IPAddress = field(default_factory=lambda: ipaddress.IPv4Address(0))
    prefixlen_s: int = 0
    prefixlen_d: int = 0
    sport: int = 0
    sport_mask: int = 0
    dport: int = 0
    dport_mask: int = 0
    proto: int = 0
    ifindex: int = 0
    user: int = 0

    def pack(self) -> bytes:
        return SELECTOR.pack(
            pack_addr(self.daddr),
            pack_addr(self.saddr),
            struct.pack("!H", self.dport),
            struct.pack("!H", self.dport_mask),
            struct.pack("!H", self.sport),
            struct.pack("!H", self.sport_mask),
            self.family,
            self.prefixlen_d,
            self.prefixlen_s,
            self.proto,
            self.ifindex,
            self.user,
        )

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> Selector:
        d, s, dp, dpm, sp, spm, fam, pld, pls, proto, ifi, user = _unpack(
            SELECTOR, data, offset, "xfrm_selector"
        )
        be = lambda b: struct.unpack("!H", b)[0]  # noqa: E731
        return cls(
            fam,
            unpack_addr(s, fam),
            unpack_addr(d, fam),
            pls,
            pld,
            be(sp),
            be(spm),
            be(dp),
            be(dpm),
            proto,
            ifi,
            user,
        )


LIFETIME_CFG = struct.Struct("=8Q")
LIFETIME_CUR = struct.Struct("=4Q")


@dataclass
class LifetimeCfg:
    """``xfrm_lifetime_cfg``: soft and hard limits; ``XFRM_INF`` means none."""

    soft_byte_limit: int = XFRM_INF
    hard_byte_limit: int = XFRM_INF
    soft_packet_limit: int = XFRM_INF
    hard_packet_limit: int = XFRM_INF
    soft_add_expires_seconds: int = 0
    hard_add_expires_seconds: int = 0
    soft_use_expires_seconds: int = 0
    hard_use_expires_seconds: int = 0

    def pack(self) -> bytes:
        return LIFETIME_CFG.pack(*self.__dict__.values())

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> LifetimeCfg:
        return cls(*_unpack(LIFETIME_CFG, data, offset, "xfrm_lifetime_cfg"))


@dataclass
class LifetimeCur:
    """``xfrm_lifetime_cur``: what an SA or policy has used, and when it was added/first used."""

    bytes: int = 0
    packets: int = 0
    add_time: int = 0
    use_time: int = 0

    def pack(self) -> bytes:
        return LIFETIME_CUR.pack(self.bytes, self.packets, self.add_time, self.use_time)

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> LifetimeCur:
        return cls(*_unpack(LIFETIME_CUR, data, offset, "xfrm_lifetime_cur"))


# sel, id (daddr, spi, proto), saddr, lft, curlft, stats, seq, reqid, family, mode, window, flags
USERSA_INFO = struct.Struct("=56s16s4sB3x16s64s32s12sIIHBBB7x")


@dataclass
class UsersaInfo:
    """``xfrm_usersa_info``: one SA (224 bytes). ``spi`` is the value of the network-order field."""

    sel: Selector = field(default_factory=Selector)
    daddr: IPAddress = field(default_factory=lambda: ipaddress.IPv4Address(0))
    spi: int = 0
    proto: int = 0
    saddr: IPAddress = field(default_factory=lambda: ipaddress.IPv4Address(0))
    lft: LifetimeCfg = field(default_factory=LifetimeCfg)
    curlft: LifetimeCur = field(default_factory=LifetimeCur)
    stats: bytes = bytes(12)
    seq: int = 0
    reqid: int = 0
    family: int = AF_INET
    mode: int = XFRM_MODE_TRANSPORT
    replay_window: int = 0
    flags: int = 0

    def pack(self) -> bytes:
        return USERSA_INFO.pack(
            self.sel.pack(),
            pack_addr(self.daddr),
            struct.pack("!I", self.spi),
            self.proto,
            pack_addr(self.saddr),
            self.lft.pack(),
            self.curlft.pack(),
            self.stats,
            self.seq,
            self.reqid,
            self.family,
            self.mode,
            self.replay_window,
            self.flags,
        )

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> UsersaInfo:
        (sel, d, spi, proto, s, lft, cur, stats, seq, reqid, fam, mode, win, flags) = _unpack(
            USERSA_INFO, data, offset, "xfrm_usersa_info"
        )
        return cls(
            Selector.unpack(sel),
            unpack_addr(d, fam),
            struct.unpack("!I", spi)[0],
            proto,
            unpack_addr(s, fam),
            LifetimeCfg.unpack(lft),
            LifetimeCur.unpack(cur),
            stats,
            seq,
            reqid,
            fam,
            mode,
            win,
            flags,
        )


USERSA_ID = struct.Struct("=16s4sHBx")


def pack_usersa_id(daddr: IPAddress, spi: int, proto: int) -> bytes:
    """``xfrm_usersa_id`` (24 bytes): how GETSA and DELSA name one SA."""
    return USERSA_ID.pack(pack_addr(daddr), struct.pack("!I", spi), family_of(daddr), proto)


def unpack_usersa_id(data: bytes, offset: int = 0) -> tuple[IPAddress, int, int, int]:
    """(daddr, spi, family, proto) of an ``xfrm_usersa_id``."""
    d, spi, fam, proto = _unpack(USERSA_ID, data, offset, "xfrm_usersa_id")
    return unpack_addr(d, fam), struct.unpack("!I", spi)[0], fam, proto


USERSPI_INFO = struct.Struct(f"={USERSA_INFO.size}sII")

# sel, lft, curlft, priority, index, dir, action, flags, share
USERPOLICY_INFO = struct.Struct("=56s64s32sIIBBBB4x")


@dataclass
class UserpolicyInfo:
    """``xfrm_userpolicy_info``: one SPD entry without its templates (168 bytes)."""

    sel: Selector = field(default_factory=Selector)
    lft: LifetimeCfg = field(default_factory=LifetimeCfg)
    curlft: LifetimeCur = field(default_factory=LifetimeCur)
    priority: int = 0
    index: int = 0
    dir: int = 0
    action: int = XFRM_POLICY_ALLOW
    flags: int = 0
    share: int = 0

    def pack(self) -> bytes:
        return USERPOLICY_INFO.pack(
            self.sel.pack(),
            self.lft.pack(),
            self.curlft.pack(),
            self.priority,
            self.index,
            self.dir,
            self.action,
            self.flags,
            self.share,
        )

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> UserpolicyInfo:
        sel, lft, cur, prio, index, d, action, flags, share = _unpack(
            USERPOLICY_INFO, data, offset, "xfrm_userpolicy_info"
        )
        return cls(
            Selector.unpack(sel),
            LifetimeCfg.unpack(lft),
            LifetimeCur.unpack(cur),
            prio,
            index,
            d,
            action,
            flags,
            share,
        )


USERPOLICY_ID = struct.Struct("=56sIB3x")


def pack_userpolicy_id(sel: Selector, index: int, direction: int) -> bytes:
    """``xfrm_userpolicy_id`` (64 bytes): a policy by selector and direction, or by index."""
    return USERPOLICY_ID.pack(sel.pack(), index, direction)


# id (daddr, spi, proto), family, saddr, reqid, mode, share, optional, aalgos, ealgos, calgos
USER_TMPL = struct.Struct("=16s4sB3xH2x16sIBBBxIII")


@dataclass
class UserTmpl:
    """``xfrm_user_tmpl``: one element of a policy's bundle (64 bytes)."""

    proto: int = IpProto.ESP
    family: int = AF_INET
    saddr: IPAddress | None = None
    daddr: IPAddress | None = None
    spi: int = 0
    reqid: int = 0
    mode: int = XFRM_MODE_TRANSPORT
    share: int = 0
    optional: int = 0
    aalgos: int = 0xFFFFFFFF
    ealgos: int = 0xFFFFFFFF
    calgos: int = 0xFFFFFFFF

    def pack(self) -> bytes:
        return USER_TMPL.pack(
            pack_addr(self.daddr),
            struct.pack("!I", self.spi),
            self.proto,
            self.family,
            pack_addr(self.saddr),
            self.reqid,
            self.mode,
            self.share,
            self.optional,
            self.aalgos,
            self.ealgos,
            self.calgos,
        )

    @classmethod
    def unpack_all(cls, data: bytes) -> list[UserTmpl]:
        if len(data) % USER_TMPL.size:
            raise XfrmDecodeError(f"XFRMA_TMPL: {len(data)} bytes is no whole number of 64")
        out = []
        for off in range(0, len(data), USER_TMPL.size):
            d, spi, proto, fam, s, reqid, mode, share, opt, aa, ea, ca = USER_TMPL.unpack_from(
                data, off
            )
            out.append(
                cls(
                    proto,
                    fam,
                    unpack_addr(s, fam),
                    unpack_addr(d, fam),
                    struct.unpack("!I", spi)[0],
                    reqid,
                    mode,
                    share,
                    opt,
                    aa,
                    ea,
                    ca,
                )
            )
        return out


# id (daddr, spi, proto), saddr, sel, policy, aalgos, ealgos, calgos, seq
USER_ACQUIRE = struct.Struct(f"=16s4sB3x16s56s{USERPOLICY_INFO.size}sIIII")
USER_EXPIRE = struct.Struct(f"={USERSA_INFO.size}sB7x")
USER_POLEXPIRE = struct.Struct(f"={USERPOLICY_INFO.size}sB7x")
USERSA_FLUSH = struct.Struct("=B")
ALGO = struct.Struct("=64sI")
ALGO_AUTH = struct.Struct("=64sII")
ENCAP_TMPL = struct.Struct("=H2s2s2x16s")
USERPOLICY_TYPE = struct.Struct("=BxHBx")

STRUCTS: dict[str, struct.Struct] = {
    "xfrm_selector": SELECTOR,
    "xfrm_lifetime_cfg": LIFETIME_CFG,
    "xfrm_lifetime_cur": LIFETIME_CUR,
    "xfrm_usersa_info": USERSA_INFO,
    "xfrm_usersa_id": USERSA_ID,
    "xfrm_userspi_info": USERSPI_INFO,
    "xfrm_userpolicy_info": USERPOLICY_INFO,
    "xfrm_userpolicy_id": USERPOLICY_ID,
    "xfrm_user_tmpl": USER_TMPL,
    "xfrm_user_acquire": USER_ACQUIRE,
    "xfrm_user_expire": USER_EXPIRE,
    "xfrm_user_polexpire": USER_POLEXPIRE,
    "xfrm_usersa_flush": USERSA_FLUSH,
    "xfrm_algo": ALGO,
    "xfrm_algo_auth": ALGO_AUTH,
    "xfrm_algo_aead": ALGO_AUTH,
    "xfrm_encap_tmpl": ENCAP_TMPL,
    "xfrm_userpolicy_type": USERPOLICY_TYPE,
}
"""Every layout by its C name, for the test that compares them with ``linux/xfrm.h``."""


def pack_algo(name: str, key: bytes, bits: int) -> bytes:
    return ALGO.pack(name.encode(), bits) + key


def pack_algo_auth(name: str, key: bytes, bits: int, trunc_bits: int) -> bytes:
    """``xfrm_algo_auth`` and ``xfrm_algo_aead`` share this shape (the third field is the
    truncation or the ICV length in bits)."""
    return ALGO_AUTH.pack(name.encode(), bits, trunc_bits) + key


def unpack_algo(data: bytes, with_len: bool) -> tuple[str, int, int, bytes]:
    """(name, key bits, truncation/ICV bits or 0, key) of an algorithm attribute."""
    st = ALGO_AUTH if with_len else ALGO
    if len(data) < st.size:
        raise XfrmDecodeError(f"algorithm attribute of {len(data)} bytes, need {st.size}")
    fields = st.unpack_from(data)
    name = fields[0].split(b"\0", 1)[0].decode("ascii", "replace")
    bits = fields[1]
    extra = fields[2] if with_len else 0
    key = data[st.size : st.size + (bits + 7) // 8]
    return name, bits, extra, key


# ---------------------------------------------------------------------------------------------
# the algorithm table's XFRM column


def aead_icv_bits(cipher: Cipher) -> int | None:
    """The ICV of a combined-mode cipher (``aes-gcm-12`` has 12 bytes), None for the others."""
    aead = ("rfc4106", "rfc4309", "rfc4543")
    if cipher.xfrm_name is None or not cipher.xfrm_name.startswith(aead):
        return None
    tail = cipher.name.rsplit("-", 1)[-1]
    return int(tail) * 8 if tail.isdigit() else 128


def _xfrm_cipher(sadb_id: int) -> Cipher:
    c = CIPHERS.get("sadb_id", sadb_id)
    if c is None or c.xfrm_name is None:
        raise _Refusal(errno_mod.EINVAL, f"no XFRM name for SADB encryption algorithm {sadb_id}")
    return c


def cipher_from_xfrm(name: str, icv_bits: int | None = None) -> Cipher | None:
    """The row of an XFRM cipher name; for AEAD names the ICV length picks the row."""
    for c in CIPHERS:
        if c.xfrm_name == name and c.sadb_id is not None:
            if icv_bits is None or aead_icv_bits(c) == icv_bits:
                return c
    return None


# ---------------------------------------------------------------------------------------------
# PF_KEY -> XFRM


class _Refusal(Exception):
    """A request this backend answers with an errno without asking the kernel."""

    def __init__(self, errno: int, reason: str) -> None:
        self.errno = errno
        super().__init__(reason)


def _limit(value: int) -> int:
    """af_key's ``_KEY2X``: a PF_KEY limit of 0 is no limit."""
    return value if value else XFRM_INF


def _unlimit(value: int) -> int:
    """af_key's ``_X2KEY``."""
    return 0 if value == XFRM_INF else value


def lifetime_cfg(msg: Message) -> LifetimeCfg:
    cfg = LifetimeCfg()
    hard, soft = msg.lifetime(ExtType.LIFETIME_HARD), msg.lifetime(ExtType.LIFETIME_SOFT)
    if hard is not None:
        cfg.hard_packet_limit = _limit(hard.allocations)
        cfg.hard_byte_limit = _limit(hard.bytes)
        cfg.hard_add_expires_seconds = hard.addtime
        cfg.hard_use_expires_seconds = hard.usetime
    if soft is not None:
        cfg.soft_packet_limit = _limit(soft.allocations)
        cfg.soft_byte_limit = _limit(soft.bytes)
        cfg.soft_add_expires_seconds = soft.addtime
        cfg.soft_use_expires_seconds = soft.usetime
    return cfg


def _endpoints(msg: Message) -> tuple[Address, Address]:
    src, dst = msg.src, msg.dst
    if src is None or dst is None:
        raise _Refusal(errno_mod.EINVAL, "source and destination addresses are required")
    if src.addr.version != dst.addr.version:
        raise _Refusal(errno_mod.EINVAL, "source and destination of different families")
    return src, dst


def _proto(msg: Message) -> int:
    proto = PROTO_OF_SATYPE.get(msg.satype)  # type: ignore[call-overload]
    if proto is None:
        raise _Refusal(errno_mod.EINVAL, f"SA type {msg.satype} is not AH, ESP or IPComp")
    return int(proto)


def _xfrm_mode(pfkey_mode: int) -> int:
    if pfkey_mode in (Mode.ANY, Mode.TRANSPORT):
        return XFRM_MODE_TRANSPORT
    if pfkey_mode == Mode.TUNNEL:
        return XFRM_MODE_TUNNEL
    raise _Refusal(errno_mod.EINVAL, f"IPsec mode {pfkey_mode}")


def sa_request(msg: Message) -> tuple[UsersaInfo, list[tuple[int, bytes]]]:
    """ADD/UPDATE as ``xfrm_usersa_info`` and its algorithm (and NAT-T) attributes."""
    proto = _proto(msg)
    src, dst = _endpoints(msg)
    sa = msg.sa
    if sa is None:
        raise _Refusal(errno_mod.EINVAL, "an SA extension is required")
    fam = family_of(src.addr)
    sa2 = msg.sa2
    info = UsersaInfo(
        sel=Selector(family=fam, saddr=_zero(fam), daddr=_zero(fam)),
        daddr=dst.addr,
        spi=sa.spi,
        proto=proto,
        saddr=src.addr,
        lft=lifetime_cfg(msg),
        seq=msg.seq,
        reqid=sa2.reqid if sa2 else 0,
        family=fam,
        mode=_xfrm_mode(sa2.mode if sa2 else Mode.ANY),
        replay_window=min(sa.replay, REPLAY_MAX),
    )
    out: list[tuple[int, bytes]] = []
    akey, ekey = msg.key(ExtType.KEY_AUTH), msg.key(ExtType.KEY_ENCRYPT)
    if proto == IpProto.IPCOMP:
        comp = IPCOMP_ALGORITHMS.get("sadb_id", sa.encrypt)
        if comp is None or comp.xfrm_name is None:
            raise _Refusal(errno_mod.EINVAL, f"no XFRM name for IPComp algorithm {sa.encrypt}")
        out.append((XFRMA_ALG_COMP, pack_algo(comp.xfrm_name, b"", 0)))
        return info, out
    if sa.auth:
        auth = AUTH_ALGORITHMS.get("sadb_id", sa.auth)
        if auth is None or auth.xfrm_name is None:
            raise _Refusal(errno_mod.EINVAL, f"no XFRM name for SADB auth algorithm {sa.auth}")
        key = akey.key if akey else b""
        bits = akey.bits if akey and akey.bits is not None else 0
        out.append(
            (XFRMA_ALG_AUTH_TRUNC, pack_algo_auth(auth.xfrm_name, key, bits, auth.icv_bits or 0))
        )
    if proto == IpProto.ESP and sa.encrypt:
        cipher = _xfrm_cipher(sa.encrypt)
        assert cipher.xfrm_name is not None
        key = ekey.key if ekey else b""
        bits = ekey.bits if ekey and ekey.bits is not None else 0
        icv = aead_icv_bits(cipher)
        if icv is not None:
            out.append((XFRMA_ALG_AEAD, pack_algo_auth(cipher.xfrm_name, key, bits, icv)))
        else:
            out.append((XFRMA_ALG_CRYPT, pack_algo(cipher.xfrm_name, key, bits)))
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


def _zero(fam: int) -> IPAddress:
    return ipaddress.IPv6Address(0) if fam == AF_INET6 else ipaddress.IPv4Address(0)


def selector_of(msg: Message) -> Selector:
    """A policy's ``xfrm_selector`` from its ADDRESS_SRC/DST (af_key's rules for proto/ports)."""
    src, dst = _endpoints(msg)
    proto = 0 if src.proto == 255 else src.proto
    return Selector(
        family=family_of(src.addr),
        saddr=src.addr,
        daddr=dst.addr,
        prefixlen_s=src.prefixlen if src.prefixlen is not None else src.addr.max_prefixlen,
        prefixlen_d=dst.prefixlen if dst.prefixlen is not None else dst.addr.max_prefixlen,
        sport=src.port,
        sport_mask=0xFFFF if src.port else 0,
        dport=dst.port,
        dport_mask=0xFFFF if dst.port else 0,
        proto=proto,
    )


def _xfrm_dir(policy: Policy) -> int:
    d = DIR_TO_XFRM.get(policy.dir)
    if d is None:
        raise _Refusal(errno_mod.EINVAL, f"policy direction {policy.dir}")
    return d


def policy_request(
    msg: Message, new_reqid: Callable[[], int]
) -> tuple[UserpolicyInfo, list[tuple[int, bytes]]]:
    """X_SPDADD/X_SPDUPDATE as ``xfrm_userpolicy_info`` and its ``XFRMA_TMPL``."""
    pol = msg.policy
    if pol is None:
        raise _Refusal(errno_mod.EINVAL, "an X_POLICY extension is required")
    if pol.policy_type > PolicyType.IPSEC:
        raise _Refusal(errno_mod.EINVAL, f"policy type {pol.policy_type} (entrust/bypass)")
    sel = selector_of(msg)
    info = UserpolicyInfo(
        sel=sel,
        lft=lifetime_cfg(msg),
        priority=pol.priority,
        dir=_xfrm_dir(pol),
        action=XFRM_POLICY_BLOCK if pol.policy_type == PolicyType.DISCARD else XFRM_POLICY_ALLOW,
    )
    tmpls = []
    if pol.policy_type == PolicyType.IPSEC:
        for req in pol.requests:
            t = UserTmpl(proto=req.proto, family=sel.family, mode=_xfrm_mode(req.mode))
            if req.src is not None and req.dst is not None:
                t.family, t.saddr, t.daddr = family_of(req.src), req.src, req.dst
            if req.level == Level.USE:
                t.optional = 1
            elif req.level == Level.UNIQUE:
                t.reqid = req.reqid if 0 < req.reqid <= MANUAL_REQID_MAX else new_reqid()
            tmpls.append(t.pack())
    extra = [(XFRMA_TMPL, b"".join(tmpls))] if tmpls else []
    return info, extra


# ---------------------------------------------------------------------------------------------
# XFRM -> PF_KEY


def _address(
    ext: ExtType, addr: IPAddress, prefixlen: int | None = None, proto: int = 0, port: int = 0
) -> Address:
    return Address(ext, addr, port, addr.max_prefixlen if prefixlen is None else prefixlen, proto)


def _lifetimes(lft: LifetimeCfg, cur: LifetimeCur, which: str = "hsc") -> list[Extension]:
    out: list[Extension] = []
    if "h" in which:
        out.append(
            Lifetime(
                ExtType.LIFETIME_HARD,
                _unlimit(lft.hard_packet_limit),
                _unlimit(lft.hard_byte_limit),
                lft.hard_add_expires_seconds,
                lft.hard_use_expires_seconds,
            )
        )
    if "s" in which:
        out.append(
            Lifetime(
                ExtType.LIFETIME_SOFT,
                _unlimit(lft.soft_packet_limit),
                _unlimit(lft.soft_byte_limit),
                lft.soft_add_expires_seconds,
                lft.soft_use_expires_seconds,
            )
        )
    if "c" in which:
        out.append(
            Lifetime(
                ExtType.LIFETIME_CURRENT,
                cur.packets & 0xFFFFFFFF,
                cur.bytes,
                cur.add_time,
                cur.use_time,
            )
        )
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
    satype = SATYPE_OF_PROTO.get(info.proto)  # type: ignore[call-overload]
    if satype is None:
        return None
    auth_id = enc_id = 0
    akey = ekey = None
    if (raw := a.get(XFRMA_ALG_AUTH_TRUNC)) is not None or (raw := a.get(XFRMA_ALG_AUTH)):
        name, bits, _, key = unpack_algo(raw, a.get(XFRMA_ALG_AUTH_TRUNC) is not None)
        row = AUTH_ALGORITHMS.get("xfrm_name", name)
        auth_id = row.sadb_id or 0 if row else 0
        akey = Key(ExtType.KEY_AUTH, key, bits)
    if (raw := a.get(XFRMA_ALG_AEAD)) is not None:
        name, bits, icv, key = unpack_algo(raw, True)
        c = cipher_from_xfrm(name, icv)
        enc_id = c.sadb_id or 0 if c else 0
        ekey = Key(ExtType.KEY_ENCRYPT, key, bits)
    elif (raw := a.get(XFRMA_ALG_CRYPT)) is not None:
        name, bits, _, key = unpack_algo(raw, False)
        c = cipher_from_xfrm(name)
        enc_id = c.sadb_id or 0 if c else 0
        ekey = Key(ExtType.KEY_ENCRYPT, key, bits)
    elif (raw := a.get(XFRMA_ALG_COMP)) is not None:
        name, _, _, _ = unpack_algo(raw, False)
        row = IPCOMP_ALGORITHMS.get("xfrm_name", name)
        enc_id = row.sadb_id if row else 0
    if state is None:
        # XFRM does not say whether an SA is larval; one without any algorithm is what
        # ALLOCSPI (or an ACQUIRE) made and nobody has keyed yet.
        state = SaState.MATURE if (auth_id or enc_id or akey or ekey) else SaState.LARVAL
    msg = Message(mtype, satype, 0, seq, pid)
    msg.add(SA(info.spi, info.replay_window, state, auth_id, enc_id, 0))
    for ext in _lifetimes(info.lft, info.curlft, lifetimes):
        msg.add(ext)
    msg.add(_address(ExtType.ADDRESS_SRC, info.saddr))
    msg.add(_address(ExtType.ADDRESS_DST, info.daddr))
    if keys and akey is not None and akey.bits:
        msg.add(akey)
    if keys and ekey is not None and ekey.bits:
        msg.add(ekey)
    mode = {XFRM_MODE_TRANSPORT: Mode.TRANSPORT, XFRM_MODE_TUNNEL: Mode.TUNNEL}.get(
        info.mode, Mode.ANY
    )
    msg.add(SA2(mode, 0, info.reqid))
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
    ptype = a.get(XFRMA_POLICY_TYPE)
    if ptype is not None and ptype[:1] != bytes([XFRM_POLICY_TYPE_MAIN]):
        return None
    raw = a.get(XFRMA_TMPL)
    tmpls = UserTmpl.unpack_all(raw) if raw else []
    if info.action == XFRM_POLICY_BLOCK:
        ptype_pf = PolicyType.DISCARD
    else:
        ptype_pf = PolicyType.IPSEC if tmpls else PolicyType.NONE
    reqs = []
    for t in tmpls:
        if t.optional:
            level = Level.USE
        elif t.reqid:
            level = Level.UNIQUE
        else:
            level = Level.REQUIRE
        tunnel = t.mode == XFRM_MODE_TUNNEL
        reqs.append(
            IpsecRequest(
                t.proto,
                Mode.TUNNEL if tunnel else Mode.TRANSPORT,
                level,
                t.reqid,
                t.saddr if tunnel else None,
                t.daddr if tunnel else None,
            )
        )
    msg = Message(mtype, 0, 0, seq, pid)
    sel = info.sel
    direction = info.index & 7 if info.index else info.dir
    if sel.family in (AF_INET, AF_INET6):
        proto = sel.proto or 255
        msg.add(_address(ExtType.ADDRESS_SRC, sel.saddr, sel.prefixlen_s, proto, sel.sport))
        msg.add(_address(ExtType.ADDRESS_DST, sel.daddr, sel.prefixlen_d, proto, sel.dport))
    for ext in _lifetimes(info.lft, info.curlft):
        msg.add(ext)
    msg.add(Policy(ptype_pf, direction + 1, info.index, info.priority, reqs))
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


# ---------------------------------------------------------------------------------------------
# what is missing, in one line


def missing_module_hint(proto: int, family: int, err: int, attrs: list[tuple[int, bytes]]) -> str:
    """The one line a person needs when the kernel refused an SA for want of a module."""
    v6 = family == AF_INET6
    if err == errno_mod.EPROTONOSUPPORT:
        module = {
            IpProto.ESP: "esp6" if v6 else "esp4",
            IpProto.AH: "ah6" if v6 else "ah4",
            IpProto.IPCOMP: "ipcomp6" if v6 else "ipcomp",
        }.get(proto, "xfrm_user")  # type: ignore[call-overload]
        what = {IpProto.ESP: "ESP", IpProto.AH: "AH", IpProto.IPCOMP: "IPComp"}.get(
            proto,
            str(proto),  # type: ignore[call-overload]
        )
        return f"the kernel has no {what} for IPv{6 if v6 else 4}: modprobe {module}"
    names = []
    for atype, raw in attrs:
        if atype in (XFRMA_ALG_AUTH_TRUNC, XFRMA_ALG_CRYPT, XFRMA_ALG_AEAD, XFRMA_ALG_COMP):
            names.append(unpack_algo(raw, atype != XFRMA_ALG_CRYPT and atype != XFRMA_ALG_COMP)[0])
    modules: list[str] = []
    for name in names:
        for part in name.replace(")", "").split("("):
            mod = _CRYPTO_MODULE.get(part, part)
            if mod and mod not in modules:
                modules.append(mod)
    return (
        f"the kernel has no crypto for {' + '.join(names) or 'this SA'}: "
        f"modprobe -a {' '.join(modules)}"
    )


_CRYPTO_MODULE = {
    "des3_ede": "des3_ede",
    "cipher_null": "crypto_null",
    "digest_null": "crypto_null",
    "ecb": "ecb",
    "rfc4106": "gcm",
    "rfc4309": "ccm",
    "rfc4543": "gcm",
    "rfc3686": "ctr",
    "rmd160": "rmd160",
}


# ---------------------------------------------------------------------------------------------
# the socket


class XfrmSocket(KernelSocket):
    """A ``KernelSocket`` backed by Linux XFRM netlink.

    Two netlink sockets: one for requests, which only ever carries answers to them, and one
    subscribed to the multicast groups (once someone listens: REGISTER, X_PROMISC, ``fileno``
    or ``recv``), so that a 10 000-entry ``pysetkey -f`` never has to read events it ignores.
    Requests are answered synchronously inside ``send``; the PF_KEY replies wait in a queue,
    and ``fileno`` is an epoll descriptor that is readable when that queue holds something or
    an event arrived, so an event loop sees both.
    """

    backend = "xfrm"

    def __init__(self, notice: Callable[[str], None] | None = None) -> None:
        super().__init__()
        if notice is not None:
            self.notice = notice
        try:
            self.nl = nl.NetlinkSocket(nl.NETLINK_XFRM)
        except OSError as e:
            if e.errno in (errno_mod.EPROTONOSUPPORT, errno_mod.EAFNOSUPPORT):
                raise KernelUnavailable(
                    "this kernel has no XFRM netlink interface: modprobe xfrm_user "
                    "(or use '--kernel pfkey' where AF_KEY exists)"
                ) from e
            if e.errno in (errno_mod.EPERM, errno_mod.EACCES):
                raise KernelUnavailable(
                    "XFRM netlink needs root (or CAP_NET_ADMIN): run as root"
                ) from e
            raise KernelUnavailable(f"cannot open an XFRM netlink socket: {e.strerror}") from e
        self.events = nl.NetlinkSocket(nl.NETLINK_XFRM)
        self._joined = False
        self._registered: set[int] = set()
        self._promisc = False
        self._queue: deque[Message] = deque()
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        self._signalled = False
        self._epoll: select.epoll | None = None
        self._next_reqid = 0
        self._hinted: set[str] = set()
        self._lost_events = False

    # -- plumbing -----------------------------------------------------------------------------

    def _join(self) -> None:
        if not self._joined:
            for g in (XFRMNLGRP_ACQUIRE, XFRMNLGRP_EXPIRE, XFRMNLGRP_SA, XFRMNLGRP_POLICY):
                self.events.join(g)
            self._joined = True

    def _put(self, msg: Message) -> None:
        self._queue.append(msg)
        if not self._signalled:
            os.write(self._pipe_w, b"!")
            self._signalled = True

    def _take(self) -> Message:
        msg = self._queue.popleft()
        if not self._queue and self._signalled:
            try:
                os.read(self._pipe_r, 64)
            except BlockingIOError:
                pass
            self._signalled = False
        return msg

    def fileno(self) -> int:
        self._join()
        if self._epoll is None:
            self._epoll = select.epoll()
            self._epoll.register(self.events.fileno(), select.EPOLLIN)
            self._epoll.register(self._pipe_r, select.EPOLLIN)
        return self._epoll.fileno()

    def close(self) -> None:
        for closer in (self.nl.close, self.events.close):
            closer()
        if self._epoll is not None:
            self._epoll.close()
        for fd in (self._pipe_r, self._pipe_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _transact(self, mtype: int, payload: bytes, flags: int = 0) -> list[nl.NlMsg]:
        try:
            return self.nl.transact(mtype, payload, flags=flags)
        except TimeoutError as e:
            raise KernelError(f"the kernel did not answer XFRM message type {mtype}") from e
        except OSError as e:
            if e.errno is None:
                raise KernelError(f"XFRM netlink failed: {e}") from e
            raise

    def _hint(self, text: str) -> None:
        if text not in self._hinted:
            self._hinted.add(text)
            self.notice(text)

    # -- send: one PF_KEY request --------------------------------------------------------------

    def send(self, msg: Message) -> None:
        handler = {
            MsgType.GETSPI: self._getspi,
            MsgType.UPDATE: self._add,
            MsgType.ADD: self._add,
            MsgType.DELETE: self._delete,
            MsgType.GET: self._get,
            MsgType.FLUSH: self._flush,
            MsgType.DUMP: self._dump,
            MsgType.REGISTER: self._register,
            MsgType.X_PROMISC: self._promisc_on,
            MsgType.X_SPDADD: self._spdadd,
            MsgType.X_SPDUPDATE: self._spdadd,
            MsgType.X_SPDDELETE: self._spddelete,
            MsgType.X_SPDDELETE2: self._spdget,
            MsgType.X_SPDGET: self._spdget,
            MsgType.X_SPDFLUSH: self._spdflush,
            MsgType.X_SPDDUMP: self._spddump,
        }.get(msg.type)  # type: ignore[call-overload]
        if msg.type == MsgType.ACQUIRE and msg.errno:
            # A key manager saying "negotiation failed": af_key marks the larval SA, XFRM has
            # no message for it; the larval SA times out by itself.
            return
        if handler is None:
            self._put(msg.reply(errno_mod.EOPNOTSUPP))
            return
        try:
            handler(msg)
        except _Refusal as r:
            self._put(msg.reply(r.errno))
        except OSError as e:
            self._put(msg.reply(e.errno or errno_mod.EIO))

    def _sa_failed(self, e: OSError, proto: int, family: int, attrs: list) -> None:
        if e.errno in (errno_mod.EPROTONOSUPPORT, errno_mod.ENOSYS):
            self._hint(missing_module_hint(proto, family, e.errno, attrs))

    def _getspi(self, msg: Message) -> None:
        proto = _proto(msg)
        src, dst = _endpoints(msg)
        rng = msg.get(ExtType.SPIRANGE)
        if isinstance(rng, SpiRange):
            lo, hi = rng.min, rng.max
        else:
            lo, hi = CPI_RANGE_DEFAULT if proto == IpProto.IPCOMP else SPI_RANGE_DEFAULT
        sa2 = msg.sa2
        fam = family_of(src.addr)
        info = UsersaInfo(
            sel=Selector(family=fam, saddr=_zero(fam), daddr=_zero(fam)),
            daddr=dst.addr,
            proto=proto,
            saddr=src.addr,
            seq=msg.seq,
            reqid=sa2.reqid if sa2 else 0,
            family=fam,
            mode=_xfrm_mode(sa2.mode if sa2 else Mode.ANY),
        )
        try:
            answer = self._transact(XFRM_MSG_ALLOCSPI, USERSPI_INFO.pack(info.pack(), lo, hi))
        except OSError as e:
            self._sa_failed(e, proto, fam, [])
            raise
        if not answer:
            raise _Refusal(errno_mod.EIO, "ALLOCSPI answered nothing")
        state = UsersaInfo.unpack(answer[0].payload)
        reply = state_message(
            MsgType.GETSPI,
            state,
            nl.parse_attrs(answer[0].payload, USERSA_INFO.size),
            keys=False,
            seq=msg.seq,
            pid=msg.pid,
            state=SaState.LARVAL,
        )
        assert reply is not None
        self._put(reply)

    def _add(self, msg: Message) -> None:
        info, extra = sa_request(msg)
        mtype = XFRM_MSG_UPDSA if msg.type == MsgType.UPDATE else XFRM_MSG_NEWSA
        try:
            self._transact(mtype, info.pack() + nl.attrs(extra), nl.NLM_F_ACK)
        except OSError as e:
            self._sa_failed(e, info.proto, info.family, extra)
            raise
        self._put(_without_keys(msg))

    def _delete(self, msg: Message) -> None:
        proto = _proto(msg)
        src, dst = _endpoints(msg)
        if msg.sa is None:
            raise _Refusal(errno_mod.EINVAL, "an SA extension is required")
        payload = pack_usersa_id(dst.addr, msg.sa.spi, proto)
        payload += nl.attr(XFRMA_SRCADDR, pack_addr(src.addr))
        self._transact(XFRM_MSG_DELSA, payload, nl.NLM_F_ACK)
        self._put(_without_keys(msg))

    def _get(self, msg: Message) -> None:
        proto = _proto(msg)
        src, dst = _endpoints(msg)
        if msg.sa is None:
            raise _Refusal(errno_mod.EINVAL, "an SA extension is required")
        payload = pack_usersa_id(dst.addr, msg.sa.spi, proto)
        payload += nl.attr(XFRMA_SRCADDR, pack_addr(src.addr))
        answer = self._transact(XFRM_MSG_GETSA, payload)
        if not answer:
            raise _Refusal(errno_mod.ESRCH, "no such SA")
        p = answer[0].payload
        reply = state_message(
            MsgType.GET,
            UsersaInfo.unpack(p),
            nl.parse_attrs(p, USERSA_INFO.size),
            keys=True,
            seq=msg.seq,
            pid=msg.pid,
        )
        if reply is None:
            raise _Refusal(errno_mod.ESRCH, "not an IPsec SA")
        self._put(reply)

    def _flush(self, msg: Message) -> None:
        proto = IPSEC_PROTO_ANY if msg.satype == SaType.UNSPEC else _proto(msg)
        try:
            self._transact(XFRM_MSG_FLUSHSA, USERSA_FLUSH.pack(proto), nl.NLM_F_ACK)
        except OSError as e:
            if e.errno != errno_mod.ESRCH:  # older kernels: "nothing to flush"
                raise
        self._put(msg.reply())

    def _emit_dump(self, msg: Message, entries: list[Message]) -> None:
        if not entries:
            self._put(msg.reply(errno_mod.ENOENT))
            return
        n = len(entries)
        for i, m in enumerate(entries):
            m.type, m.seq, m.pid = msg.type, n - 1 - i, msg.pid
            self._put(m)

    def _dump(self, msg: Message) -> None:
        payload = b""
        if msg.satype != SaType.UNSPEC:
            payload = nl.attr(XFRMA_PROTO, bytes([_proto(msg)]))
        answer = self._transact(XFRM_MSG_GETSA, payload, nl.NLM_F_DUMP)
        out = []
        for m in answer:
            if m.type != XFRM_MSG_NEWSA:
                continue
            info = UsersaInfo.unpack(m.payload)
            entry = state_message(
                MsgType.DUMP, info, nl.parse_attrs(m.payload, USERSA_INFO.size), keys=True
            )
            if entry is not None and (msg.satype == SaType.UNSPEC or entry.satype == msg.satype):
                out.append(entry)
        self._emit_dump(msg, out)

    def _register(self, msg: Message) -> None:
        if msg.satype not in (SaType.UNSPEC, SaType.AH, SaType.ESP, SaType.IPCOMP):
            raise _Refusal(errno_mod.EINVAL, f"cannot register for SA type {msg.satype}")
        if msg.satype != SaType.UNSPEC:
            self._registered.add(msg.satype)
            self._join()
        self._put(register_reply(msg))

    def _promisc_on(self, msg: Message) -> None:
        self._promisc = bool(msg.satype)
        self._join()
        self._put(msg.reply())

    def _new_reqid(self) -> int:
        """af_key's ``gen_reqid``: a reqid above the manual range nobody's policy uses."""
        if not self._next_reqid:
            used = {0}
            for m in self._transact(XFRM_MSG_GETPOLICY, b"", nl.NLM_F_DUMP):
                raw = nl.parse_attrs(m.payload, USERPOLICY_INFO.size).get(XFRMA_TMPL)
                used.update(t.reqid for t in UserTmpl.unpack_all(raw or b""))
            self._next_reqid = max(max(used) + 1, MANUAL_REQID_MAX + 1)
        reqid = self._next_reqid
        self._next_reqid = reqid + 1 if reqid < 0xFFFFFFFF else MANUAL_REQID_MAX + 1
        return reqid

    def _policy_by(
        self, sel: Selector, index: int, direction: int
    ) -> tuple[UserpolicyInfo, nl.Attributes]:
        answer = self._transact(XFRM_MSG_GETPOLICY, pack_userpolicy_id(sel, index, direction))
        if not answer:
            raise _Refusal(errno_mod.ENOENT, "no such policy")
        p = answer[0].payload
        return UserpolicyInfo.unpack(p), nl.parse_attrs(p, USERPOLICY_INFO.size)

    def _spdadd(self, msg: Message) -> None:
        info, extra = policy_request(msg, self._new_reqid)
        mtype = XFRM_MSG_UPDPOLICY if msg.type == MsgType.X_SPDUPDATE else XFRM_MSG_NEWPOLICY
        self._transact(mtype, info.pack() + nl.attrs(extra), nl.NLM_F_ACK)
        # NEWPOLICY's acknowledgement carries no index; the PF_KEY reply must (it is the id).
        try:
            got, a = self._policy_by(info.sel, 0, info.dir)
        except (OSError, _Refusal):
            self._put(msg.reply())
            return
        reply = policy_message(msg.type, got, a, seq=msg.seq, pid=msg.pid)
        self._put(reply if reply is not None else msg.reply())

    def _spddelete(self, msg: Message) -> None:
        pol = msg.policy
        if pol is None:
            raise _Refusal(errno_mod.EINVAL, "an X_POLICY extension is required")
        sel, d = selector_of(msg), _xfrm_dir(pol)
        got, a = self._policy_by(sel, 0, d)
        self._transact(XFRM_MSG_DELPOLICY, pack_userpolicy_id(sel, 0, d), nl.NLM_F_ACK)
        reply = policy_message(msg.type, got, a, seq=msg.seq, pid=msg.pid)
        self._put(reply if reply is not None else msg.reply())

    def _spdget(self, msg: Message) -> None:
        """X_SPDGET, and X_SPDDELETE2 (the same lookup by id, then the delete)."""
        pol = msg.policy
        if pol is None or not pol.id:
            raise _Refusal(errno_mod.EINVAL, "an X_POLICY extension with an id is required")
        direction = pol.id & 7
        if direction > XFRM_POLICY_FWD:
            raise _Refusal(errno_mod.EINVAL, "per-socket policies are not in the SPD")
        got, a = self._policy_by(Selector(), pol.id, direction)
        if msg.type == MsgType.X_SPDDELETE2:
            self._transact(
                XFRM_MSG_DELPOLICY,
                pack_userpolicy_id(Selector(), pol.id, direction),
                nl.NLM_F_ACK,
            )
        reply = policy_message(msg.type, got, a, seq=msg.seq, pid=msg.pid)
        self._put(reply if reply is not None else msg.reply())

    def _spdflush(self, msg: Message) -> None:
        self._transact(XFRM_MSG_FLUSHPOLICY, b"", nl.NLM_F_ACK)
        self._put(msg.reply())

    def _spddump(self, msg: Message) -> None:
        out = []
        for m in self._transact(XFRM_MSG_GETPOLICY, b"", nl.NLM_F_DUMP):
            if m.type != XFRM_MSG_NEWPOLICY:
                continue
            info = UserpolicyInfo.unpack(m.payload)
            a = nl.parse_attrs(m.payload, USERPOLICY_INFO.size)
            entry = policy_message(MsgType.X_SPDDUMP, info, a)
            if entry is not None:
                out.append(entry)
        self._emit_dump(msg, out)

    # -- recv: replies, then events ------------------------------------------------------------

    def _recv(self, timeout: float | None) -> Message | None:
        if self._queue:
            return self._take()
        self._join()
        try:
            batch = self.events.recv_batch(timeout)
        except OSError as e:
            if e.errno == errno_mod.ENOBUFS:
                # PF_KEY loses messages the same way when a reader falls behind; say so once.
                if not self._lost_events:
                    self._lost_events = True
                    self.notice("XFRM events were lost: the netlink socket's buffer overflowed")
                return None
            raise KernelError(f"cannot read XFRM events: {e.strerror}") from e
        except nl.NetlinkDecodeError as e:
            # as with PF_KEY: a message we cannot read costs that message, not the socket
            self.notice(f"an XFRM event could not be read, skipped: {e}")
            return None
        for m in batch or ():
            try:
                ev = self.translate_event(m)
            except (XfrmDecodeError, nl.NetlinkDecodeError) as e:
                self.notice(f"an XFRM event could not be read: {e}")
                continue
            if ev is not None:
                self._put(ev)
        return self._take() if self._queue else None

    def translate_event(self, m: nl.NlMsg) -> Message | None:
        """One multicast XFRM message as the PF_KEY message this socket would have got: none
        for what our own requests caused (the reply said it), ACQUIRE and EXPIRE only when
        registered for the SA type (or promiscuous), as af_key delivers them."""
        if m.pid and m.pid == self.nl.portid:
            return None
        ev = event_message(m)
        if ev is None:
            return None
        if ev.type in (MsgType.ACQUIRE, MsgType.EXPIRE) and not (
            self._promisc or ev.satype in self._registered
        ):
            return None
        return ev


def _without_keys(msg: Message) -> Message:
    """The reply to ADD/UPDATE/DELETE: the request's extensions less its key material."""
    reply = msg.reply()
    for ext in msg:
        if ext.type not in (ExtType.KEY_AUTH, ExtType.KEY_ENCRYPT):
            reply.add(ext)
    return reply


def xfrm_available() -> bool:
    """Whether an XFRM netlink socket opens here (for ``auto``)."""
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_XFRM)
    except (OSError, AttributeError):
        return False
    s.close()
    return True


def event_message(m: nl.NlMsg) -> Message | None:
    """The PF_KEY message for one XFRM notification (None for what PF_KEY has no word for)."""
    p = m.payload
    if m.type == XFRM_MSG_ACQUIRE:
        return acquire_message(p)
    if m.type == XFRM_MSG_EXPIRE:
        st, hard = USER_EXPIRE.unpack_from(p) if len(p) >= USER_EXPIRE.size else (None, 0)
        if st is None:
            raise XfrmDecodeError(f"xfrm_user_expire: {len(p)} bytes")
        info = UsersaInfo.unpack(st)
        return state_message(
            MsgType.EXPIRE,
            info,
            nl.Attributes(),
            keys=False,
            state=SaState.DEAD if hard else SaState.DYING,
            lifetimes="hc" if hard else "sc",
        )
    if m.type == XFRM_MSG_POLEXPIRE:
        if len(p) < USER_POLEXPIRE.size:
            raise XfrmDecodeError(f"xfrm_user_polexpire: {len(p)} bytes")
        pol, hard = USER_POLEXPIRE.unpack_from(p)
        if not hard:
            return None  # PF_KEY has no soft policy expiry
        return policy_message(
            MsgType.X_SPDEXPIRE,
            UserpolicyInfo.unpack(pol),
            nl.parse_attrs(p, USER_POLEXPIRE.size),
        )
    if m.type in (XFRM_MSG_NEWSA, XFRM_MSG_UPDSA):
        info = UsersaInfo.unpack(p)
        mt = MsgType.ADD if m.type == XFRM_MSG_NEWSA else MsgType.UPDATE
        return state_message(
            mt, info, nl.parse_attrs(p, USERSA_INFO.size), keys=False, seq=m.seq, pid=m.pid
        )
    if m.type == XFRM_MSG_DELSA:
        a = nl.parse_attrs(p, USERSA_ID.size)
        raw = a.get(XFRMA_SA)
        if raw is None:
            daddr, spi, fam, proto = unpack_usersa_id(p)
            info = UsersaInfo(daddr=daddr, spi=spi, proto=proto, family=fam, saddr=_zero(fam))
        else:
            info = UsersaInfo.unpack(raw)
        return state_message(MsgType.DELETE, info, a, keys=False, seq=m.seq, pid=m.pid)
    if m.type == XFRM_MSG_FLUSHSA:
        proto = p[0] if p else IPSEC_PROTO_ANY
        sat = SATYPE_OF_PROTO.get(proto, SaType.UNSPEC)  # type: ignore[call-overload]
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
    if len(p) < USER_ACQUIRE.size:
        raise XfrmDecodeError(f"xfrm_user_acquire: {len(p)} bytes")
    d, _spi, proto, s, _sel, pol, _aa, _ea, _ca, seq = USER_ACQUIRE.unpack_from(p)
    policy = UserpolicyInfo.unpack(pol)
    fam = policy.sel.family if policy.sel.family else AF_INET
    # the addresses of the SA to negotiate: the template's tunnel endpoints, or the packet's
    daddr, saddr = unpack_addr(d, fam), unpack_addr(s, fam)
    tmpls = UserTmpl.unpack_all(nl.parse_attrs(p, USER_ACQUIRE.size).get(XFRMA_TMPL) or b"")
    for t in tmpls:
        if t.proto == proto:
            fam = t.family
            daddr, saddr = unpack_addr(d, fam), unpack_addr(s, fam)
            break
    sat = SATYPE_OF_PROTO.get(proto)  # type: ignore[call-overload]
    if sat is None:
        return None
    msg = Message(MsgType.ACQUIRE, sat, 0, seq, 0)
    msg.add(_address(ExtType.ADDRESS_SRC, saddr))
    msg.add(_address(ExtType.ADDRESS_DST, daddr))
    msg.add(Policy(PolicyType.IPSEC, policy.dir + 1, policy.index, policy.priority, []))
    msg.add(Proposal(ACQUIRE_REPLAY, []))  # as pfkey_send_acquire: no combinations
    return msg
