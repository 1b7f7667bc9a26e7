"""PF_KEY v2 messages as bytes and back (RFC 2367 section 2, KAME and Linux extensions).

Every PF_KEY message is a 16-byte ``sadb_msg`` base header followed by extensions, each starting
with a ``(u16 length, u16 type)`` header. Both lengths count 64-bit words, so every extension is
padded to a multiple of 8 bytes; the one exception is ``sadb_x_ipsecrequest_len``, which counts
bytes. Integers are in host byte order except SPIs and ports, which are in network order, exactly
as a kernel puts them on the socket -- so the same bytes go to a real AF_KEY socket, to the
simulated kernel and into test fixtures.

``decode`` is total: any byte string gives a ``Message`` or raises ``PfkeyDecodeError`` naming the
structure, the field and the offset. ``struct.error`` and ``IndexError`` never escape, because
every read goes through ``_Reader``, which checks the remaining length first.

sockaddrs differ between systems: Linux has a 16-bit family, BSD a length byte and an 8-bit
family (and its own AF_INET6 number). So does ``sadb_x_ipsecrequest``: KAME's is 8 bytes with a
16-bit reqid, Linux's 16 bytes with a 32-bit reqid and two reserved fields, and a Linux kernel
ignores a request shorter than its own. ``SockaddrLayout`` captures both differences, and the
codec takes one; the simulated kernel and its Unix socket use the Linux layout on every platform.
"""

from __future__ import annotations

import builtins
import ipaddress
import socket
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from .sadb import PF_KEY_V2, ExtType, Mode, MsgType, name_of

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PfkeyDecodeError(ValueError):
    """A PF_KEY message that cannot be decoded: which structure, which field, at which offset."""

    def __init__(self, where: str, field_name: str, offset: int, reason: str) -> None:
        self.where = where
        self.field = field_name
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"malformed PF_KEY message: {where}.{field_name} at offset {offset}: {reason}"
        )


def align8(n: int) -> int:
    """Round up to the 64-bit boundary every PF_KEY extension ends on (``PFKEY_ALIGN8``)."""
    return (n + 7) & ~7


# ---------------------------------------------------------------------------------------------
# sockaddr


@dataclass(frozen=True)
class SockaddrLayout:
    """How a platform lays out the structures that differ between PF_KEY kernels.

    ``struct sockaddr_in``/``sockaddr_in6`` (``bsd``: a length byte and an 8-bit family) and
    ``struct sadb_x_ipsecrequest`` (``kame_ipsecrequest``: KAME's 8 bytes with a 16-bit reqid
    rather than Linux's 16 bytes with a 32-bit one). ``kame_ipsecrequest`` left as None follows
    ``bsd``, since every BSD PF_KEY kernel is KAME's and Linux is the only other one.
    """

    name: str
    bsd: bool
    af_inet: int
    af_inet6: int
    kame_ipsecrequest: bool | None = None

    def __post_init__(self) -> None:
        if self.kame_ipsecrequest is None:
            object.__setattr__(self, "kame_ipsecrequest", self.bsd)

    @property
    def ipsecrequest_size(self) -> int:
        """``sizeof(struct sadb_x_ipsecrequest)``: 8 on KAME, 16 (packed) on Linux."""
        return 8 if self.kame_ipsecrequest else 16

    def family_at(self, data: bytes, pos: int) -> int:
        """The address family of the sockaddr at ``pos``; the caller checks 2 bytes are there."""
        if self.bsd:
            return data[pos + 1]
        return int.from_bytes(data[pos : pos + 2], sys.byteorder)

    def encode(self, addr: IPAddress, port: int = 0, flowinfo: int = 0, scope_id: int = 0) -> bytes:
        if addr.version == 4:
            family, size = self.af_inet, 16
            rest = struct.pack("!H", port) + addr.packed + bytes(8)
        else:
            family, size = self.af_inet6, 28
            rest = struct.pack("!HI", port, flowinfo) + addr.packed + struct.pack("=I", scope_id)
        head = struct.pack("=BB", size, family) if self.bsd else struct.pack("=H", family)
        return head + rest

    def size(self, version: int) -> int:
        return 16 if version == 4 else 28

    def decode(self, r: _Reader, where: str) -> tuple[IPAddress, int, int, int]:
        """Read one sockaddr; returns (address, port, flowinfo, scope_id)."""
        start = r.pos
        if self.bsd:
            sa_len = r.u8(where, "sa_len")
            family = r.u8(where, "sa_family")
        else:
            sa_len = None
            family = r.u16(where, "sa_family")
        if family == self.af_inet:
            port = r.be16(where, "sin_port")
            addr: IPAddress = ipaddress.IPv4Address(r.take(4, where, "sin_addr"))
            r.take(8, where, "sin_zero")
            flowinfo = scope_id = 0
            size = 16
        elif family == self.af_inet6:
            port = r.be16(where, "sin6_port")
            flowinfo = r.be32(where, "sin6_flowinfo")
            addr = ipaddress.IPv6Address(r.take(16, where, "sin6_addr"))
            scope_id = r.u32(where, "sin6_scope_id")
            size = 28
        else:
            raise PfkeyDecodeError(
                where, "sa_family", start, f"unsupported address family {family}"
            )
        if sa_len is not None and sa_len != size:
            raise PfkeyDecodeError(
                where, "sa_len", start, f"{sa_len} does not match family size {size}"
            )
        return addr, port, flowinfo, scope_id


