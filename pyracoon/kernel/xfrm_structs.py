"""``linux/xfrm.h`` for the XFRM backend: its numbers and structures, and the neutral builders
and readers both of ``XfrmSocket``'s paths call.

The vocabulary path (:mod:`.xfrm`) and pysetkey's PF_KEY path (:mod:`.xfrm_pfkey`) build their
requests with the same builders (``sa_info``, ``sa_algorithms``, ``selector``, ``policy_info``)
and read the kernel's answers with the same readers (``state_algorithms``, ``policy_parts``, the
lifetimes), so both send the same bytes and mean the same events. Here too: the algorithm
table's XFRM column, and the one line naming the module a refused SA wanted.

Struct layouts are those of ``linux/xfrm.h`` on 64-bit Linux (``xfrm_usersa_info`` is 224 bytes,
``xfrm_userpolicy_info`` 168, ``xfrm_user_acquire`` 280); ``tests/kernel/test_xfrm_codec.py``
checks them against the header with a C compiler, and the lab tests against the real kernel.
"""

from __future__ import annotations

import builtins
import errno as errno_mod
import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    IPCOMP_ALGORITHMS,
    AuthAlgorithm,
    Cipher,
    CompressionAlgorithm,
)

from . import netlink as nl
from . import ops, pfkey_codec
from .pfkey import (
    IPAddress,
)
from .sadb import (
    MANUAL_REQID_MAX,
    IpProto,
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

# keyed by int: the protocol and SA type numbers come off the wire as plain ints
SATYPE_OF_PROTO: dict[int, SaType] = {
    IpProto.ESP: SaType.ESP,
    IpProto.AH: SaType.AH,
    IpProto.IPCOMP: SaType.IPCOMP,
}
PROTO_OF_SATYPE: dict[int, IpProto] = {v: IpProto(k) for k, v in SATYPE_OF_PROTO.items()}
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


def sadb_enum(enum_type: type[E], value: int) -> E | None:
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


class Refusal(Exception):
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


def pair_family(src: IPAddress, dst: IPAddress) -> int:
    if src.version != dst.version:
        raise Refusal(errno_mod.EINVAL, "source and destination of different families")
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
    fam = pair_family(src, dst)
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
            raise Refusal(errno_mod.EINVAL, f"no XFRM name for IPComp algorithm {what}")
        return [(XFRMA_ALG_COMP, pack_algo(compression.xfrm_name, b"", 0))]
    out: list[tuple[int, bytes]] = []
    if auth is not None:
        arow, key, bits = auth
        if arow.xfrm_name is None:
            raise Refusal(errno_mod.EINVAL, f"no XFRM name for {arow.name}")
        out.append(
            (XFRMA_ALG_AUTH_TRUNC, pack_algo_auth(arow.xfrm_name, key, bits, arow.icv_bits or 0))
        )
    if proto == IpProto.ESP and cipher is not None:
        crow, key, bits = cipher
        if crow.xfrm_name is None:
            raise Refusal(errno_mod.EINVAL, f"no XFRM name for {crow.name}")
        icv = aead_icv_bits(crow)
        if icv is not None:
            out.append((XFRMA_ALG_AEAD, pack_algo_auth(crow.xfrm_name, key, bits, icv)))
        else:
            out.append((XFRMA_ALG_CRYPT, pack_algo(crow.xfrm_name, key, bits)))
    return out


def sa_id(src: IPAddress, dst: IPAddress, spi: int, proto: int) -> bytes:
    """How DELSA and GETSA name one SA: ``xfrm_usersa_id`` and ``XFRMA_SRCADDR``."""
    pair_family(src, dst)
    return pack_usersa_id(dst, spi, proto) + nl.attr(XFRMA_SRCADDR, pack_addr(src))


def selector(
    src: IPAddress, prefix_s: int, sport: int, dst: IPAddress, prefix_d: int, dport: int, proto: int
) -> Selector:
    """A policy's ``xfrm_selector`` (af_key's rules: protocol 255, "any", is 0; a port given is
    matched exactly)."""
    return Selector(
        family=pair_family(src, dst),
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
        raise Refusal(errno_mod.EINVAL, f"policy type {action.value} (entrust/bypass)")
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


def parse_acquire(p: bytes) -> tuple[int, int, IPAddress, IPAddress, UserpolicyInfo]:
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


def parse_expire(p: bytes) -> tuple[UsersaInfo, bool]:
    if len(p) < USER_EXPIRE.size:
        raise XfrmDecodeError(f"xfrm_user_expire: {len(p)} bytes")
    st, hard = USER_EXPIRE.unpack_from(p)
    return UsersaInfo.unpack(st), bool(hard)


def parse_polexpire(p: bytes) -> tuple[UserpolicyInfo, bool, nl.Attributes]:
    if len(p) < USER_POLEXPIRE.size:
        raise XfrmDecodeError(f"xfrm_user_polexpire: {len(p)} bytes")
    pol, hard = USER_POLEXPIRE.unpack_from(p)
    return UserpolicyInfo.unpack(pol), bool(hard), nl.parse_attrs(p, USER_POLEXPIRE.size)


def parse_delsa(p: bytes) -> tuple[UsersaInfo, nl.Attributes]:
    """DELSA names the SA by ``xfrm_usersa_id``; the whole state follows in ``XFRMA_SA``."""
    a = nl.parse_attrs(p, USERSA_ID.size)
    raw = a.get(XFRMA_SA)
    if raw is None:
        daddr, spi, fam, proto = unpack_usersa_id(p)
        return UsersaInfo(daddr=daddr, spi=spi, proto=proto, family=fam, saddr=_zero(fam)), a
    return UsersaInfo.unpack(raw), a


def flushed_proto(p: bytes) -> int:
    return p[0] if p else IPSEC_PROTO_ANY


# ---------------------------------------------------------------------------------------------
# what is missing, in one line


def missing_module_hint(proto: int, family: int, err: int, attrs: list[tuple[int, bytes]]) -> str:
    """The one line a person needs when the kernel refused an SA for want of a module."""
    v6 = family == AF_INET6
    if err == errno_mod.EPROTONOSUPPORT:
        module_of: dict[int, str] = {
            IpProto.ESP: "esp6" if v6 else "esp4",
            IpProto.AH: "ah6" if v6 else "ah4",
            IpProto.IPCOMP: "ipcomp6" if v6 else "ipcomp",
        }
        module = module_of.get(proto, "xfrm_user")
        name_of: dict[int, str] = {IpProto.ESP: "ESP", IpProto.AH: "AH", IpProto.IPCOMP: "IPComp"}
        what = name_of.get(proto, str(proto))
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
