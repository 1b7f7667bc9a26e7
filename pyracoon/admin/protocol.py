"""racoon's admin-socket wire format (``admin.h`` of ipsec-tools 0.8.2), both directions.

racoonctl and racoon talk over a ``SOCK_STREAM`` Unix socket. Every message starts with
``struct admin_com``, four 16-bit fields in **host** byte order (the socket never leaves the
machine, so racoon never converted them)::

    u16 ac_len      total length of the message, header included (low 16 bits)
    u16 ac_cmd      command code, OR-ed with 0x8000 (see below)
    u16 ac_errno | ac_version | ac_len_high
    u16 ac_proto    ADMIN_PROTO_* (0 for commands that have no protocol)

The third field is a union, and the 0x8000 bit of ``ac_cmd`` says which member it holds:

* in a **request**, ``ADMIN_FLAG_VERSION`` (0x8000) means ``ac_version`` is valid. racoonctl
  always sets it with version 1, which tells racoon "this client will also read the events you
  push after the reply". Without the flag racoon takes version 0.
* in a **reply**, ``ADMIN_FLAG_LONG_REPLY`` (also 0x8000) means the message is longer than 65535
  bytes and the field holds ``ac_len_high``, the upper 16 bits of the length. Without the flag
  the field is ``ac_errno`` (signed): 0 for success, an errno for failure. A long reply is
  therefore always a successful one.

The body that follows depends on the command:

* ``DELETE_SA``, ``ESTABLISH_SA``, ``DELETE_ALL_SA_DST``, ``GET_SA_CERT``: ``struct
  admin_com_indexes`` = ``u8 prefs, prefd, ul_proto, reserved`` and two ``struct
  sockaddr_storage`` (source, destination), in the C layout: ``sockaddr_storage`` is aligned
  like an ``unsigned long``, so on x86-64 the source starts at offset 8 and the index is 264
  bytes (``clayout`` computes it). A sockaddr_storage is 128 bytes: ``u16 family`` (host
  order), ``u16 port`` (network order), then the address (``sockaddr_in``: 4 bytes at offset
  4; ``sockaddr_in6``: flowinfo at 4, 16 bytes at 8, scope id at 24), zero padded.
* ``ESTABLISH_SA`` may carry a NUL-terminated remote name after the index (``-n remote``).
* ``ESTABLISH_SA_PSK`` carries the index, then ``struct admin_com_psk`` (``int id_type; size_t
  id_len; size_t key_len``, native layout) and the NUL-terminated login and password.
* ``LOGOUT_USER`` carries the login, without a NUL, at most ``LOGINLEN`` (31) bytes.

pyracoon keeps this format, so a request from racoonctl is understood, and adds two things
racoonctl never sends and racoon never reads (documented in docs/admin.md):

* request version 2 (``PYRACOON_VERSION_WAIT``) means pyracoonctl's ``establish-sa -w``: answer
  when the SA is up or has failed, with the reason, instead of racoon's stream of binary events
  (which version 1, racoonctl's, gets, as from racoon);
* an errno reply may carry a UTF-8 explanation as its body (racoonctl reads only the header
  of an errno reply, so it never sees it).

A ``SHOW_SA`` request carrying one byte (the ``-l`` count, sent by pyracoonctl before it
formatted the records itself) is still accepted; the count no longer changes the reply.

Reply bodies are racoon's: binary records (``records``: ``struct ph1dump``, ``struct
scheddump``, PF_KEY ``SADB_DUMP`` messages, ``struct evt_async``) that the client formats, the
raw certificate for ``GET_SA_CERT``, or nothing.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct
from dataclasses import dataclass
from enum import IntEnum

from .clayout import SOCKADDR_STORAGE_LEN, CAdminComIndexes
from .errors import AdminDecodeError, AdminEncodeError

__all__ = [
    "ADMIN_FLAG_LONG_REPLY",
    "ADMIN_FLAG_VERSION",
    "ADMIN_VERSION",
    "HEADER_LEN",
    "INDEX_LEN",
    "LOGINLEN",
    "MAX_REPLY_LEN",
    "PSK_HEADER_LEN",
    "PYRACOON_VERSION_WAIT",
    "SOCKADDR_STORAGE_LEN",
    "AdminCommand",
    "AdminIndex",
    "AdminProto",
    "Header",
    "Reply",
    "Request",
    "SockAddr",
    "UlProto",
    "XauthCredentials",
    "command_name",
    "proto_name",
]

_HEADER = struct.Struct("=HHHH")
HEADER_LEN = _HEADER.size  # 8
INDEX_LEN = ctypes.sizeof(CAdminComIndexes)  # struct admin_com_indexes: 264 on x86-64
_INDEX_SRC = CAdminComIndexes.src.offset  # 8 on x86-64: sockaddr_storage's alignment
_INDEX_DST = CAdminComIndexes.dst.offset
_PSK = struct.Struct("@iNN")  # struct admin_com_psk, native layout: 24 bytes on LP64
PSK_HEADER_LEN = _PSK.size
LOGINLEN = 31  # racoon's isakmp_xauth.h
MAX_REPLY_LEN = 0xFFFFFFFF  # ac_len + ac_len_high: 32 bits in all

ADMIN_FLAG_VERSION = 0x8000
ADMIN_FLAG_LONG_REPLY = 0x8000
ADMIN_VERSION = 1  # what racoonctl sends: "I also read pushed events"
PYRACOON_VERSION_WAIT = 2  # pyracoon extension: establish-sa -w, reply when done

IDTYPE_USERFQDN = 2  # racoon's remoteconf.h; racoonctl's -u login is always a user FQDN


class AdminCommand(IntEnum):
    """``ac_cmd`` values, racoon's names."""

    ADMIN_RELOAD_CONF = 0x0001
    ADMIN_SHOW_SCHED = 0x0002
    ADMIN_SHOW_EVT = 0x0003
    ADMIN_SHOW_SA = 0x0101
    ADMIN_FLUSH_SA = 0x0102
    ADMIN_DELETE_SA = 0x0201
    ADMIN_ESTABLISH_SA = 0x0202
    ADMIN_ESTABLISH_SA_PSK = 0x0203
    ADMIN_DELETE_ALL_SA_DST = 0x0204
    ADMIN_LOGOUT_USER = 0x0205
    ADMIN_GET_SA_CERT = 0x0206