LINUX = SockaddrLayout("linux", bsd=False, af_inet=2, af_inet6=10)


def native_layout() -> SockaddrLayout:
    """The layout of this machine's own AF_KEY socket."""
    if sys.platform.startswith("linux"):
        return LINUX
    return SockaddrLayout(sys.platform, bsd=True, af_inet=socket.AF_INET, af_inet6=socket.AF_INET6)


# ---------------------------------------------------------------------------------------------
# a bounds-checked reader


class _Reader:
    """Reads fixed-size fields from a buffer, turning a short buffer into ``PfkeyDecodeError``."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int, where: str, field_name: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise PfkeyDecodeError(
                where, field_name, self.pos, f"needs {n} bytes, {self.end - self.pos} left"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def _unpack(self, fmt: str, where: str, field_name: str) -> int:
        value: int = struct.unpack(fmt, self.take(struct.calcsize(fmt), where, field_name))[0]
        return value

    def u8(self, where: str, f: str) -> int:
        return self._unpack("=B", where, f)

    def u16(self, where: str, f: str) -> int:
        return self._unpack("=H", where, f)

    def u32(self, where: str, f: str) -> int:
        return self._unpack("=I", where, f)

    def u64(self, where: str, f: str) -> int:
        return self._unpack("=Q", where, f)

    def be16(self, where: str, f: str) -> int:
        return self._unpack("!H", where, f)

    def be32(self, where: str, f: str) -> int:
        return self._unpack("!I", where, f)

    def remaining(self) -> int:
        return self.end - self.pos


# ---------------------------------------------------------------------------------------------
# extensions


@dataclass
class Extension:
    """Base of all extensions. ``ext_type`` is a field where one structure serves several types."""

    TYPES: ClassVar[tuple[ExtType, ...]] = ()
    MIN_BODY: ClassVar[int] = 0
    """Bytes after the 4-byte extension header that every instance has."""

    def body(self, layout: SockaddrLayout) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def decode_body(
        cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout
    ) -> Extension:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def type(self) -> ExtType | int:
        """The extension type; only :class:`RawExtension` has one that is not an ``ExtType``."""
        return self.TYPES[0]


_E = TypeVar("_E", bound=Extension)


@dataclass
class SA(Extension):
    """``sadb_sa``: the SPI (network order), replay window, state and algorithms of an SA."""

    spi: int = 0
    replay: int = 0
    state: int = 0
    auth: int = 0
    encrypt: int = 0
    flags: int = 0
    TYPES: ClassVar = (ExtType.SA,)
    MIN_BODY: ClassVar = 12

    def body(self, layout: SockaddrLayout) -> bytes:
        return struct.pack("!I", self.spi) + struct.pack(
            "=BBBBI", self.replay, self.state, self.auth, self.encrypt, self.flags
        )

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> SA:
        w = "sadb_sa"
        return cls(
            spi=r.be32(w, "sadb_sa_spi"),
            replay=r.u8(w, "sadb_sa_replay"),
            state=r.u8(w, "sadb_sa_state"),
            auth=r.u8(w, "sadb_sa_auth"),
            encrypt=r.u8(w, "sadb_sa_encrypt"),
            flags=r.u32(w, "sadb_sa_flags"),
        )


@dataclass
class Lifetime(Extension):
    """``sadb_lifetime``: CURRENT holds usage and add/first-use times; HARD/SOFT hold limits."""

    ext_type: ExtType = ExtType.LIFETIME_CURRENT
    allocations: int = 0
    bytes: int = 0
    addtime: int = 0
    usetime: int = 0
    TYPES: ClassVar = (ExtType.LIFETIME_CURRENT, ExtType.LIFETIME_HARD, ExtType.LIFETIME_SOFT)
    MIN_BODY: ClassVar = 28

    @property
    def type(self) -> ExtType:
        return self.ext_type

    # ``builtins.bytes``: the ``bytes`` field (sadb_lifetime_bytes) shadows the type in this class
    def body(self, layout: SockaddrLayout) -> builtins.bytes:
        return struct.pack("=IQQQ", self.allocations, self.bytes, self.addtime, self.usetime)

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> Lifetime:
        w = "sadb_lifetime"
        return cls(
            ext_type=ext_type,
            allocations=r.u32(w, "sadb_lifetime_allocations"),
            bytes=r.u64(w, "sadb_lifetime_bytes"),
            addtime=r.u64(w, "sadb_lifetime_addtime"),
            usetime=r.u64(w, "sadb_lifetime_usetime"),
        )


@dataclass
class Address(Extension):
    """``sadb_address``: an address, its port, a prefix length and the upper-layer protocol.

    Also the structure of the NAT-T original address (``SADB_X_EXT_NAT_T_OA``).
    """

    ext_type: ExtType = ExtType.ADDRESS_SRC
    addr: IPAddress = field(default_factory=lambda: ipaddress.IPv4Address(0))
    port: int = 0
    prefixlen: int | None = None
    proto: int = 255
    flowinfo: int = 0
    scope_id: int = 0
    TYPES: ClassVar = (
        ExtType.ADDRESS_SRC,
        ExtType.ADDRESS_DST,
        ExtType.ADDRESS_PROXY,
        ExtType.X_NAT_T_OA,
    )
    MIN_BODY: ClassVar = 4

    def __post_init__(self) -> None:
        if self.prefixlen is None:
            self.prefixlen = self.addr.max_prefixlen

    @property
    def type(self) -> ExtType:
        return self.ext_type

    def body(self, layout: SockaddrLayout) -> bytes:
        sa = layout.encode(self.addr, self.port, self.flowinfo, self.scope_id)
        head = struct.pack("=BBH", self.proto, self.prefixlen, 0)
        return head + sa + bytes(align8(4 + len(sa) + 4) - 4 - len(sa) - 4)

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> Address:
        w = "sadb_address"
        proto = r.u8(w, "sadb_address_proto")
        start = r.pos
        prefixlen = r.u8(w, "sadb_address_prefixlen")
        r.u16(w, "sadb_address_reserved")
        addr, port, flowinfo, scope_id = layout.decode(r, w)
        if prefixlen > addr.max_prefixlen:
            raise PfkeyDecodeError(
                w, "sadb_address_prefixlen", start, f"{prefixlen} exceeds {addr.max_prefixlen}"
            )
        return cls(ext_type, addr, port, prefixlen, proto, flowinfo, scope_id)


@dataclass
class Key(Extension):
    """``sadb_key``: key material, its length in bits, padded with zeros to 64 bits."""

    ext_type: ExtType = ExtType.KEY_ENCRYPT
    key: bytes = b""
    bits: int | None = None
    TYPES: ClassVar = (ExtType.KEY_AUTH, ExtType.KEY_ENCRYPT)
    MIN_BODY: ClassVar = 4

    def __post_init__(self) -> None:
        if self.bits is None:
            self.bits = len(self.key) * 8

    @property
    def type(self) -> ExtType:
        return self.ext_type

    def body(self, layout: SockaddrLayout) -> bytes:
        head = struct.pack("=HH", self.bits, 0)
        return head + self.key + bytes(align8(8 + len(self.key)) - 8 - len(self.key))

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> Key:
        w = "sadb_key"
        bits = r.u16(w, "sadb_key_bits")
        r.u16(w, "sadb_key_reserved")
        key = r.take((bits + 7) // 8, w, "key data")
        return cls(ext_type, key, bits)


@dataclass
class Identity(Extension):
    """``sadb_ident``: an identity type and id, followed by a NUL-padded string."""

    ext_type: ExtType = ExtType.IDENTITY_SRC
    id_type: int = 0
    id: int = 0
    data: bytes = b""
    TYPES: ClassVar = (ExtType.IDENTITY_SRC, ExtType.IDENTITY_DST)
    MIN_BODY: ClassVar = 12

    @property
    def type(self) -> ExtType:
        return self.ext_type

    @property
    def text(self) -> str:
        return self.data.rstrip(b"\0").decode("utf-8", "replace")

    def body(self, layout: SockaddrLayout) -> bytes:
        head = struct.pack("=HHQ", self.id_type, 0, self.id)
        return head + self.data + bytes(align8(16 + len(self.data)) - 16 - len(self.data))

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> Identity:
        w = "sadb_ident"
        id_type = r.u16(w, "sadb_ident_type")
        r.u16(w, "sadb_ident_reserved")
        ident = r.u64(w, "sadb_ident_id")
        data = r.take(r.remaining(), w, "identity string").rstrip(b"\0")
        return cls(ext_type, id_type, ident, data)


@dataclass
class Sensitivity(Extension):
    """``sadb_sens``: security labels; kept for completeness, no IPsec stack acts on them."""

    dpd: int = 0
    sens_level: int = 0
    integ_level: int = 0
    sens_bitmap: bytes = b""
    integ_bitmap: bytes = b""
    TYPES: ClassVar = (ExtType.SENSITIVITY,)
    MIN_BODY: ClassVar = 12

    def body(self, layout: SockaddrLayout) -> bytes:
        for name, bitmap in (("sens", self.sens_bitmap), ("integ", self.integ_bitmap)):
            if len(bitmap) % 8:
                raise ValueError(f"sadb_sens {name} bitmap must be a whole number of 64-bit words")
        head = struct.pack(
            "=IBBBBI",
            self.dpd,
            self.sens_level,
            len(self.sens_bitmap) // 8,
            self.integ_level,
            len(self.integ_bitmap) // 8,
            0,
        )
        return head + self.sens_bitmap + self.integ_bitmap

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> Sensitivity:
        w = "sadb_sens"
        dpd = r.u32(w, "sadb_sens_dpd")
        sens_level = r.u8(w, "sadb_sens_sens_level")
        sens_len = r.u8(w, "sadb_sens_sens_len")
        integ_level = r.u8(w, "sadb_sens_integ_level")
        integ_len = r.u8(w, "sadb_sens_integ_len")
        r.u32(w, "sadb_sens_reserved")
        sens = r.take(sens_len * 8, w, "sens bitmap")
        integ = r.take(integ_len * 8, w, "integ bitmap")
        return cls(dpd, sens_level, integ_level, sens, integ)


@dataclass
class Comb:
    """``sadb_comb``: one algorithm combination with its limits, inside an ACQUIRE's proposal."""

    auth: int = 0
    encrypt: int = 0
    flags: int = 0
    auth_minbits: int = 0
    auth_maxbits: int = 0
    encrypt_minbits: int = 0
    encrypt_maxbits: int = 0
    soft_allocations: int = 0
    hard_allocations: int = 0
    soft_bytes: int = 0
    hard_bytes: int = 0
    soft_addtime: int = 0
    hard_addtime: int = 0
    soft_usetime: int = 0
    hard_usetime: int = 0

    FORMAT: ClassVar = "=BBHHHHHIIIQQQQQQ"
    SIZE: ClassVar = struct.calcsize("=BBHHHHHIIIQQQQQQ")  # 72


