"""Netlink framing: ``nlmsghdr``, attributes, and one blocking socket for request/reply.

Why our own and not a library: pyroute2, the well-kept Python netlink library, has in its
current release (0.9.7) only the ``NETLINK_XFRM`` protocol number and the XFRM *interface* link
type -- no XFRM state or policy messages, no ACQUIRE or EXPIRE -- so the part pyracoon needs
would have to be written either way. Netlink framing is small: a 16-byte header per message, and
type-length-value attributes aligned to 4 bytes (``linux/netlink.h``).

Decoding is total in the same sense as the PF_KEY codec: a malformed buffer raises
``NetlinkDecodeError`` naming what and where, never ``struct.error`` or ``IndexError``.
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

NETLINK_XFRM = 6
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH

NLA_F_NESTED = 0x8000
NLA_F_NET_BYTEORDER = 0x4000
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF

HEADER = struct.Struct("=IHHII")  # nlmsg_len, nlmsg_type, nlmsg_flags, nlmsg_seq, nlmsg_pid
ATTR_HEADER = struct.Struct("=HH")  # nla_len, nla_type
RECV_BUFFER = 1 << 20


class NetlinkDecodeError(ValueError):
    """A netlink buffer that is not well formed: which part, at which offset, and why."""

    def __init__(self, where: str, offset: int, reason: str) -> None:
        self.where = where
        self.offset = offset
        super().__init__(f"malformed netlink message: {where} at offset {offset}: {reason}")


def align4(n: int) -> int:
    """``NLMSG_ALIGN``/``NLA_ALIGN``: netlink pads every message and attribute to 4 bytes."""
    return (n + 3) & ~3


@dataclass
class NlMsg:
    """One netlink message: header fields and the payload after the 16-byte header."""

    type: int
    flags: int = 0
    seq: int = 0
    pid: int = 0
    payload: bytes = b""

    def encode(self) -> bytes:
        length = HEADER.size + len(self.payload)
        pad = align4(length) - length
        return (
            HEADER.pack(length, self.type, self.flags, self.seq, self.pid)
            + self.payload
            + (b"\0" * pad)
        )

    @property
    def error(self) -> int:
        """For ``NLMSG_ERROR``: the positive errno (0 for an acknowledgement)."""
        if self.type != NLMSG_ERROR:
            return 0
        if len(self.payload) < 4:
            raise NetlinkDecodeError("nlmsgerr", HEADER.size, "shorter than its error field")
        code: int = struct.unpack_from("=i", self.payload)[0]
        return -code


def iter_messages(data: bytes) -> Iterator[NlMsg]:
    """The messages of one datagram (a kernel batches several into one ``recv``)."""
    pos = 0
    while pos < len(data):
        if len(data) - pos < HEADER.size:
            raise NetlinkDecodeError("nlmsghdr", pos, f"{len(data) - pos} bytes left, need 16")
        length, mtype, flags, seq, pid = HEADER.unpack_from(data, pos)
        if length < HEADER.size or pos + length > len(data):
            raise NetlinkDecodeError(
                "nlmsghdr.nlmsg_len", pos, f"{length} does not fit the {len(data) - pos} left"
            )
        yield NlMsg(mtype, flags, seq, pid, bytes(data[pos + HEADER.size : pos + length]))
        pos += align4(length)


def attr(atype: int, value: bytes) -> bytes:
    """One attribute (``struct nlattr`` + value + padding)."""
    length = ATTR_HEADER.size + len(value)
    return ATTR_HEADER.pack(length, atype) + value + b"\0" * (align4(length) - length)


def attrs(items: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(attr(t, v) for t, v in items)


@dataclass
class Attributes:
    """The attributes after a message's fixed part, by type; a repeated type keeps the first."""

    items: dict[int, bytes] = field(default_factory=dict)

    def get(self, atype: int) -> bytes | None:
        return self.items.get(atype)

    def __contains__(self, atype: object) -> bool:
        return atype in self.items


