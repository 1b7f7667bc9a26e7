"""The Linux XFRM backend: the kernel vocabulary, and PF_KEY messages, over XFRM netlink.

Linux's native key-management interface is XFRM over netlink (``xfrm_user``), which every Linux
has, while ``af_key`` is an optional, deprecated module many distributions leave out.
``XfrmSocket`` is a codec of the kernel vocabulary (:mod:`.ops`) of its own: ``submit``,
``recv_event`` and ``call`` turn requests into XFRM netlink messages and XFRM's answers and
announcements into events directly, with no PF_KEY message on the way. ``pysetkey`` speaks
PF_KEY, so ``send``/``recv`` keep the PF_KEY conversation and translate it, the way Linux's own
``af_key`` does inside the kernel. Both paths build their structures with the same builders,
which take neutral values (``sa_info``, ``sa_algorithms``, ``selector``, ``policy_info``), and
read the kernel's with the same readers (``state_algorithms``, ``policy_parts``, the
lifetimes), so the engine cannot tell them apart (``tests/kernel/test_xfrm_ops.py``):

========================  ==========================  =========================================
PF_KEY                    vocabulary                  XFRM netlink
========================  ==========================  =========================================
GETSPI (SPIRANGE)         GetSpi                      ALLOCSPI (``xfrm_userspi_info``)
ADD / UPDATE              InstallSa                   NEWSA / UPDSA (``xfrm_usersa_info`` + algs)
DELETE / GET              DeleteSa                    DELSA / GETSA (``xfrm_usersa_id``)
FLUSH, DUMP               FlushSa, DumpSa             FLUSHSA, GETSA with ``NLM_F_DUMP``
X_SPDADD / X_SPDUPDATE    UpdatePolicy                NEWPOLICY / UPDPOLICY (+ templates)
X_SPDDELETE(2) / SPDGET   DeletePolicy                DELPOLICY / GETPOLICY (``xfrm_userpolicy_id``)
X_SPDFLUSH, X_SPDDUMP     DumpPolicy                  FLUSHPOLICY, GETPOLICY with ``NLM_F_DUMP``
ACQUIRE, EXPIRE           Acquire, SaEvent            the ACQUIRE and EXPIRE multicast groups
X_SPDEXPIRE               PolicyEvent (expire)        POLEXPIRE (hard)
ADD/DELETE/... by others  SaEvent, PolicyEvent        the SA and POLICY multicast groups
REGISTER                  Register                    none: answered from the one algorithm table
ACQUIRE with errno        AcquireFailed               none: the larval SA expires by itself
========================  ==========================  =========================================

The rules are af_key's (``net/key/af_key.c``), so one SPD file means the same on both backends:
an SA's selector is left open with only its family set; lifetimes of 0 are "no limit"
(``XFRM_INF``); a policy's ``use`` level is an optional template, ``unique`` keeps (or is given,
from 0x4000 up) its reqid and ``require``/``default`` have none; the SPD id is the kernel's policy
index, whose low three bits are the direction; per-socket policies dump with direction 4-6.
Algorithms are named by the one table's ``xfrm_name`` column.

Replies keep PF_KEY's shape on both paths: the request's seq (and type and pid), errno set on
failure, one reply per entry for a dump with ``seq`` counting down to 0 on the last (an event
with ``last``; ENOENT when empty). What the kernel multicasts about our own requests is dropped,
since the reply already told the caller; what other processes cause (``ip xfrm``, another
daemon) arrives as PF_KEY broadcasts or as events that are not ``ours``.

Struct layouts are those of ``linux/xfrm.h`` on 64-bit Linux (``xfrm_usersa_info`` is 224 bytes,
``xfrm_userpolicy_info`` 168, ``xfrm_user_tmpl`` 64, ...); ``tests/kernel/test_xfrm_codec.py``
checks them against the header with a C compiler, and the lab tests against the real kernel.
"""

from __future__ import annotations

import builtins
import errno as errno_mod
import ipaddress
import os
import select
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, Protocol, TypeVar

from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    IPCOMP_ALGORITHMS,
    AuthAlgorithm,
    Cipher,
    CompressionAlgorithm,
    Table,
)

from . import netlink as nl
from . import ops, pfkey_codec
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
PROTO_OF_SATYPE_NUMBER: dict[int, ops.Proto] = {int(v): k for k, v in pfkey_codec.SATYPE.items()}
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


E = TypeVar("E", bound=IntEnum)


def _sadb(enum_type: type[E], value: int) -> E | None:
    """The member of ``enum_type`` with ``value``, or None for a number it does not name."""
    member = enum_type._value2member_map_.get(value)
    return member if isinstance(member, enum_type) else None


def _unpack(st: struct.Struct, data: bytes, offset: int, what: str) -> tuple[Any, ...]:
    if len(data) - offset < st.size:
        raise XfrmDecodeError(f"{what}: {len(data) - offset} bytes, need {st.size}")
    return st.unpack_from(data, offset)