class AdminProto(IntEnum):
    """``ac_proto`` values, racoon's names."""

    ADMIN_PROTO_ISAKMP = 0x01FF
    ADMIN_PROTO_IPSEC = 0x02FF
    ADMIN_PROTO_AH = 0x0201
    ADMIN_PROTO_ESP = 0x0202
    ADMIN_PROTO_INTERNAL = 0x0301


class UlProto(IntEnum):
    """The upper-layer protocols racoonctl's SAOPTS accept (``ul_proto``), IANA numbers."""

    ANY = 0
    ICMP = 1
    TCP = 6
    UDP = 17
    GRE = 47


# The words racoonctl's tables use (prototab, ulprototab, cmdtab).
PROTO_WORDS: dict[str, AdminProto] = {
    "isakmp": AdminProto.ADMIN_PROTO_ISAKMP,
    "ipsec": AdminProto.ADMIN_PROTO_IPSEC,
    "ah": AdminProto.ADMIN_PROTO_AH,
    "esp": AdminProto.ADMIN_PROTO_ESP,
    "internal": AdminProto.ADMIN_PROTO_INTERNAL,
}
UL_PROTO_WORDS: dict[str, UlProto] = {
    "any": UlProto.ANY,
    "icmp": UlProto.ICMP,
    "tcp": UlProto.TCP,
    "udp": UlProto.UDP,
    "gre": UlProto.GRE,
}


def command_name(code: int) -> str:
    """``ADMIN_SHOW_SA`` for 0x0101, ``0x0999`` for a code racoon does not know."""
    try:
        return AdminCommand(code).name
    except ValueError:
        return f"0x{code:04x}"


def proto_name(code: int) -> str:
    """``isakmp`` for 0x01ff, ``0x0000`` for none or an unknown code."""
    for word, proto in PROTO_WORDS.items():
        if proto == code:
            return word
    return f"0x{code:04x}"


# --------------------------------------------------------------------------- header