@dataclass
class Proposal(Extension):
    """``sadb_prop``: the combinations a kernel would accept, sent with ACQUIRE."""

    replay: int = 0
    combs: list[Comb] = field(default_factory=list)
    TYPES: ClassVar = (ExtType.PROPOSAL,)
    MIN_BODY: ClassVar = 4

    def body(self, layout: SockaddrLayout) -> bytes:
        out = [struct.pack("=B3x", self.replay)]
        for c in self.combs:
            out.append(
                struct.pack(
                    Comb.FORMAT,
                    c.auth,
                    c.encrypt,
                    c.flags,
                    c.auth_minbits,
                    c.auth_maxbits,
                    c.encrypt_minbits,
                    c.encrypt_maxbits,
                    0,
                    c.soft_allocations,
                    c.hard_allocations,
                    c.soft_bytes,
                    c.hard_bytes,
                    c.soft_addtime,
                    c.hard_addtime,
                    c.soft_usetime,
                    c.hard_usetime,
                )
            )
        return b"".join(out)

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> Proposal:
        w = "sadb_prop"
        replay = r.u8(w, "sadb_prop_replay")
        r.take(3, w, "sadb_prop_reserved")
        if r.remaining() % Comb.SIZE:
            raise PfkeyDecodeError(
                w, "sadb_comb", r.pos, f"{r.remaining()} bytes is not a whole number of combs"
            )
        combs = []
        while r.remaining():
            v = struct.unpack(Comb.FORMAT, r.take(Comb.SIZE, "sadb_comb", "sadb_comb"))
            combs.append(Comb(*v[:7], *v[8:]))
        return cls(replay, combs)


