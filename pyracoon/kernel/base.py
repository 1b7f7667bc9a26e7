"""The one kernel interface the rest of pyracoon uses: a key socket, whatever is behind it.

The daemon and the engine speak the backend-neutral vocabulary of :mod:`.ops`: ``submit`` a
request, ``recv_event`` replies and broadcasts, ``call`` for a request whose answer is awaited.
``pysetkey`` is a PF_KEY program by definition (its ``-x`` prints PF_KEY messages, its input is
setkey's, which is PF_KEY's) and sends and receives PF_KEY v2 ``Message`` objects with ``send``,
``recv``, ``request`` and ``dump``, exactly as setkey talks to a KAME kernel.  By default the
vocabulary goes through the PF_KEY codec (:mod:`.pfkey_codec`) to ``send``/``recv``; a backend
with a codec of its own (XFRM) overrides ``submit``/``recv_event``/``call``.  What answers
depends on the backend chosen by ``open_kernel``:

``pfkey``
    a real ``AF_KEY`` socket (BSD; Linux with ``af_key`` loaded).
``unix:PATH``
    a ``pyracoon-kernel`` process serving one simulated kernel on a Unix socket, so that several
    processes share one simulated host kernel as they would share a real one.
``xfrm``
    Linux XFRM netlink (``xfrm_user``), ``pyracoon.kernel.xfrm.XfrmSocket`` -- every Linux has
    it, unlike ``af_key``.  The vocabulary goes to netlink directly there; PF_KEY messages
    (pysetkey's) are translated.
``auto``
    whatever this machine has: ``xfrm`` on Linux when an XFRM netlink socket opens, else
    ``pfkey`` (BSD, or a Linux without ``xfrm_user``). A socket's ``backend`` says which was taken.

A socket receives replies to its own requests *and* broadcasts caused by other sockets (an SA
added by another process, an ACQUIRE, an EXPIRE); ``request`` waits for the reply that matches
its own type, seq and pid and keeps anything else for the next ``recv``.

A message the codec cannot decode (a newer kernel's extension laid out in a way we do not know,
a kernel bug) costs that message, never the socket: ``recv`` raises
``KernelMessageUndecodable``, which says what could be read of it, and the next ``recv`` goes
on with the next message. ``request`` and ``dump`` keep such messages for ``recv`` like any
other broadcast -- unless the header shows it is the answer they wait for: then the request
ends at once with a plain ``KernelError`` (its outcome is unknown, and waiting would only end
in a timeout), and a dump skips that entry and, after its last reply, says how many it could
not read.
"""

from __future__ import annotations

import errno as errno_mod
import json
import os
import socket
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import ops, pfkey_codec
from .pfkey import (
    HEADER,
    LINUX,
    Message,
    PfkeyDecodeError,
    SockaddrLayout,
    decode,
    encode,
    native_layout,
)
from .sadb import MsgType, name_of

KERNEL_ENV = "PYRACOON_KERNEL"
AF_KEY = getattr(socket, "AF_KEY", 15)
MAX_MESSAGE = 1 << 19  # sadb_msg_len is 16 bits of 64-bit words: 512 KiB