def _be16(raw: bytes) -> int:
    value: int = struct.unpack("!H", raw)[0]
    return value


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
        return cls(
            fam,
            unpack_addr(s, fam),
            unpack_addr(d, fam),
            pls,
            pld,
            _be16(sp),
            _be16(spm),
            _be16(dp),
            _be16(dpm),
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

    def pack(self) -> builtins.bytes:
        return LIFETIME_CUR.pack(self.bytes, self.packets, self.add_time, self.use_time)

    @classmethod
    def unpack(cls, data: builtins.bytes, offset: int = 0) -> LifetimeCur:
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


def cipher_from_xfrm(name: str, icv_bits: int | None = None) -> Cipher | None:
    """The row of an XFRM cipher name; for AEAD names the ICV length picks the row."""
    for c in CIPHERS:
        if c.xfrm_name == name and c.sadb_id is not None:
            if icv_bits is None or aead_icv_bits(c) == icv_bits:
                return c
    return None


# ---------------------------------------------------------------------------------------------
# requests in neutral terms: the builders both paths (PF_KEY messages, the vocabulary) call


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


def lifetime_cfg(hard: ops.Lifetime | None, soft: ops.Lifetime | None = None) -> LifetimeCfg:
    """``xfrm_lifetime_cfg`` of a hard and a soft limit (None: not given, so no limit)."""
    cfg = LifetimeCfg()
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


def _family(src: IPAddress, dst: IPAddress) -> int:
    if src.version != dst.version:
        raise _Refusal(errno_mod.EINVAL, "source and destination of different families")
    return family_of(src)


def _zero(fam: int) -> IPAddress:
    return ipaddress.IPv6Address(0) if fam == AF_INET6 else ipaddress.IPv4Address(0)


def xfrm_mode(mode: ops.Mode) -> int:
    """An SA's or a template's XFRM mode: PF_KEY's "any" is transport, as af_key makes it."""
    return XFRM_MODE_TUNNEL if mode is ops.Mode.TUNNEL else XFRM_MODE_TRANSPORT


XFRM_DIR = {
    ops.Direction.IN: XFRM_POLICY_IN,
    ops.Direction.OUT: XFRM_POLICY_OUT,
    ops.Direction.FWD: XFRM_POLICY_FWD,
}
DIRECTION_OF_XFRM = {v: k for k, v in XFRM_DIR.items()}


def sa_info(
    proto: int,
    src: IPAddress,
    dst: IPAddress,
    *,
    seq: int,
    reqid: int,
    mode: ops.Mode,
    spi: int = 0,
    replay: int = 0,
    lft: LifetimeCfg | None = None,
) -> UsersaInfo:
    """``xfrm_usersa_info`` of one SA (or ALLOCSPI's larval one): af_key leaves the selector
    open but for the family, and caps the replay window at the legacy bitmap."""
    fam = _family(src, dst)
    return UsersaInfo(
        sel=Selector(family=fam, saddr=_zero(fam), daddr=_zero(fam)),
        daddr=dst,
        spi=spi,
        proto=proto,
        saddr=src,
        lft=lft if lft is not None else LifetimeCfg(),
        seq=seq,
        reqid=reqid,
        family=fam,
        mode=xfrm_mode(mode),
        replay_window=min(replay, REPLAY_MAX),
    )


def spi_range(proto: int, given: tuple[int, int] | None) -> tuple[int, int]:
    """ALLOCSPI's range: the one asked for, else af_key's default (CPIs are 16 bits)."""
    if given is not None:
        return given
    return CPI_RANGE_DEFAULT if proto == IpProto.IPCOMP else SPI_RANGE_DEFAULT


AuthSpec = tuple[AuthAlgorithm, bytes, int]
"""An integrity algorithm's row, key and key length in bits."""
CipherSpec = tuple[Cipher, bytes, int]
"""A cipher's row, key and key length in bits."""


def sa_algorithms(
    proto: int,
    auth: AuthSpec | None,
    cipher: CipherSpec | None,
    compression: CompressionAlgorithm | None,
) -> list[tuple[int, bytes]]:
    """An SA's algorithm attributes, by the table's ``xfrm_name``: every integrity algorithm as
    ``auth-trunc`` with its ICV length, combined-mode ciphers as AEAD, IPComp alone (a cipher
    of an AH SA is ignored, as af_key ignores it)."""
    if proto == IpProto.IPCOMP:
        if compression is None or compression.xfrm_name is None:
            what = compression.name if compression is not None else "none"
            raise _Refusal(errno_mod.EINVAL, f"no XFRM name for IPComp algorithm {what}")
        return [(XFRMA_ALG_COMP, pack_algo(compression.xfrm_name, b"", 0))]
    out: list[tuple[int, bytes]] = []
    if auth is not None:
        arow, key, bits = auth
        if arow.xfrm_name is None:
            raise _Refusal(errno_mod.EINVAL, f"no XFRM name for {arow.name}")
        out.append(
            (XFRMA_ALG_AUTH_TRUNC, pack_algo_auth(arow.xfrm_name, key, bits, arow.icv_bits or 0))
        )
    if proto == IpProto.ESP and cipher is not None:
        crow, key, bits = cipher
        if crow.xfrm_name is None:
            raise _Refusal(errno_mod.EINVAL, f"no XFRM name for {crow.name}")
        icv = aead_icv_bits(crow)
        if icv is not None:
            out.append((XFRMA_ALG_AEAD, pack_algo_auth(crow.xfrm_name, key, bits, icv)))
        else:
            out.append((XFRMA_ALG_CRYPT, pack_algo(crow.xfrm_name, key, bits)))
    return out


def sa_id(src: IPAddress, dst: IPAddress, spi: int, proto: int) -> bytes:
    """How DELSA and GETSA name one SA: ``xfrm_usersa_id`` and ``XFRMA_SRCADDR``."""
    _family(src, dst)
    return pack_usersa_id(dst, spi, proto) + nl.attr(XFRMA_SRCADDR, pack_addr(src))


def selector(
    src: IPAddress, prefix_s: int, sport: int, dst: IPAddress, prefix_d: int, dport: int, proto: int
) -> Selector:
    """A policy's ``xfrm_selector`` (af_key's rules: protocol 255, "any", is 0; a port given is
    matched exactly)."""
    return Selector(
        family=_family(src, dst),
        saddr=src,
        daddr=dst,
        prefixlen_s=prefix_s,
        prefixlen_d=prefix_d,
        sport=sport,
        sport_mask=0xFFFF if sport else 0,
        dport=dport,
        dport_mask=0xFFFF if dport else 0,
        proto=0 if proto == 255 else proto,
    )


@dataclass(frozen=True)
class Template:
    """One element of a policy's bundle in neutral terms, on its way to or from
    ``xfrm_user_tmpl``; ``proto`` is the IP protocol number (the kernel keeps others than
    ESP, AH and IPComp too)."""

    proto: int
    mode: ops.Mode
    level: ops.Level
    reqid: int = 0
    src: IPAddress | None = None
    dst: IPAddress | None = None


def policy_info(
    sel: Selector,
    action: ops.PolicyAction,
    direction: int,
    lft: LifetimeCfg,
    templates: Iterable[Template],
    new_reqid: Callable[[], int],
    priority: int = 0,
) -> tuple[UserpolicyInfo, list[tuple[int, bytes]]]:
    """A policy as ``xfrm_userpolicy_info`` and its ``XFRMA_TMPL``, by af_key's rules: ``use``
    is an optional template, ``unique`` keeps its reqid (or gets one of ``new_reqid``),
    ``require`` and ``default`` carry none; entrust and bypass are EINVAL."""
    if action in (ops.PolicyAction.ENTRUST, ops.PolicyAction.BYPASS):
        raise _Refusal(errno_mod.EINVAL, f"policy type {action.value} (entrust/bypass)")
    info = UserpolicyInfo(
        sel=sel,
        lft=lft,
        priority=priority,
        dir=direction,
        action=XFRM_POLICY_BLOCK if action is ops.PolicyAction.DISCARD else XFRM_POLICY_ALLOW,
    )
    tmpls = []
    if action is ops.PolicyAction.IPSEC:
        for t in templates:
            u = UserTmpl(proto=t.proto, family=sel.family, mode=xfrm_mode(t.mode))
            if t.src is not None and t.dst is not None:
                u.family, u.saddr, u.daddr = family_of(t.src), t.src, t.dst
            if t.level is ops.Level.USE:
                u.optional = 1
            elif t.level is ops.Level.UNIQUE:
                u.reqid = t.reqid if 0 < t.reqid <= MANUAL_REQID_MAX else new_reqid()
            tmpls.append(u.pack())
    extra = [(XFRMA_TMPL, b"".join(tmpls))] if tmpls else []
    return info, extra


# ---------------------------------------------------------------------------------------------
# what the kernel says, in neutral terms: the readers both paths call


def hard_lifetime(lft: LifetimeCfg) -> ops.Lifetime:
    return ops.Lifetime(
        _unlimit(lft.hard_packet_limit),
        _unlimit(lft.hard_byte_limit),
        lft.hard_add_expires_seconds,
        lft.hard_use_expires_seconds,
    )


def soft_lifetime(lft: LifetimeCfg) -> ops.Lifetime:
    return ops.Lifetime(
        _unlimit(lft.soft_packet_limit),
        _unlimit(lft.soft_byte_limit),
        lft.soft_add_expires_seconds,
        lft.soft_use_expires_seconds,
    )


def current_lifetime(cur: LifetimeCur) -> ops.Lifetime:
    """What an SA has used; PF_KEY's allocations field is 32 bits."""
    return ops.Lifetime(cur.packets & 0xFFFFFFFF, cur.bytes, cur.add_time, cur.use_time)


@dataclass(frozen=True)
class StateAlgorithms:
    """An SA's algorithm attributes read back: rows of the table (None: absent or a name the
    table does not have) and the keys, (key, bits), of the attributes that are there."""

    auth: AuthAlgorithm | None = None
    auth_key: tuple[bytes, int] | None = None
    cipher: Cipher | None = None
    enc_key: tuple[bytes, int] | None = None
    compression: CompressionAlgorithm | None = None

    @property
    def keyed(self) -> bool:
        """XFRM does not say whether an SA is larval; one without any algorithm is what
        ALLOCSPI (or an ACQUIRE) made and nobody has keyed yet."""
        return self.auth_key is not None or self.enc_key is not None or self.compression is not None


def state_algorithms(a: nl.Attributes) -> StateAlgorithms:
    auth = cipher = compression = None
    auth_key = enc_key = None
    trunc = a.get(XFRMA_ALG_AUTH_TRUNC)
    raw = trunc if trunc is not None else a.get(XFRMA_ALG_AUTH) or None
    if raw is not None:
        name, bits, _, key = unpack_algo(raw, trunc is not None)
        auth, auth_key = AUTH_ALGORITHMS.get("xfrm_name", name), (key, bits)
    if (raw := a.get(XFRMA_ALG_AEAD)) is not None:
        name, bits, icv, key = unpack_algo(raw, True)
        cipher, enc_key = cipher_from_xfrm(name, icv), (key, bits)
    elif (raw := a.get(XFRMA_ALG_CRYPT)) is not None:
        name, bits, _, key = unpack_algo(raw, False)
        cipher, enc_key = cipher_from_xfrm(name), (key, bits)
    elif (raw := a.get(XFRMA_ALG_COMP)) is not None:
        compression = IPCOMP_ALGORITHMS.get("xfrm_name", unpack_algo(raw, False)[0])
    return StateAlgorithms(auth, auth_key, cipher, enc_key, compression)


def sa_mode(xmode: int) -> ops.Mode:
    """An XFRM state's mode; BEET and the others have no neutral name."""
    return {XFRM_MODE_TRANSPORT: ops.Mode.TRANSPORT, XFRM_MODE_TUNNEL: ops.Mode.TUNNEL}.get(
        xmode, ops.Mode.ANY
    )


@dataclass(frozen=True)
class PolicyParts:
    """What one XFRM policy says beyond its ``xfrm_userpolicy_info``, in neutral terms.

    ``direction`` is XFRM's: 0-2 for the SPD, 4-6 for per-socket policies (the index's low
    three bits when there is an index)."""

    action: ops.PolicyAction
    direction: int
    templates: tuple[Template, ...]


def policy_parts(info: UserpolicyInfo, a: nl.Attributes) -> PolicyParts | None:
    """Linux keeps only allow or block: allow with templates is ipsec, without them none.
    None for a sub-policy, which neither PF_KEY nor the vocabulary ever shows."""
    ptype = a.get(XFRMA_POLICY_TYPE)
    if ptype is not None and ptype[:1] != bytes([XFRM_POLICY_TYPE_MAIN]):
        return None
    raw = a.get(XFRMA_TMPL)
    tmpls = UserTmpl.unpack_all(raw) if raw else []
    if info.action == XFRM_POLICY_BLOCK:
        action = ops.PolicyAction.DISCARD
    else:
        action = ops.PolicyAction.IPSEC if tmpls else ops.PolicyAction.NONE
    out = []
    for t in tmpls:
        if t.optional:
            level = ops.Level.USE
        elif t.reqid:
            level = ops.Level.UNIQUE
        else:
            level = ops.Level.REQUIRE
        tunnel = t.mode == XFRM_MODE_TUNNEL
        out.append(
            Template(
                t.proto,
                ops.Mode.TUNNEL if tunnel else ops.Mode.TRANSPORT,
                level,
                t.reqid,
                t.saddr if tunnel else None,
                t.daddr if tunnel else None,
            )
        )
    direction = info.index & 7 if info.index else info.dir
    return PolicyParts(action, direction, tuple(out))


def _parse_acquire(p: bytes) -> tuple[int, int, IPAddress, IPAddress, UserpolicyInfo]:
    """(seq, proto, saddr, daddr, policy) of an ACQUIRE: the addresses of the SA to negotiate
    are the template's tunnel endpoints, or the packet's."""
    if len(p) < USER_ACQUIRE.size:
        raise XfrmDecodeError(f"xfrm_user_acquire: {len(p)} bytes")
    d, _spi, proto, s, _sel, pol, _aa, _ea, _ca, seq = USER_ACQUIRE.unpack_from(p)
    policy = UserpolicyInfo.unpack(pol)
    fam = policy.sel.family if policy.sel.family else AF_INET
    tmpls = UserTmpl.unpack_all(nl.parse_attrs(p, USER_ACQUIRE.size).get(XFRMA_TMPL) or b"")
    for t in tmpls:
        if t.proto == proto:
            fam = t.family
            break
    return seq, proto, unpack_addr(s, fam), unpack_addr(d, fam), policy


def _parse_expire(p: bytes) -> tuple[UsersaInfo, bool]:
    if len(p) < USER_EXPIRE.size:
        raise XfrmDecodeError(f"xfrm_user_expire: {len(p)} bytes")
    st, hard = USER_EXPIRE.unpack_from(p)
    return UsersaInfo.unpack(st), bool(hard)


def _parse_polexpire(p: bytes) -> tuple[UserpolicyInfo, bool, nl.Attributes]:
    if len(p) < USER_POLEXPIRE.size:
        raise XfrmDecodeError(f"xfrm_user_polexpire: {len(p)} bytes")
    pol, hard = USER_POLEXPIRE.unpack_from(p)
    return UserpolicyInfo.unpack(pol), bool(hard), nl.parse_attrs(p, USER_POLEXPIRE.size)


def _parse_delsa(p: bytes) -> tuple[UsersaInfo, nl.Attributes]:
    """DELSA names the SA by ``xfrm_usersa_id``; the whole state follows in ``XFRMA_SA``."""
    a = nl.parse_attrs(p, USERSA_ID.size)
    raw = a.get(XFRMA_SA)
    if raw is None:
        daddr, spi, fam, proto = unpack_usersa_id(p)
        return UsersaInfo(daddr=daddr, spi=spi, proto=proto, family=fam, saddr=_zero(fam)), a
    return UsersaInfo.unpack(raw), a


def _flushed_proto(p: bytes) -> int:
    return p[0] if p else IPSEC_PROTO_ANY


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


def _endpoints(msg: Message) -> tuple[Address, Address]:
    src, dst = msg.src, msg.dst
    if src is None or dst is None:
        raise _Refusal(errno_mod.EINVAL, "source and destination addresses are required")
    _family(src.addr, dst.addr)
    return src, dst


def _proto(msg: Message) -> int:
    proto = PROTO_OF_SATYPE.get(msg.satype)  # type: ignore[call-overload]
    if proto is None:
        raise _Refusal(errno_mod.EINVAL, f"SA type {msg.satype} is not AH, ESP or IPComp")
    return int(proto)


def _pfkey_mode(pfkey_mode: int) -> ops.Mode:
    mode = pfkey_codec.MODE_OF.get(_sadb(Mode, pfkey_mode))
    if mode is None:
        raise _Refusal(errno_mod.EINVAL, f"IPsec mode {pfkey_mode}")
    return mode


def _key(key: Key | None) -> tuple[bytes, int]:
    if key is None:
        return b"", 0
    return key.key, key.bits if key.bits is not None else 0


def sa_request(msg: Message) -> tuple[UsersaInfo, list[tuple[int, bytes]]]:
    """ADD/UPDATE as ``xfrm_usersa_info`` and its algorithm (and NAT-T) attributes."""
    proto = _proto(msg)
    src, dst = _endpoints(msg)
    sa = msg.sa
    if sa is None:
        raise _Refusal(errno_mod.EINVAL, "an SA extension is required")
    sa2 = msg.sa2
    info = sa_info(
        proto,
        src.addr,
        dst.addr,
        spi=sa.spi,
        seq=msg.seq,
        reqid=sa2.reqid if sa2 else 0,
        mode=_pfkey_mode(sa2.mode if sa2 else Mode.ANY),
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
            raise _Refusal(errno_mod.EINVAL, f"no XFRM name for SADB auth algorithm {sa.auth}")
        auth = (arow, *_key(msg.key(ExtType.KEY_AUTH)))
    if proto == IpProto.ESP and sa.encrypt:
        crow = CIPHERS.get("sadb_id", sa.encrypt)
        if crow is None:
            raise _Refusal(errno_mod.EINVAL, f"no XFRM name for SADB encryption {sa.encrypt}")
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
    src, dst = _endpoints(msg)
    return selector(
        src.addr,
        src.prefixlen if src.prefixlen is not None else src.addr.max_prefixlen,
        src.port,
        dst.addr,
        dst.prefixlen if dst.prefixlen is not None else dst.addr.max_prefixlen,
        dst.port,
        src.proto,
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
    action = pfkey_codec.ACTION_OF.get(_sadb(PolicyType, pol.policy_type))
    if action is None:
        raise _Refusal(errno_mod.EINVAL, f"policy type {pol.policy_type}")
    sel = selector_of(msg)
    templates = [
        Template(
            req.proto,
            _pfkey_mode(req.mode),
            pfkey_codec.LEVEL_OF.get(_sadb(Level, req.level), ops.Level.DEFAULT),
            req.reqid,
            req.src,
            req.dst,
        )
        for req in pol.requests
    ]
    return policy_info(
        sel, action, _xfrm_dir(pol), _msg_lifetime_cfg(msg), templates, new_reqid, pol.priority
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
    satype = SATYPE_OF_PROTO.get(info.proto)  # type: ignore[call-overload]
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
        info, hard = _parse_expire(p)
        return state_message(
            MsgType.EXPIRE,
            info,
            nl.Attributes(),
            keys=False,
            state=SaState.DEAD if hard else SaState.DYING,
            lifetimes="hc" if hard else "sc",
        )
    if m.type == XFRM_MSG_POLEXPIRE:
        pol, hard, a = _parse_polexpire(p)
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
        info, a = _parse_delsa(p)
        return state_message(MsgType.DELETE, info, a, keys=False, seq=m.seq, pid=m.pid)
    if m.type == XFRM_MSG_FLUSHSA:
        sat = SATYPE_OF_PROTO.get(_flushed_proto(p), SaType.UNSPEC)  # type: ignore[call-overload]
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
    seq, proto, saddr, daddr, policy = _parse_acquire(p)
    sat = SATYPE_OF_PROTO.get(proto)  # type: ignore[call-overload]
    if sat is None:
        return None
    msg = Message(MsgType.ACQUIRE, sat, 0, seq, 0)
    msg.add(_address(ExtType.ADDRESS_SRC, saddr))
    msg.add(_address(ExtType.ADDRESS_DST, daddr))
    msg.add(Policy(PolicyType.IPSEC, policy.dir + 1, policy.index, policy.priority, []))
    msg.add(Proposal(ACQUIRE_REPLAY, []))  # as pfkey_send_acquire: no combinations
    return msg


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


def _policy_event(
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


def _no_policy(mtype: MsgType) -> ops.Unsupported:
    """What the PF_KEY path's bare reply (no X_POLICY) to an SPD request reads as."""
    return ops.Unsupported(f"SADB_{mtype.name} with {_NO_POLICY}", True)


def _sa_event(
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
        seq, ip_proto, saddr, daddr, policy = _parse_acquire(p)
        proto = ops.Proto.of_ip_number(ip_proto)
        return None if proto is None else ops.Acquire(seq, policy.index, saddr, daddr, proto)
    if m.type == XFRM_MSG_EXPIRE:
        info, hard = _parse_expire(p)
        if hard:
            return _sa_event(
                ops.SaChange.HARD_EXPIRE, info, nl.Attributes(), 0, False, ops.SaState.DEAD
            )
        return _sa_event(
            ops.SaChange.SOFT_EXPIRE, info, nl.Attributes(), 0, False, ops.SaState.DYING
        )
    if m.type == XFRM_MSG_POLEXPIRE:
        pol, hard, a = _parse_polexpire(p)
        if not hard:
            return None  # PF_KEY has no soft policy expiry, so the vocabulary has none either
        return _policy_event(ops.PolicyChange.EXPIRE, MsgType.X_SPDEXPIRE, pol, a, 0, False)
    if m.type in (XFRM_MSG_NEWSA, XFRM_MSG_UPDSA):
        change = ops.SaChange.ADD if m.type == XFRM_MSG_NEWSA else ops.SaChange.UPDATE
        a = nl.parse_attrs(p, USERSA_INFO.size)
        return _sa_event(change, UsersaInfo.unpack(p), a, m.seq, ours)
    if m.type == XFRM_MSG_DELSA:
        info, a = _parse_delsa(p)
        return _sa_event(ops.SaChange.DELETE, info, a, m.seq, ours)
    if m.type == XFRM_MSG_FLUSHSA:
        flushed = ops.Proto.of_ip_number(_flushed_proto(p))
        return ops.SaEvent(ops.SaChange.FLUSH, m.seq, ours, flushed, None, 0)
    if m.type in (XFRM_MSG_NEWPOLICY, XFRM_MSG_UPDPOLICY):
        new = m.type == XFRM_MSG_NEWPOLICY
        return _policy_event(
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
        return _policy_event(ops.PolicyChange.DELETE, MsgType.X_SPDDELETE, pol, a, m.seq, ours)
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


def _refused(req: ops.Request, err: int) -> ops.Event:
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
    """A ``KernelSocket`` backed by Linux XFRM netlink, with two front doors.

    The vocabulary (``submit``, ``recv_event``, ``call``) goes to XFRM netlink and back
    directly; the PF_KEY conversation (``send``, ``recv``, ``request``, ``dump``: pysetkey's)
    is translated as af_key would. Both build their netlink messages with the same builders
    and read the kernel's with the same readers, so the engine cannot tell the paths apart
    (``tests/kernel/test_xfrm_ops.py`` holds them to it, request by request and event by event).

    Two netlink sockets: one for requests, which only ever carries answers to them, and one
    subscribed to the multicast groups (once someone listens: REGISTER, X_PROMISC, ``fileno``
    or ``recv``), so that a 10 000-entry ``pysetkey -f`` never has to read events it ignores.
    Requests are answered synchronously inside ``send``/``submit``; the answers wait in a
    queue (PF_KEY messages and events in one each), and ``fileno`` is an epoll descriptor that
    is readable when a queue holds something or an event arrived, so an event loop sees both.
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
        self._registered: set[ops.Proto] = set()
        self._promisc = False
        self._queue: deque[Message] = deque()
        self._events: deque[ops.Event] = deque()
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

    def _signal(self) -> None:
        if not self._signalled:
            os.write(self._pipe_w, b"!")
            self._signalled = True

    def _settle(self) -> None:
        """Drain the pipe once both queues are empty, so epoll stops saying readable."""
        if not self._queue and not self._events and self._signalled:
            try:
                os.read(self._pipe_r, 64)
            except BlockingIOError:
                pass
            self._signalled = False

    def _put(self, msg: Message) -> None:
        self._queue.append(msg)
        self._signal()

    def _put_event(self, event: ops.Event) -> None:
        self._events.append(event)
        self._signal()

    def _take(self) -> Message:
        msg = self._queue.popleft()
        self._settle()
        return msg

    def _take_event(self) -> ops.Event:
        event = self._events.popleft()
        self._settle()
        return event

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

    # -- the netlink side of each request, shared by both front doors -------------------------

    def _sa_failed(
        self, e: OSError, proto: int, family: int, attrs: list[tuple[int, bytes]]
    ) -> None:
        if e.errno in (errno_mod.EPROTONOSUPPORT, errno_mod.ENOSYS):
            self._hint(missing_module_hint(proto, family, e.errno, attrs))

    def _allocspi(self, info: UsersaInfo, lo: int, hi: int) -> tuple[UsersaInfo, nl.Attributes]:
        """ALLOCSPI, with the request's seq (so the larval SA of an ACQUIRE gets the SPI)."""
        try:
            answer = self._transact(XFRM_MSG_ALLOCSPI, USERSPI_INFO.pack(info.pack(), lo, hi))
        except OSError as e:
            self._sa_failed(e, info.proto, info.family, [])
            raise
        if not answer:
            raise _Refusal(errno_mod.EIO, "ALLOCSPI answered nothing")
        p = answer[0].payload
        return UsersaInfo.unpack(p), nl.parse_attrs(p, USERSA_INFO.size)

    def _newsa(self, update: bool, info: UsersaInfo, extra: list[tuple[int, bytes]]) -> None:
        mtype = XFRM_MSG_UPDSA if update else XFRM_MSG_NEWSA
        try:
            self._transact(mtype, info.pack() + nl.attrs(extra), nl.NLM_F_ACK)
        except OSError as e:
            self._sa_failed(e, info.proto, info.family, extra)
            raise

    def _flushsa(self, proto: int) -> None:
        try:
            self._transact(XFRM_MSG_FLUSHSA, USERSA_FLUSH.pack(proto), nl.NLM_F_ACK)
        except OSError as e:
            if e.errno != errno_mod.ESRCH:  # older kernels: "nothing to flush"
                raise

    def _states(self, proto: int | None) -> list[tuple[UsersaInfo, nl.Attributes]]:
        """Every SA (of ``proto``), by a GETSA dump."""
        payload = b"" if proto is None else nl.attr(XFRMA_PROTO, bytes([proto]))
        out = []
        for m in self._transact(XFRM_MSG_GETSA, payload, nl.NLM_F_DUMP):
            if m.type == XFRM_MSG_NEWSA:
                out.append(
                    (UsersaInfo.unpack(m.payload), nl.parse_attrs(m.payload, USERSA_INFO.size))
                )
        return out

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

    def _newpolicy(
        self, update: bool, info: UserpolicyInfo, extra: list[tuple[int, bytes]]
    ) -> tuple[UserpolicyInfo, nl.Attributes] | None:
        """NEWPOLICY/UPDPOLICY, then the policy as the kernel keeps it (None if it cannot be
        read back): the acknowledgement carries no index, and the index is the SPD id."""
        mtype = XFRM_MSG_UPDPOLICY if update else XFRM_MSG_NEWPOLICY
        self._transact(mtype, info.pack() + nl.attrs(extra), nl.NLM_F_ACK)
        try:
            return self._policy_by(info.sel, 0, info.dir)
        except (OSError, _Refusal):
            return None

    def _delpolicy(
        self, sel: Selector, index: int, direction: int
    ) -> tuple[UserpolicyInfo, nl.Attributes]:
        """The policy (by selector and direction, or by index), then DELPOLICY."""
        got = self._policy_by(sel, index, direction)
        self._transact(XFRM_MSG_DELPOLICY, pack_userpolicy_id(sel, index, direction), nl.NLM_F_ACK)
        return got

    def _policies(self) -> list[tuple[UserpolicyInfo, nl.Attributes]]:
        """Every policy PF_KEY and the vocabulary can show (no sub-policies), by a dump."""
        out = []
        for m in self._transact(XFRM_MSG_GETPOLICY, b"", nl.NLM_F_DUMP):
            if m.type != XFRM_MSG_NEWPOLICY:
                continue
            info = UserpolicyInfo.unpack(m.payload)
            a = nl.parse_attrs(m.payload, USERPOLICY_INFO.size)
            if policy_parts(info, a) is not None:
                out.append((info, a))
        return out

    # -- send: one PF_KEY request --------------------------------------------------------------

    def send(self, msg: Message) -> None:
        handlers: dict[MsgType, Callable[[Message], None]] = {
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
        }
        known = _sadb(MsgType, msg.type)
        handler = None if known is None else handlers.get(known)
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

    def _getspi(self, msg: Message) -> None:
        proto = _proto(msg)
        src, dst = _endpoints(msg)
        rng = msg.get(ExtType.SPIRANGE)
        sa2 = msg.sa2
        info = sa_info(
            proto,
            src.addr,
            dst.addr,
            seq=msg.seq,
            reqid=sa2.reqid if sa2 else 0,
            mode=_pfkey_mode(sa2.mode if sa2 else Mode.ANY),
        )
        lo, hi = spi_range(proto, (rng.min, rng.max) if isinstance(rng, SpiRange) else None)
        state, a = self._allocspi(info, lo, hi)
        reply = state_message(
            MsgType.GETSPI, state, a, keys=False, seq=msg.seq, pid=msg.pid, state=SaState.LARVAL
        )
        if reply is None:
            raise _Refusal(errno_mod.EIO, "ALLOCSPI answered with no IPsec SA")
        self._put(reply)

    def _add(self, msg: Message) -> None:
        info, extra = sa_request(msg)
        self._newsa(msg.type == MsgType.UPDATE, info, extra)
        self._put(_without_keys(msg))

    def _sa_named(self, msg: Message) -> bytes:
        """DELETE's and GET's SA: by destination, SPI and protocol (and source, which the
        kernel does not compare)."""
        proto = _proto(msg)
        src, dst = _endpoints(msg)
        if msg.sa is None:
            raise _Refusal(errno_mod.EINVAL, "an SA extension is required")
        return sa_id(src.addr, dst.addr, msg.sa.spi, proto)

    def _delete(self, msg: Message) -> None:
        self._transact(XFRM_MSG_DELSA, self._sa_named(msg), nl.NLM_F_ACK)
        self._put(_without_keys(msg))

    def _get(self, msg: Message) -> None:
        answer = self._transact(XFRM_MSG_GETSA, self._sa_named(msg))
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
        self._flushsa(IPSEC_PROTO_ANY if msg.satype == SaType.UNSPEC else _proto(msg))
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
        proto = None if msg.satype == SaType.UNSPEC else _proto(msg)
        out = []
        for info, a in self._states(proto):
            entry = state_message(MsgType.DUMP, info, a, keys=True)
            if entry is not None and (msg.satype == SaType.UNSPEC or entry.satype == msg.satype):
                out.append(entry)
        self._emit_dump(msg, out)

    def _register(self, msg: Message) -> None:
        if msg.satype not in (SaType.UNSPEC, SaType.AH, SaType.ESP, SaType.IPCOMP):
            raise _Refusal(errno_mod.EINVAL, f"cannot register for SA type {msg.satype}")
        proto = PROTO_OF_SATYPE_NUMBER.get(msg.satype)
        if proto is not None:
            self._registered.add(proto)
            self._join()
        self._put(register_reply(msg))

    def _promisc_on(self, msg: Message) -> None:
        self._promisc = bool(msg.satype)
        self._join()
        self._put(msg.reply())

    def _pfkey_policy(self, msg: Message, got: tuple[UserpolicyInfo, nl.Attributes]) -> None:
        reply = policy_message(msg.type, *got, seq=msg.seq, pid=msg.pid)
        self._put(reply if reply is not None else msg.reply())

    def _spdadd(self, msg: Message) -> None:
        info, extra = policy_request(msg, self._new_reqid)
        got = self._newpolicy(msg.type == MsgType.X_SPDUPDATE, info, extra)
        if got is None:
            self._put(msg.reply())
        else:
            self._pfkey_policy(msg, got)

    def _spddelete(self, msg: Message) -> None:
        pol = msg.policy
        if pol is None:
            raise _Refusal(errno_mod.EINVAL, "an X_POLICY extension is required")
        self._pfkey_policy(msg, self._delpolicy(selector_of(msg), 0, _xfrm_dir(pol)))

    def _spdget(self, msg: Message) -> None:
        """X_SPDGET, and X_SPDDELETE2 (the same lookup by id, then the delete)."""
        pol = msg.policy
        if pol is None or not pol.id:
            raise _Refusal(errno_mod.EINVAL, "an X_POLICY extension with an id is required")
        direction = pol.id & 7
        if direction > XFRM_POLICY_FWD:
            raise _Refusal(errno_mod.EINVAL, "per-socket policies are not in the SPD")
        if msg.type == MsgType.X_SPDDELETE2:
            got = self._delpolicy(Selector(), pol.id, direction)
        else:
            got = self._policy_by(Selector(), pol.id, direction)
        self._pfkey_policy(msg, got)

    def _spdflush(self, msg: Message) -> None:
        self._transact(XFRM_MSG_FLUSHPOLICY, b"", nl.NLM_F_ACK)
        self._put(msg.reply())

    def _spddump(self, msg: Message) -> None:
        out = []
        for info, a in self._policies():
            entry = policy_message(MsgType.X_SPDDUMP, info, a)
            if entry is not None:
                out.append(entry)
        self._emit_dump(msg, out)

    # -- the vocabulary: one request straight to XFRM ------------------------------------------

    def submit(self, request: ops.Request) -> None:
        """Carry out ``request`` on XFRM netlink; its answers come from ``recv_event``."""
        for _, event in self._answer(request):
            self._put_event(event)

    def call(self, request: ops.Request, timeout: float = 1.0) -> ops.Event:
        """``submit`` and return the answer to ``request``: as ``KernelSocket.call`` matches the
        PF_KEY reply by its seq, the answer is the first whose seq is the request's; the rest
        (a dump's other entries) wait for ``recv_event``. XFRM answers at once, so a request
        without answer (AcquireFailed) is a ``KernelError`` at once, not after ``timeout``."""
        if not request.seq:
            request = replace(request, seq=self.next_seq())
        answers = self._answer(request)
        found = next((i for i, (seq, _) in enumerate(answers) if seq == request.seq), None)
        for i, (_, event) in enumerate(answers):
            if i != found:
                self._put_event(event)
        if found is None:
            raise KernelError(
                f"the kernel did not answer {type(request).__name__} within {timeout:g} s"
            )
        return answers[found][1]

    def _answer(self, req: ops.Request) -> list[tuple[int, ops.Event]]:
        """The events answering ``req``, each with the seq its PF_KEY reply would carry (a
        dump's entries count down to 0), errno set when the kernel refused."""
        try:
            return self._carry_out(req)
        except _Refusal as r:
            err = r.errno
        except OSError as e:
            err = e.errno or errno_mod.EIO
        return [(req.seq, _refused(req, err))]

    def _carry_out(self, req: ops.Request) -> list[tuple[int, ops.Event]]:
        seq = req.seq
        if isinstance(req, ops.GetSpi):
            proto = req.proto.ip_number
            info = sa_info(proto, req.src, req.dst, seq=seq, reqid=req.reqid, mode=req.mode)
            state, a = self._allocspi(info, *spi_range(proto, req.spi_range))
            got = _sa_event(ops.SaChange.GETSPI, state, a, seq, True, ops.SaState.LARVAL)
            if got is None:
                raise _Refusal(errno_mod.EIO, "ALLOCSPI answered with no IPsec SA")
            return [(seq, got)]
        if isinstance(req, ops.InstallSa):
            info, extra = install_request(req)
            self._newsa(req.update, info, extra)
            change = ops.SaChange.UPDATE if req.update else ops.SaChange.ADD
            # the reply echoes the request, as the PF_KEY path's does (its SA extension's
            # state field is 0: larval)
            sa = ops.KernelSa(req.sa, ops.SaState.LARVAL, req.mode, req.reqid)
            return [(seq, ops.SaEvent(change, seq, True, req.sa.proto, sa))]
        if isinstance(req, ops.DeleteSa):
            s = req.sa
            self._transact(
                XFRM_MSG_DELSA, sa_id(s.src, s.dst, s.spi, s.proto.ip_number), nl.NLM_F_ACK
            )
            sa = ops.KernelSa(s, ops.SaState.LARVAL)
            return [(seq, ops.SaEvent(ops.SaChange.DELETE, seq, True, s.proto, sa))]
        if isinstance(req, ops.FlushSa):
            self._flushsa(IPSEC_PROTO_ANY if req.proto is None else req.proto.ip_number)
            return [(seq, ops.SaEvent(ops.SaChange.FLUSH, seq, True, req.proto))]
        if isinstance(req, ops.DumpSa):
            sas = [k for st, a in self._states(None) if (k := kernel_sa(st, a)) is not None]
            if not sas:
                return [
                    (seq, ops.SaEvent(ops.SaChange.DUMP, seq, True, None, None, errno_mod.ENOENT))
                ]
            n = len(sas)
            return [
                (
                    n - 1 - i,
                    ops.SaEvent(ops.SaChange.DUMP, n - 1 - i, True, sa.id.proto, sa, 0, i == n - 1),
                )
                for i, sa in enumerate(sas)
            ]
        if isinstance(req, ops.Register):
            self._registered.add(req.proto)
            self._join()
            return [(seq, ops.SaEvent(ops.SaChange.REGISTER, seq, True, req.proto))]
        if isinstance(req, ops.AcquireFailed):
            # "negotiation failed": XFRM has no message for it; the larval SA times out
            return []
        return self._carry_out_policy(req)

    def _carry_out_policy(
        self, req: ops.UpdatePolicy | ops.DeletePolicy | ops.DumpPolicy
    ) -> list[tuple[int, ops.Event]]:
        seq = req.seq
        if isinstance(req, ops.UpdatePolicy):
            pinfo, pextra = update_policy_request(req, self._new_reqid)
            got = self._newpolicy(True, pinfo, pextra)
            change = ops.PolicyChange.UPDATE
            event = (
                None if got is None else _policy_event(change, MsgType.X_SPDUPDATE, *got, seq, True)
            )
            return [(seq, event if event is not None else _no_policy(MsgType.X_SPDUPDATE))]
        if isinstance(req, ops.DeletePolicy):
            got = self._delpolicy(ops_selector(req.src, req.dst), 0, XFRM_DIR[req.direction])
            change = ops.PolicyChange.DELETE
            event = _policy_event(change, MsgType.X_SPDDELETE, *got, seq, True)
            return [(seq, event if event is not None else _no_policy(MsgType.X_SPDDELETE))]
        if not isinstance(req, ops.DumpPolicy):
            raise TypeError(f"not a kernel request: {req!r}")
        entries = self._policies()
        if not entries:
            return [
                (seq, ops.PolicyEvent(ops.PolicyChange.DUMP, seq, True, None, errno_mod.ENOENT))
            ]
        n, out = len(entries), []
        for i, (entry, a) in enumerate(entries):
            left = n - 1 - i
            event = _policy_event(
                ops.PolicyChange.DUMP, MsgType.X_SPDDUMP, entry, a, left, True, left == 0
            )
            assert event is not None  # _policies keeps only what policy_parts reads
            out.append((left, event))
        return out

    # -- recv: replies, then events ------------------------------------------------------------

    def _pull(self, timeout: float | None, deliver: Callable[[nl.NlMsg], None]) -> None:
        """Read one batch of XFRM notifications and ``deliver`` each (translate and queue)."""
        self._join()
        try:
            batch = self.events.recv_batch(timeout)
        except OSError as e:
            if e.errno == errno_mod.ENOBUFS:
                # PF_KEY loses messages the same way when a reader falls behind; say so once.
                if not self._lost_events:
                    self._lost_events = True
                    self.notice("XFRM events were lost: the netlink socket's buffer overflowed")
                return
            raise KernelError(f"cannot read XFRM events: {e.strerror}") from e
        except nl.NetlinkDecodeError as e:
            # as with PF_KEY: a message we cannot read costs that message, not the socket
            self.notice(f"an XFRM event could not be read, skipped: {e}")
            return
        for m in batch or ():
            try:
                deliver(m)
            except (XfrmDecodeError, nl.NetlinkDecodeError) as e:
                self.notice(f"an XFRM event could not be read: {e}")

    def _recv(self, timeout: float | None) -> Message | None:
        if self._queue:
            return self._take()
        self._pull(timeout, self._deliver_message)
        return self._take() if self._queue else None

    def recv_event(self, timeout: float | None = None) -> ops.Event | None:
        """The next answer or notification as an event, read from XFRM netlink directly.

        PF_KEY messages still waiting (a ``send`` or ``request`` made on this socket) come
        first, through the PF_KEY codec, as ``KernelSocket.recv_event`` reads them."""
        if self._events:
            return self._take_event()
        if self._backlog or self._queue:
            return super().recv_event(0)
        self._pull(timeout, self._deliver_event)
        return self._take_event() if self._events else None

    def _deliver_message(self, m: nl.NlMsg) -> None:
        msg = self.translate_event(m)
        if msg is not None:
            self._put(msg)

    def _deliver_event(self, m: nl.NlMsg) -> None:
        event = self.translate_vocabulary_event(m)
        if event is not None:
            self._put_event(event)

    def _delivered(self, m: nl.NlMsg) -> bool:
        """Not what our own requests caused (the reply said it)."""
        return not (m.pid and m.pid == self.nl.portid)

    def _listening(self, proto: ops.Proto | None) -> bool:
        """ACQUIRE and EXPIRE reach a socket registered for the SA type (or promiscuous)."""
        return self._promisc or proto in self._registered

    def translate_event(self, m: nl.NlMsg) -> Message | None:
        """One multicast XFRM message as the PF_KEY message this socket would have got: none
        for what our own requests caused (the reply said it), ACQUIRE and EXPIRE only when
        registered for the SA type (or promiscuous), as af_key delivers them."""
        if not self._delivered(m):
            return None
        ev = event_message(m)
        if ev is None:
            return None
        if ev.type in (MsgType.ACQUIRE, MsgType.EXPIRE) and not self._listening(
            PROTO_OF_SATYPE_NUMBER.get(ev.satype)
        ):
            return None
        return ev

    def translate_vocabulary_event(self, m: nl.NlMsg) -> ops.Event | None:
        """``translate_event`` for the vocabulary: the same deliveries, as events."""
        if not self._delivered(m):
            return None
        ev = vocabulary_event(m, self.pid)
        expire = (ops.SaChange.SOFT_EXPIRE, ops.SaChange.HARD_EXPIRE)
        if isinstance(ev, ops.Acquire) or (isinstance(ev, ops.SaEvent) and ev.change in expire):
            if not self._listening(ev.proto):
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