@dataclass
class Alg:
    """``sadb_alg``: one algorithm a kernel supports, with its IV and key-size range in bits."""

    id: int
    ivlen: int = 0
    minbits: int = 0
    maxbits: int = 0


@dataclass
class Supported(Extension):
    """``sadb_supported``: the REGISTER reply's list of algorithms."""

    ext_type: ExtType = ExtType.SUPPORTED_ENCRYPT
    algs: list[Alg] = field(default_factory=list)
    TYPES: ClassVar = (ExtType.SUPPORTED_AUTH, ExtType.SUPPORTED_ENCRYPT)
    MIN_BODY: ClassVar = 4

    @property
    def type(self) -> ExtType:
        return self.ext_type

    def body(self, layout: SockaddrLayout) -> bytes:
        out = [bytes(4)]
        for a in self.algs:
            out.append(struct.pack("=BBHHH", a.id, a.ivlen, a.minbits, a.maxbits, 0))
        return b"".join(out)

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> Supported:
        w = "sadb_supported"
        r.take(4, w, "sadb_supported_reserved")
        if r.remaining() % 8:
            raise PfkeyDecodeError(w, "sadb_alg", r.pos, "trailing bytes after the last sadb_alg")
        algs = []
        while r.remaining():
            a_id, ivlen, mn, mx, _ = struct.unpack("=BBHHH", r.take(8, "sadb_alg", "sadb_alg"))
            algs.append(Alg(a_id, ivlen, mn, mx))
        return cls(ext_type, algs)