@dataclass(frozen=True)
class Header:
    """``struct admin_com`` with the union resolved by the 0x8000 bit.

    ``third`` is the raw union value; ``command`` has the flag removed; ``flagged`` says whether
    it was set. ``Request`` and ``Reply`` interpret ``third`` for their direction.
    """

    length: int
    command: int
    flagged: bool
    third: int
    proto: int

    @classmethod
    def decode(cls, data: bytes) -> Header:
        """The first 8 bytes of a message; fewer is an error naming the missing field."""
        if len(data) < HEADER_LEN:
            names = ("ac_len", "ac_cmd", "ac_errno/ac_version/ac_len_high", "ac_proto")
            missing = names[len(data) // 2]
            raise AdminDecodeError(
                missing, len(data) // 2 * 2,
                f"message is {len(data)} bytes, shorter than the {HEADER_LEN}-byte header")
        length, cmd, third, proto = _HEADER.unpack_from(data)
        return cls(length, cmd & 0x7FFF, bool(cmd & 0x8000), third, proto)

    @property
    def errno(self) -> int:
        """``ac_errno`` read as racoon's ``int16_t``."""
        return self.third - 0x10000 if self.third & 0x8000 else self.third

    @property
    def reply_length(self) -> int:
        """The total length of a reply: 32 bits when ``ADMIN_FLAG_LONG_REPLY`` is set."""
        return self.length | (self.third << 16) if self.flagged else self.length


def _pack_header(length: int, command: int, third: int, proto: int) -> bytes:
    for name, value in (("ac_len", length), ("ac_cmd", command), ("ac_proto", proto)):
        if not 0 <= value <= 0xFFFF:
            raise AdminEncodeError(name, f"{value} does not fit 16 bits")
    if not 0 <= third <= 0xFFFF:
        raise AdminEncodeError("ac_errno/ac_version/ac_len_high", f"{third} does not fit 16 bits")
    return _HEADER.pack(length, command, third, proto)


# --------------------------------------------------------------------------- sockaddr


@dataclass(frozen=True)
class SockAddr:
    """One ``struct sockaddr_storage`` of an index: an address, a port, IPv6 flow and scope."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int = 0
    flowinfo: int = 0
    scope_id: int = 0

    @property
    def family(self) -> int:
        return socket.AF_INET if self.address.version == 4 else socket.AF_INET6

    def encode(self) -> bytes:
        """The 128-byte Linux ``sockaddr_storage``."""
        if not 0 <= self.port <= 0xFFFF:
            raise AdminEncodeError("port", f"{self.port} is not 0..65535")
        if self.address.version == 4:
            raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", self.port)
            raw += self.address.packed
        else:
            raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", self.port, self.flowinfo)
            raw += self.address.packed + struct.pack("=I", self.scope_id)
        return raw.ljust(SOCKADDR_STORAGE_LEN, b"\0")

    @classmethod
    def decode(cls, data: bytes, offset: int, name: str) -> SockAddr:
        """The sockaddr_storage at ``data[offset:]``; ``name`` prefixes error field names."""
        if len(data) < offset + SOCKADDR_STORAGE_LEN:
            raise AdminDecodeError(
                name, offset,
                f"{len(data) - offset} bytes left, a sockaddr_storage needs "
                f"{SOCKADDR_STORAGE_LEN}")
        (family,) = struct.unpack_from("=H", data, offset)
        (port,) = struct.unpack_from("!H", data, offset + 2)
        if family == socket.AF_INET:
            return cls(ipaddress.IPv4Address(data[offset + 4:offset + 8]), port)
        if family == socket.AF_INET6:
            (flowinfo,) = struct.unpack_from("!I", data, offset + 4)
            addr = ipaddress.IPv6Address(data[offset + 8:offset + 24])
            (scope_id,) = struct.unpack_from("=I", data, offset + 24)
            return cls(addr, port, flowinfo, scope_id)
        raise AdminDecodeError(
            f"{name}.ss_family", offset,
            f"address family {family} is neither AF_INET ({socket.AF_INET}) nor "
            f"AF_INET6 ({socket.AF_INET6})")

    def __str__(self) -> str:
        scope = f"%{self.scope_id}" if self.scope_id else ""
        return f"{self.address}{scope}[{self.port}]"


# --------------------------------------------------------------------------- bodies


@dataclass(frozen=True)
class AdminIndex:
    """``struct admin_com_indexes``: the selector of delete-sa, establish-sa and get-cert."""

    src: SockAddr
    dst: SockAddr
    prefs: int
    prefd: int
    ul_proto: int = UlProto.ANY

    def encode(self) -> bytes:
        for name in ("prefs", "prefd", "ul_proto"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise AdminEncodeError(name, f"{value} does not fit 8 bits")
        head = bytes([self.prefs, self.prefd, self.ul_proto, 0]).ljust(_INDEX_SRC, b"\0")
        return (head + self.src.encode().ljust(_INDEX_DST - _INDEX_SRC, b"\0")
                + self.dst.encode()).ljust(INDEX_LEN, b"\0")

    @classmethod
    def decode(cls, data: bytes, offset: int = HEADER_LEN) -> AdminIndex:
        """The index at ``data[offset:]`` (offsets in errors count from the message start)."""
        if len(data) < offset + INDEX_LEN:
            raise AdminDecodeError(
                "admin_com_indexes", offset,
                f"the body is {max(len(data) - offset, 0)} bytes, an index needs {INDEX_LEN}")
        prefs, prefd, ul_proto = data[offset], data[offset + 1], data[offset + 2]
        src = SockAddr.decode(data, offset + _INDEX_SRC, "src")
        dst = SockAddr.decode(data, offset + _INDEX_DST, "dst")
        return cls(src, dst, prefs, prefd, ul_proto)

    def __str__(self) -> str:
        ul = next((w for w, v in UL_PROTO_WORDS.items() if v == self.ul_proto),
                  str(self.ul_proto))
        return (f"{self.src.address}/{self.prefs}[{self.src.port}] "
                f"{self.dst.address}/{self.prefd}[{self.dst.port}] {ul}")


@dataclass(frozen=True)
class XauthCredentials:
    """``struct admin_com_psk`` and what follows it: establish-sa/vpn-connect ``-u LOGIN``.

    Despite racoon's name this is an XAUTH login and password, not a pre-shared key.
    """

    login: str
    password: str
    id_type: int = IDTYPE_USERFQDN

    def encode(self) -> bytes:
        login = self.login.encode() + b"\0"
        password = self.password.encode() + b"\0"
        return _PSK.pack(self.id_type, len(login), len(password)) + login + password

    @classmethod
    def decode(cls, data: bytes, offset: int) -> XauthCredentials:
        if len(data) < offset + PSK_HEADER_LEN:
            raise AdminDecodeError(
                "admin_com_psk", offset,
                f"{len(data) - offset} bytes left, the header needs {PSK_HEADER_LEN}")
        id_type, id_len, key_len = _PSK.unpack_from(data, offset)
        start = offset + PSK_HEADER_LEN
        if id_len > len(data) - start:
            raise AdminDecodeError("admin_com_psk.id_len", offset + 8,
                                   f"{id_len} runs past the end of the message")
        if key_len > len(data) - start - id_len:
            raise AdminDecodeError("admin_com_psk.key_len", offset + 16,
                                   f"{key_len} runs past the end of the message")
        if start + id_len + key_len != len(data):
            raise AdminDecodeError(
                "admin_com_psk", start + id_len + key_len,
                f"{len(data) - start - id_len - key_len} bytes after the password")
        login = _c_string(data[start:start + id_len], "login", start)
        password = _c_string(data[start + id_len:start + id_len + key_len], "password",
                             start + id_len)
        return cls(login, password, id_type)


def _c_string(raw: bytes, name: str, offset: int) -> str:
    """A NUL-terminated UTF-8 string that fills ``raw`` exactly."""
    if not raw or raw[-1] != 0:
        raise AdminDecodeError(name, offset, "is not NUL-terminated")
    text = raw[:-1]
    if 0 in text:
        raise AdminDecodeError(name, offset + text.index(0), "has a NUL inside")
    try:
        return text.decode()
    except UnicodeDecodeError as e:
        raise AdminDecodeError(name, offset + e.start, "is not UTF-8") from None


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Request:
    """A request as racoonctl sends it. ``version`` None means the 0x8000 flag is not set."""

    command: int
    proto: int = 0
    body: bytes = b""
    version: int | None = ADMIN_VERSION

    def encode(self) -> bytes:
        length = HEADER_LEN + len(self.body)
        if length > 0xFFFF:
            raise AdminEncodeError("ac_len", f"a request of {length} bytes exceeds 65535")
        cmd = self.command | (ADMIN_FLAG_VERSION if self.version is not None else 0)
        return _pack_header(length, cmd, self.version or 0, self.proto) + self.body

    @classmethod
    def decode(cls, data: bytes) -> Request:
        """A whole request; ``ac_len`` must match the bytes given."""
        h = Header.decode(data)
        if h.length < HEADER_LEN:
            raise AdminDecodeError("ac_len", 0, f"{h.length} is shorter than the header")
        if h.length != len(data):
            raise AdminDecodeError("ac_len", 0,
                                   f"says {h.length} bytes but the request has {len(data)}")
        return cls(h.command, h.proto, bytes(data[HEADER_LEN:]),
                   h.third if h.flagged else None)

    # -- body accessors, each checking the body has exactly what the command carries

    def index(self) -> AdminIndex:
        """The index of DELETE_SA, DELETE_ALL_SA_DST and GET_SA_CERT (nothing after it)."""
        self._expect_body(INDEX_LEN)
        return AdminIndex.decode(self._message())

    def establish(self) -> tuple[AdminIndex, str | None, XauthCredentials | None]:
        """ESTABLISH_SA's (index, remote name) or ESTABLISH_SA_PSK's (index, None, login)."""
        self._expect_body(INDEX_LEN, at_least=True)
        message = self._message()
        index = AdminIndex.decode(message)
        rest = self.body[INDEX_LEN:]
        start = HEADER_LEN + INDEX_LEN
        if self.command == AdminCommand.ADMIN_ESTABLISH_SA_PSK:
            return index, None, XauthCredentials.decode(message, start)
        if not rest:
            return index, None, None
        return index, _c_string(rest, "remote name", start), None

    def login(self) -> str:
        """LOGOUT_USER's login (no NUL, at most LOGINLEN bytes)."""
        if not self.body:
            raise AdminDecodeError("login", HEADER_LEN, "is empty")
        if len(self.body) > LOGINLEN:
            raise AdminDecodeError("login", HEADER_LEN,
                                   f"is {len(self.body)} bytes, racoon allows {LOGINLEN}")
        try:
            return self.body.decode()
        except UnicodeDecodeError as e:
            raise AdminDecodeError("login", HEADER_LEN + e.start, "is not UTF-8") from None

    def verbosity(self) -> int:
        """SHOW_SA's ``-l`` byte of older pyracoonctl requests (absent from racoonctl's = 0)."""
        if len(self.body) > 1:
            raise AdminDecodeError("long_format", HEADER_LEN + 1,
                                   f"SHOW_SA carries at most 1 byte, got {len(self.body)}")
        return self.body[0] if self.body else 0

    def _message(self) -> bytes:
        return b"\0" * HEADER_LEN + self.body

    def _expect_body(self, size: int, at_least: bool = False) -> None:
        if len(self.body) < size or (len(self.body) > size and not at_least):
            raise AdminDecodeError(
                "admin_com_indexes", HEADER_LEN,
                f"{command_name(self.command)} carries a {size}-byte index, "
                f"the body is {len(self.body)} bytes")


@dataclass(frozen=True)
class Reply:
    """A reply: ``errno`` 0 with the data in ``body``, or an errno (and pyracoon's explanation).

    ``encode`` sets ``ADMIN_FLAG_LONG_REPLY`` exactly when racoon does: a successful reply
    whose length does not fit 16 bits.
    """

    command: int
    proto: int = 0
    errno: int = 0
    body: bytes = b""

    def encode(self) -> bytes:
        length = HEADER_LEN + len(self.body)
        if length > MAX_REPLY_LEN:
            raise AdminEncodeError("ac_len_high", f"a reply of {length} bytes exceeds 32 bits")
        if self.errno:
            if not -0x8000 <= self.errno <= 0x7FFF:
                raise AdminEncodeError("ac_errno", f"{self.errno} does not fit int16_t")
            if length > 0xFFFF:
                raise AdminEncodeError("ac_len",
                                       "an errno reply cannot be long: the field holds ac_errno")
            return _pack_header(length, self.command, self.errno & 0xFFFF, self.proto) + self.body
        if length > 0xFFFF:
            return _pack_header(length & 0xFFFF, self.command | ADMIN_FLAG_LONG_REPLY,
                                length >> 16, self.proto) + self.body
        return _pack_header(length, self.command, 0, self.proto) + self.body

    @classmethod
    def decode(cls, data: bytes) -> Reply:
        """A whole reply; its (possibly 32-bit) length must match the bytes given."""
        h = Header.decode(data)
        length = h.reply_length
        if length < HEADER_LEN:
            raise AdminDecodeError("ac_len", 0, f"{length} is shorter than the header")
        if length != len(data):
            raise AdminDecodeError("ac_len", 0,
                                   f"says {length} bytes but the reply has {len(data)}")
        errno = 0 if h.flagged else h.errno
        return cls(h.command, h.proto, errno, bytes(data[HEADER_LEN:]))

    def text(self) -> str:
        """The body as text; bytes that are not UTF-8 show as U+FFFD rather than failing."""
        return self.body.decode(errors="replace")