def parse_attrs(data: bytes, offset: int = 0) -> Attributes:
    """Attributes from ``offset`` on; their lengths are checked before each read."""
    out = Attributes()
    pos = offset
    while pos < len(data):
        if len(data) - pos < ATTR_HEADER.size:
            # the kernel pads; fewer than 4 stray bytes can only be padding
            if any(data[pos:]):
                raise NetlinkDecodeError("nlattr", pos, "truncated attribute header")
            break
        length, atype = ATTR_HEADER.unpack_from(data, pos)
        if length < ATTR_HEADER.size or pos + length > len(data):
            raise NetlinkDecodeError("nlattr.nla_len", pos, f"{length} does not fit")
        out.items.setdefault(atype & NLA_TYPE_MASK, bytes(data[pos + 4 : pos + length]))
        pos += align4(length)
    return out


class NetlinkSocket:
    """A ``NETLINK_XFRM``-style socket: blocking requests matched by sequence number.

    Requests carry our own port id in ``nlmsg_pid``, so the notifications the kernel multicasts
    about them name us and can be told apart from those other processes cause.
    """

    def __init__(self, protocol: int, groups: int = 0, rcvbuf: int = 1 << 22) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        try:
            self.sock.bind((0, groups))
            self._grow_buffer(rcvbuf)
            self.portid = self.sock.getsockname()[0]
        except OSError:
            self.sock.close()
            raise
        self._seq = 0

    def _grow_buffer(self, size: int) -> None:
        """A 10 000-entry dump or a burst of events must not overflow (ENOBUFS) a default buffer;
        SO_RCVBUFFORCE lifts rmem_max for root, SO_RCVBUF is what anyone else gets."""
        force = getattr(socket, "SO_RCVBUFFORCE", 33)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def join(self, group: int) -> None:
        """Subscribe to one multicast group (``XFRMNLGRP_*``)."""
        self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)

    def next_seq(self) -> int:
        self._seq = (self._seq % 0xFFFFFFFF) + 1
        return self._seq

    def send(self, msg: NlMsg) -> None:
        self.sock.send(msg.encode())

    def recv_batch(self, timeout: float | None) -> list[NlMsg] | None:
        """One datagram's messages, or None when ``timeout`` passes (0: do not wait)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(RECV_BUFFER)
        except (TimeoutError, BlockingIOError):
            return None
        return list(iter_messages(data))

    def transact(
        self, mtype: int, payload: bytes, *, flags: int = 0, timeout: float = 5.0
    ) -> list[NlMsg]:
        """Send one request and return every message of its answer.

        A plain request gets ``NLM_F_ACK`` when it expects no data, so the answer always ends in
        one message: the data, or an ``NLMSG_ERROR`` (errno 0 is the acknowledgement). A dump
        (``NLM_F_DUMP``) ends with ``NLMSG_DONE``. Raises ``OSError`` on an error answer, with
        the kernel's errno, and ``TimeoutError`` when the kernel stays silent.
        """
        seq = self.next_seq()
        self.send(NlMsg(mtype, NLM_F_REQUEST | flags, seq, self.portid, payload))
        out: list[NlMsg] = []
        dump = bool(flags & NLM_F_DUMP)
        while True:
            batch = self.recv_batch(timeout)
            if batch is None:
                raise TimeoutError(errno_mod.ETIMEDOUT, f"no netlink answer to type {mtype}")
            for m in batch:
                if m.seq != seq:
                    continue  # a late answer to an earlier request that timed out
                if m.type == NLMSG_ERROR:
                    if m.error:
                        raise OSError(m.error, os.strerror(m.error))
                    return out
                if m.type == NLMSG_DONE:
                    return out
                if m.type in (NLMSG_NOOP, NLMSG_OVERRUN):
                    continue
                out.append(m)
                if not dump and not (m.flags & NLM_F_MULTI) and not (flags & NLM_F_ACK):
                    return out

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