@dataclass
class SpiRange(Extension):
    """``sadb_spirange``: the range GETSPI must allocate from."""

    min: int = 0
    max: int = 0
    TYPES: ClassVar = (ExtType.SPIRANGE,)
    MIN_BODY: ClassVar = 12

    def body(self, layout: SockaddrLayout) -> bytes:
        return struct.pack("=III", self.min, self.max, 0)

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> SpiRange:
        w = "sadb_spirange"
        mn = r.u32(w, "sadb_spirange_min")
        mx = r.u32(w, "sadb_spirange_max")
        r.u32(w, "sadb_spirange_reserved")
        return cls(mn, mx)


@dataclass
class KmPrivate(Extension):
    """``sadb_x_kmprivate``: opaque key-manager data the kernel stores and returns."""

    data: bytes = b""
    TYPES: ClassVar = (ExtType.X_KMPRIVATE,)
    MIN_BODY: ClassVar = 4

    def body(self, layout: SockaddrLayout) -> bytes:
        return bytes(4) + self.data + bytes(align8(8 + len(self.data)) - 8 - len(self.data))

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> KmPrivate:
        r.take(4, "sadb_x_kmprivate", "sadb_x_kmprivate_reserved")
        return cls(r.take(r.remaining(), "sadb_x_kmprivate", "data"))


@dataclass
class IpsecRequest:
    """``sadb_x_ipsecrequest``: one element of a policy's bundle (protocol, mode, level, reqid).

    Two layouts, chosen by ``SockaddrLayout.kame_ipsecrequest``::

        KAME (8 bytes)             Linux (16 bytes, packed)
        u16 len                    u16 len
        u16 proto                  u16 proto
        u8  mode                   u8  mode
        u8  level                  u8  level
        u16 reqid                  u16 reserved1
                                   u32 reqid
                                   u32 reserved2

    ``len`` counts bytes, including the tunnel endpoints (two sockaddrs of one family) that may
    follow. Linux reads them only in tunnel mode, and a transport-mode request may carry none
    or zero-filled ones (family 0): both decode as "no endpoints".
    """

    proto: int = 50
    mode: int = 1
    level: int = 0
    reqid: int = 0
    src: IPAddress | None = None
    dst: IPAddress | None = None
    src_port: int = 0
    dst_port: int = 0

    def encode(self, layout: SockaddrLayout) -> bytes:
        addrs = b""
        if self.src is not None and self.dst is not None:
            addrs = layout.encode(self.src, self.src_port) + layout.encode(self.dst, self.dst_port)
            addrs += bytes(align8(len(addrs)) - len(addrs))
        elif (self.src is None) != (self.dst is None):
            raise ValueError("an ipsecrequest has both tunnel endpoints or neither")
        length = layout.ipsecrequest_size + len(addrs)
        if layout.kame_ipsecrequest:
            if not 0 <= self.reqid <= 0xFFFF:
                raise ValueError(
                    f"reqid {self.reqid} does not fit KAME's 16-bit sadb_x_ipsecrequest_reqid"
                )
            head = struct.pack("=HHBBH", length, self.proto, self.mode, self.level, self.reqid)
        else:
            if not 0 <= self.reqid <= 0xFFFFFFFF:
                raise ValueError(f"reqid {self.reqid} does not fit sadb_x_ipsecrequest_reqid")
            head = struct.pack(
                "=HHBBHII", length, self.proto, self.mode, self.level, 0, self.reqid, 0
            )
        return head + addrs

    @classmethod
    def decode(cls, r: _Reader, layout: SockaddrLayout) -> IpsecRequest:
        w = "sadb_x_ipsecrequest"
        start = r.pos
        length = r.u16(w, "sadb_x_ipsecrequest_len")
        if length < layout.ipsecrequest_size or start + length > r.end:
            raise PfkeyDecodeError(
                w, "sadb_x_ipsecrequest_len", start, f"{length} bytes does not fit the policy"
            )
        if layout.kame_ipsecrequest and length % 8:
            raise PfkeyDecodeError(
                w, "sadb_x_ipsecrequest_len", start, f"{length} bytes is not 64-bit aligned"
            )
        proto = r.u16(w, "sadb_x_ipsecrequest_proto")
        mode = r.u8(w, "sadb_x_ipsecrequest_mode")
        level = r.u8(w, "sadb_x_ipsecrequest_level")
        if layout.kame_ipsecrequest:
            reqid = r.u16(w, "sadb_x_ipsecrequest_reqid")
        else:
            r.u16(w, "sadb_x_ipsecrequest_reserved1")
            reqid = r.u32(w, "sadb_x_ipsecrequest_reqid")
            r.u32(w, "sadb_x_ipsecrequest_reserved2")
        req = cls(proto, mode, level, reqid)
        sub = _Reader(r.data, r.pos, start + length)
        if sub.remaining():
            req._decode_endpoints(sub, layout, start)
        r.pos = start + length
        return req

    def _decode_endpoints(self, sub: _Reader, layout: SockaddrLayout, start: int) -> None:
        """Read the sockaddrs after the fixed part, if there are any to read.

        A zero family means "none" (a zero-filled transport request). Linux reads endpoints in
        tunnel mode only (``parse_ipsecrequest``), so there a transport request's trailing bytes
        are ignored whatever they hold; KAME reads whatever is there, and so do we on KAME.
        """
        w = "sadb_x_ipsecrequest"
        if sub.remaining() < 2:
            if self.mode == Mode.TUNNEL or layout.kame_ipsecrequest:
                raise PfkeyDecodeError(w, "src", sub.pos, "truncated tunnel endpoint")
            return
        if layout.family_at(sub.data, sub.pos) == 0:
            return
        try:
            src, sport, _, _ = layout.decode(sub, w + ".src")
            dst, dport, _, _ = layout.decode(sub, w + ".dst")
            if src.version != dst.version:
                raise PfkeyDecodeError(w, "dst", start, "tunnel endpoints of different families")
            if sub.remaining() >= 8:
                raise PfkeyDecodeError(w, "padding", sub.pos, "unexpected data after endpoints")
        except PfkeyDecodeError:
            if self.mode == Mode.TUNNEL or layout.kame_ipsecrequest:
                raise
            return  # Linux ignores what follows a transport-mode request
        self.src, self.src_port, self.dst, self.dst_port = src, sport, dst, dport