def _stderr_notice(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class KernelError(Exception):
    """A kernel backend could not be used or misbehaved; the message is meant for a person."""


class KernelUnavailable(KernelError):
    """The selected backend does not exist on this machine."""


class KernelMessageUndecodable(KernelError):
    """One message from the kernel could not be decoded; the socket itself is fine.

    A daemon logs it and reads on. It carries the decode error (structure, field, offset) and,
    when the 16-byte ``sadb_msg`` header is there, the message's type, seq and pid, which is
    how ``request`` and ``dump`` tell their own answers from other sockets' broadcasts.
    """

    def __init__(self, data: bytes, error: PfkeyDecodeError) -> None:
        self.data = bytes(data)
        self.error = error
        self.msg_type: int | None = None
        self.seq: int | None = None
        self.pid: int | None = None
        if len(self.data) >= HEADER.size:
            _, self.msg_type, _, _, _, _, self.seq, self.pid = HEADER.unpack_from(self.data)
        super().__init__(
            f"cannot decode a PF_KEY message from the kernel: {self.type_name} "
            f"{error.where}.{error.field} at offset {error.offset}: {error.reason}"
        )

    @property
    def type_name(self) -> str:
        """``SADB_X_SPDDUMP``, ``SADB_99`` for a type we do not know, or why there is none."""
        if self.msg_type is None:
            return "(no header)"
        return f"SADB_{name_of(MsgType, self.msg_type)}"

    @property
    def kind(self) -> tuple[int | None, str, str]:
        """What makes two of these "the same problem": the message type and the field."""
        return (self.msg_type, self.error.where, self.error.field)

    def answers(self, msg_type: int, pid: int, seq: int | None = None) -> bool:
        """Is this, by its header, the kernel's answer to our ``msg_type`` (and ``seq``)?"""
        return (
            self.msg_type == msg_type
            and self.pid == pid
            and (seq is None or self.seq == seq)
        )


def decode_from_kernel(data: bytes, layout: SockaddrLayout = LINUX) -> Message:
    """``decode`` for bytes a kernel sent: a malformed message is ``KernelMessageUndecodable``."""
    try:
        return decode(data, layout)
    except PfkeyDecodeError as e:
        raise KernelMessageUndecodable(data, e) from e


class KernelSocket(ABC):
    """A PF_KEY socket: ``send`` a message, ``recv`` replies and broadcasts."""

    backend = "in-process"
    """What answers, as ``--kernel`` names it (logged once at start-up)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._backlog: deque[Message | KernelMessageUndecodable] = deque()
        """Messages ``request``/``dump`` read that were not theirs, undecodable ones included."""
        self._seq = 0
        self.notice: Callable[[str], None] = _stderr_notice
        """Where a backend says what a person must fix (``modprobe esp4``); the daemon points it
        at its log, the command-line tools leave it on standard error."""

    def next_seq(self) -> int:
        """A fresh ``sadb_msg_seq`` for a request from this socket."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return self._seq

    @abstractmethod
    def send(self, msg: Message) -> None:
        """Hand one message to the kernel."""

    @abstractmethod
    def _recv(self, timeout: float | None) -> Message | None:
        """The next message from the kernel, or None when ``timeout`` seconds pass first."""

    def recv(self, timeout: float | None = None) -> Message | None:
        """The next message, or None after ``timeout`` seconds.

        Raises ``KernelMessageUndecodable`` for a message that cannot be decoded (call again
        for the next one), ``KernelError`` when the socket itself fails.
        """
        if self._backlog:
            item = self._backlog.popleft()
            if isinstance(item, KernelMessageUndecodable):
                raise item
            return item
        return self._recv(timeout)

    def request(self, msg: Message, timeout: float = 1.0) -> Message:
        """Send ``msg`` and return the kernel's reply to it (errno set on failure).

        setkey waits one second for each reply; so do we. Broadcasts that arrive meanwhile are
        kept, in order, for ``recv``.
        """
        if not msg.pid:
            msg.pid = self.pid
        if not msg.seq:
            msg.seq = self.next_seq()
        self.send(msg)
        kept: list[Message | KernelMessageUndecodable] = []
        try:
            while True:
                try:
                    reply = self._recv(timeout)
                except KernelMessageUndecodable as bad:
                    if bad.answers(msg.type, msg.pid, msg.seq):
                        raise KernelError(
                            f"the kernel's reply to SADB_{name_of(MsgType, msg.type)} could not "
                            f"be decoded: {bad.error}"
                        ) from bad
                    kept.append(bad)
                    continue
                if reply is None:
                    raise KernelError(
                        f"the kernel did not answer SADB message type {msg.type} within "
                        f"{timeout:g} s"
                    )
                if reply.type == msg.type and reply.seq == msg.seq and reply.pid == msg.pid:
                    return reply
                kept.append(reply)
        finally:
            self._backlog.extend(kept)

    def dump(
        self,
        satype: int = 0,
        *,
        policies: bool = False,
        timeout: float = 2.0,
        skipped: list[KernelMessageUndecodable] | None = None,
    ) -> list[Message]:
        """Every SA of ``satype`` (0: all), or every policy with ``policies``: DUMP/X_SPDDUMP.

        A dump is answered by one reply per entry, whose ``seq`` is 0 on the last (KAME counts
        down to it, Linux counts up from 1 and ends on 0), so ``request`` cannot wait for it.
        An empty table (ENOENT) is an empty list; any other errno, or silence for ``timeout``
        seconds, is a ``KernelError``. Broadcasts arriving in between are kept for ``recv``.

        An entry that cannot be decoded is read past, so the dump still ends in step with the
        kernel. With ``skipped`` given, such entries are appended to it and the others
        returned; without, the dump is a ``KernelError`` naming the first of them.
        """
        mtype = MsgType.X_SPDDUMP if policies else MsgType.DUMP
        self.send(Message(mtype, 0 if policies else satype, seq=self.next_seq(), pid=self.pid))
        out: list[Message] = []
        bad_entries: list[KernelMessageUndecodable] = []
        kept: list[Message | KernelMessageUndecodable] = []

        def finish() -> list[Message]:
            if bad_entries and skipped is None:
                raise KernelError(
                    f"{len(bad_entries)} of the kernel's {len(out) + len(bad_entries)} dump "
                    f"replies could not be decoded: {bad_entries[0].error}"
                )
            if skipped is not None:
                skipped.extend(bad_entries)
            return out

        try:
            while True:
                try:
                    m = self._recv(timeout)
                except KernelMessageUndecodable as bad:
                    if not bad.answers(mtype, self.pid):
                        kept.append(bad)
                        continue
                    bad_entries.append(bad)
                    if bad.seq == 0:
                        return finish()
                    continue
                if m is None:
                    raise KernelError(f"the kernel stopped answering the dump after {len(out)}")
                if m.type != mtype or m.pid != self.pid:
                    kept.append(m)
                    continue
                if m.errno == errno_mod.ENOENT:
                    return finish()
                if m.errno:
                    raise KernelError(f"the kernel refused the dump: {os.strerror(m.errno)}")
                out.append(m)
                if m.seq == 0:
                    return finish()
        finally:
            self._backlog.extend(kept)

    # -- the vocabulary ---------------------------------------------------------------------

    def submit(self, request: ops.Request) -> None:
        """Hand one request to the kernel; its answer comes as an event from ``recv_event``."""
        self.send(pfkey_codec.message_of(request, self.pid))

    def recv_event(self, timeout: float | None = None) -> ops.Event | None:
        """The next reply or broadcast as an event, or None after ``timeout`` seconds.

        Raises as ``recv`` does: ``KernelMessageUndecodable`` costs one message, not the socket.
        """
        msg = self.recv(timeout)
        return None if msg is None else pfkey_codec.event_of(msg, self.pid)

    def call(self, request: ops.Request, timeout: float = 1.0) -> ops.Event:
        """Submit ``request`` and wait for the kernel's answer to it (errno set on refusal).

        A request without a ``seq`` gets a fresh one; broadcasts that arrive meanwhile are kept
        for ``recv_event``.
        """
        if not request.seq:
            request = replace(request, seq=self.next_seq())
        reply = self.request(pfkey_codec.message_of(request, self.pid), timeout)
        return pfkey_codec.event_of(reply, self.pid)

    def now(self) -> float:
        """The kernel's clock, in seconds since the epoch: what its lifetimes count from.

        A real kernel's is the wall clock. A simulated one may run on a manual clock
        (``pyracoon-kernel --manual-clock`` and ``advance``); ``setkey -D``'s ``current:`` and
        ``diff:`` lines must then come from that clock, not from this machine's.
        """
        return time.time()

    def fileno(self) -> int:
        """A descriptor that becomes readable when a message waits (for event loops)."""
        raise KernelError(f"{type(self).__name__} has no file descriptor")

    def close(self) -> None:  # noqa: B027 - a socket without resources has nothing to release
        """Release the socket."""

    def __enter__(self) -> KernelSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _DatagramKernelSocket(KernelSocket):
    """A kernel reached through a socket that keeps message boundaries."""

    def __init__(self, sock: socket.socket, layout: SockaddrLayout, where: str) -> None:
        super().__init__()
        self.sock = sock
        self.layout = layout
        self.where = where

    def send(self, msg: Message) -> None:
        try:
            self.sock.send(encode(msg, self.layout))
        except OSError as e:
            raise KernelError(f"cannot send to the kernel at {self.where}: {e.strerror}") from e

    def _recv(self, timeout: float | None) -> Message | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(MAX_MESSAGE)
        except (TimeoutError, BlockingIOError):
            return None
        except OSError as e:
            raise KernelError(f"cannot read from the kernel at {self.where}: {e.strerror}") from e
        if not data:
            raise KernelError(f"the kernel at {self.where} closed the connection")
        return decode_from_kernel(data, self.layout)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


class PfkeySocket(_DatagramKernelSocket):
    """A real ``PF_KEY_V2`` socket (RFC 2367 section 2.1)."""

    backend = "pfkey"

    def __init__(self) -> None:
        try:
            sock = socket.socket(AF_KEY, socket.SOCK_RAW, 2)
        except OSError as e:
            if e.errno in (errno_mod.EAFNOSUPPORT, errno_mod.EPROTONOSUPPORT, errno_mod.EINVAL):
                raise KernelUnavailable(
                    "this system has no PF_KEY socket (AF_KEY is not supported by this kernel; on "
                    "Linux load the af_key module): start a simulated kernel with "
                    "'pyracoon-kernel --listen PATH' and use '--kernel unix:PATH' instead"
                ) from e
            if e.errno in (errno_mod.EPERM, errno_mod.EACCES):
                raise KernelUnavailable(
                    "opening the PF_KEY socket needs root (or CAP_NET_ADMIN): run as root, or "
                    "use '--kernel unix:PATH' with a pyracoon-kernel"
                ) from e
            raise KernelUnavailable(f"cannot open a PF_KEY socket: {e.strerror}") from e
        super().__init__(sock, native_layout(), "PF_KEY")


class UnixKernelSocket(_DatagramKernelSocket):
    """A connection to ``pyracoon-kernel --listen PATH`` (SOCK_SEQPACKET keeps message bounds)."""

    backend = "unix"

    def __init__(self, path: str) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            raise KernelUnavailable(
                f"no simulated kernel at {path} ({e.strerror}): start one with "
                f"'pyracoon-kernel --listen {path}'"
            ) from e
        super().__init__(sock, LINUX, path)
        self.path = path

    def now(self) -> float:
        """The simulated kernel's clock (``{"op": "now"}``), which ``advance`` may have moved."""
        reply = control_request(self.path, {"op": "now"})
        if "now" not in reply:
            raise KernelError(f"the kernel at {self.path} did not say its time: {reply}")
        return float(reply["now"])


def control_request(path: str, req: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one JSON control request to ``pyracoon-kernel`` at ``path`` and return its answer.

    It goes on a connection of its own, so the PF_KEY messages of a socket in use are never
    mixed with JSON; PF_KEY broadcasts that reach this connection meanwhile are skipped.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        try:
            s.connect(path)
        except OSError as e:
            raise KernelUnavailable(f"no simulated kernel at {path} ({e.strerror})") from e
        s.settimeout(timeout)
        try:
            s.send(json.dumps(req).encode())
            while True:
                data = s.recv(MAX_MESSAGE)
                if not data:
                    raise KernelError(f"the kernel at {path} closed the connection")
                if data[:1] == b"{":
                    # text that starts with "{" parses to an object or not at all
                    reply: dict[str, Any] = json.loads(data)
                    return reply
        except TimeoutError:
            raise KernelError(f"the kernel at {path} did not answer within {timeout:g} s") from None


#: The backends ``open_kernel`` can open in this version, as ``--kernel`` spells them. Messages
#: and usage lines list these, so a backend added here is offered everywhere at once.
BACKENDS = ("auto", "xfrm", "pfkey", "unix:PATH")
BACKENDS_TEXT = "|".join(BACKENDS)


def open_kernel(spec: str | None = None) -> KernelSocket:
    """Open the kernel named by ``spec``, else by ``$PYRACOON_KERNEL``, else ``auto``.

    Raises ``KernelUnavailable`` with one sentence a person can act on.
    """
    spec = spec or os.environ.get(KERNEL_ENV) or "auto"
    if spec.startswith("unix:"):
        path = spec[len("unix:") :]
        if not path:
            raise KernelUnavailable("--kernel unix: needs the socket path, as in unix:/run/k.sock")
        return UnixKernelSocket(path)
    if spec == "pfkey":
        return PfkeySocket()
    if spec == "xfrm":
        from .xfrm import XfrmSocket

        return XfrmSocket()
    if spec == "auto":
        if sys.platform.startswith("linux"):
            from .xfrm import XfrmSocket, xfrm_available

            if xfrm_available():
                return XfrmSocket()
        return PfkeySocket()
    raise KernelUnavailable(f"unknown kernel {spec!r}: choose one of {', '.join(BACKENDS)}")