@dataclass
class Policy(Extension):
    """``sadb_x_policy``: the action, direction, id and priority of an SPD entry, and its bundle."""

    policy_type: int = 2
    dir: int = 0
    id: int = 0
    priority: int = 0
    requests: list[IpsecRequest] = field(default_factory=list)
    TYPES: ClassVar = (ExtType.X_POLICY,)
    MIN_BODY: ClassVar = 12

    def body(self, layout: SockaddrLayout) -> bytes:
        head = struct.pack("=HBBII", self.policy_type, self.dir, 0, self.id, self.priority)
        return head + b"".join(req.encode(layout) for req in self.requests)

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> Policy:
        w = "sadb_x_policy"
        ptype = r.u16(w, "sadb_x_policy_type")
        direction = r.u8(w, "sadb_x_policy_dir")
        r.u8(w, "sadb_x_policy_reserved")
        pid = r.u32(w, "sadb_x_policy_id")
        prio = r.u32(w, "sadb_x_policy_priority")
        reqs = []
        # Linux's parse_ipsecrequests reads requests while a whole fixed part is left and
        # ignores a shorter tail (which is how a KAME-sized request vanishes there); KAME reads
        # until the extension ends.
        least = 1 if layout.kame_ipsecrequest else layout.ipsecrequest_size
        while r.remaining() >= least:
            reqs.append(IpsecRequest.decode(r, layout))
        r.take(r.remaining(), w, "sadb_x_ipsecrequest")
        return cls(ptype, direction, pid, prio, reqs)


@dataclass
class SA2(Extension):
    """``sadb_x_sa2``: the mode and reqid of an SA, which RFC 2367's ``sadb_sa`` lacks."""

    mode: int = 0
    sequence: int = 0
    reqid: int = 0
    TYPES: ClassVar = (ExtType.X_SA2,)
    MIN_BODY: ClassVar = 12

    def body(self, layout: SockaddrLayout) -> bytes:
        return struct.pack("=BBHII", self.mode, 0, 0, self.sequence, self.reqid)

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> SA2:
        w = "sadb_x_sa2"
        mode = r.u8(w, "sadb_x_sa2_mode")
        r.u8(w, "sadb_x_sa2_reserved1")
        r.u16(w, "sadb_x_sa2_reserved2")
        seq = r.u32(w, "sadb_x_sa2_sequence")
        reqid = r.u32(w, "sadb_x_sa2_reqid")
        return cls(mode, seq, reqid)


@dataclass
class NatTType(Extension):
    """``sadb_x_nat_t_type``: the UDP encapsulation of a NAT-T SA."""

    nat_t_type: int = 0
    TYPES: ClassVar = (ExtType.X_NAT_T_TYPE,)
    MIN_BODY: ClassVar = 4

    def body(self, layout: SockaddrLayout) -> bytes:
        return struct.pack("=B3x", self.nat_t_type)

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> NatTType:
        t = r.u8("sadb_x_nat_t_type", "sadb_x_nat_t_type_type")
        r.take(3, "sadb_x_nat_t_type", "sadb_x_nat_t_type_reserved")
        return cls(t)


@dataclass
class NatTPort(Extension):
    """``sadb_x_nat_t_port``: a NAT-T UDP port, in network order."""

    ext_type: ExtType = ExtType.X_NAT_T_SPORT
    port: int = 0
    TYPES: ClassVar = (ExtType.X_NAT_T_SPORT, ExtType.X_NAT_T_DPORT)
    MIN_BODY: ClassVar = 4

    @property
    def type(self) -> ExtType:
        return self.ext_type

    def body(self, layout: SockaddrLayout) -> bytes:
        return struct.pack("!H", self.port) + bytes(2)

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> NatTPort:
        port = r.be16("sadb_x_nat_t_port", "sadb_x_nat_t_port_port")
        r.take(2, "sadb_x_nat_t_port", "sadb_x_nat_t_port_reserved")
        return cls(ext_type, port)


@dataclass
class SecCtx(Extension):
    """``sadb_x_sec_ctx``: an SELinux-style security context string (setkey ``-ctx``)."""

    alg: int = 0
    doi: int = 0
    ctx: bytes = b""
    TYPES: ClassVar = (ExtType.X_SEC_CTX,)
    MIN_BODY: ClassVar = 4

    def body(self, layout: SockaddrLayout) -> bytes:
        head = struct.pack("=BBH", self.alg, self.doi, len(self.ctx))
        return head + self.ctx + bytes(align8(8 + len(self.ctx)) - 8 - len(self.ctx))

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> SecCtx:
        w = "sadb_x_sec_ctx"
        alg = r.u8(w, "sadb_x_ctx_alg")
        doi = r.u8(w, "sadb_x_ctx_doi")
        n = r.u16(w, "sadb_x_ctx_len")
        return cls(alg, doi, r.take(n, w, "context string"))


@dataclass
class RawExtension(Extension):
    """An extension type this codec does not know: kept as bytes so a dump can still show it."""

    ext_type: int = 0
    data: bytes = b""

    @property
    def type(self) -> int:
        return self.ext_type

    def body(self, layout: SockaddrLayout) -> bytes:
        return self.data

    @classmethod
    def decode_body(cls, ext_type: ExtType, r: _Reader, layout: SockaddrLayout) -> RawExtension:
        return cls(ext_type, r.take(r.remaining(), "sadb_ext", "data"))


_CLASS_OF: dict[int, type[Extension]] = {
    t: cls
    for cls in (
        SA,
        Lifetime,
        Address,
        Key,
        Identity,
        Sensitivity,
        Proposal,
        Supported,
        SpiRange,
        KmPrivate,
        Policy,
        SA2,
        NatTType,
        NatTPort,
        SecCtx,
    )
    for t in cls.TYPES
}


def encode_extension(ext: Extension, layout: SockaddrLayout = LINUX) -> bytes:
    body = ext.body(layout)
    total = 4 + len(body)
    if total % 8:
        raise ValueError(f"extension {name_of(ExtType, ext.type)} is not 64-bit aligned")
    if total // 8 > 0xFFFF:
        raise ValueError(f"extension {name_of(ExtType, ext.type)} is too long")
    return struct.pack("=HH", total // 8, int(ext.type)) + body


# ---------------------------------------------------------------------------------------------
# the message


@dataclass
class Message:
    """``sadb_msg`` with its extensions, at most one of each type, in the order they were given."""

    type: int
    satype: int = 0
    errno: int = 0
    seq: int = 0
    pid: int = 0
    reserved: int = 0
    version: int = PF_KEY_V2
    extensions: dict[int, Extension] = field(default_factory=dict)

    def add(self, ext: Extension) -> Message:
        """Append an extension (replacing one of the same type) and return self, for chaining."""
        self.extensions[int(ext.type)] = ext
        return self

    def get(self, ext_type: ExtType) -> Extension | None:
        return self.extensions.get(int(ext_type))

    def __contains__(self, ext_type: object) -> bool:
        return ext_type in self.extensions

    def __iter__(self) -> Iterator[Extension]:
        return iter(self.extensions.values())

    # Typed accessors for the extensions most code needs.
    def _typed(self, ext_type: int, cls: builtins.type[_E]) -> _E | None:  # self.type shadows
        """The extension of ``ext_type`` as ``cls``; ``decode`` stores each known type as its
        class (``_CLASS_OF``), so None means absent."""
        ext = self.extensions.get(ext_type)
        return ext if isinstance(ext, cls) else None

    @property
    def sa(self) -> SA | None:
        return self._typed(ExtType.SA, SA)

    @property
    def src(self) -> Address | None:
        return self._typed(ExtType.ADDRESS_SRC, Address)

    @property
    def dst(self) -> Address | None:
        return self._typed(ExtType.ADDRESS_DST, Address)

    @property
    def sa2(self) -> SA2 | None:
        return self._typed(ExtType.X_SA2, SA2)

    @property
    def policy(self) -> Policy | None:
        return self._typed(ExtType.X_POLICY, Policy)

    def lifetime(self, ext_type: ExtType) -> Lifetime | None:
        return self._typed(ext_type, Lifetime)

    def key(self, ext_type: ExtType) -> Key | None:
        return self._typed(ext_type, Key)

    def reply(self, errno: int = 0) -> Message:
        """A reply header: same type, satype, seq and pid, as a kernel answers a request."""
        return Message(self.type, self.satype, errno, self.seq, self.pid)

    def describe(self) -> str:
        """One line for logs: ``SADB_ADD satype=ESP seq=3 pid=42 errno=0 [SA, ADDRESS_SRC...]``."""
        from .sadb import SaType

        exts = ", ".join(name_of(ExtType, t) for t in self.extensions)
        return (
            f"SADB_{name_of(MsgType, self.type)} satype={name_of(SaType, self.satype)} "
            f"seq={self.seq} pid={self.pid} errno={self.errno} [{exts}]"
        )


HEADER = struct.Struct("=BBBBHHII")


def encode(msg: Message, layout: SockaddrLayout = LINUX) -> bytes:
    """The bytes of ``msg`` as a kernel reads them: base header, then each extension."""
    body = b"".join(encode_extension(ext, layout) for ext in msg.extensions.values())
    length = (HEADER.size + len(body)) // 8
    if length > 0xFFFF:
        raise ValueError("PF_KEY message longer than 512 KiB")
    head = HEADER.pack(
        msg.version,
        int(msg.type),
        msg.errno,
        int(msg.satype),
        length,
        msg.reserved,
        msg.seq,
        msg.pid,
    )
    return head + body


def decode(data: bytes, layout: SockaddrLayout = LINUX) -> Message:
    """Parse one complete PF_KEY message. Raises ``PfkeyDecodeError``, and nothing else."""
    data = bytes(data)
    if len(data) < HEADER.size:
        raise PfkeyDecodeError("sadb_msg", "header", 0, f"{len(data)} bytes, need {HEADER.size}")
    version, mtype, errno, satype, length, reserved, seq, pid = HEADER.unpack_from(data)
    if version != PF_KEY_V2:
        raise PfkeyDecodeError("sadb_msg", "sadb_msg_version", 0, f"{version}, expected 2")
    if length * 8 != len(data):
        raise PfkeyDecodeError(
            "sadb_msg", "sadb_msg_len", 4, f"says {length * 8} bytes, message has {len(data)}"
        )
    msg = Message(mtype, satype, errno, seq, pid, reserved, version)
    pos = HEADER.size
    while pos < len(data):
        if len(data) - pos < 4:
            raise PfkeyDecodeError("sadb_ext", "header", pos, "truncated extension header")
        ext_len, ext_type = struct.unpack_from("=HH", data, pos)
        where = f"sadb_ext[{name_of(ExtType, ext_type)}]"
        if ext_len == 0:
            raise PfkeyDecodeError(where, "sadb_ext_len", pos, "zero length")
        end = pos + ext_len * 8
        if end > len(data):
            raise PfkeyDecodeError(
                where, "sadb_ext_len", pos, f"{ext_len * 8} bytes, {len(data) - pos} left"
            )
        if ext_type in msg.extensions:
            raise PfkeyDecodeError(where, "sadb_ext_type", pos + 2, "duplicate extension")
        cls = _CLASS_OF.get(ext_type, RawExtension)
        if ext_len * 8 - 4 < cls.MIN_BODY:
            raise PfkeyDecodeError(
                where, "sadb_ext_len", pos, f"{ext_len * 8} bytes is too short for this extension"
            )
        r = _Reader(data, pos + 4, end)
        ext_enum = ExtType(ext_type) if ext_type in ExtType._value2member_map_ else ext_type
        ext = cls.decode_body(ext_enum, r, layout)
        if cls is not RawExtension and r.remaining() >= 8:
            raise PfkeyDecodeError(where, "sadb_ext_len", pos, "extension longer than its content")
        msg.extensions[ext_type] = ext
        pos = end
    return msg
