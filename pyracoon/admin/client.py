"""The client's end of the admin socket: connect, send one request, read the reply (or replies).

This is what racoonctl's ``com_init``/``com_send``/``com_recv`` do, with the failures turned
into exceptions that say what to check, instead of racoonctl's bare ``kmpstat: ...``.

A reply is read as racoonctl reads it: the 8-byte header first, then the rest of the length
it announces (``ac_len``, plus ``ac_len_high << 16`` when ``ADMIN_FLAG_LONG_REPLY`` is set).
For ``show-event`` the daemon keeps the connection open and pushes one message per event, so
``exchange(..., stream=True)`` keeps reading until the daemon closes it.
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket
from collections.abc import Callable, Iterator, Mapping

from .errors import AdminDecodeError, AdminSocketError
from .protocol import HEADER_LEN, Header, Reply, Request, command_name

DEFAULT_SOCKET = "/var/run/racoon/racoon.sock"
"""Debian's racoon admin socket (upstream racoon uses /var/racoon/racoon.sock)."""
ADMINSOCK_ENV = "PYRACOON_ADMINSOCK"

Trace = Callable[[str, bytes], None]
"""Called with ("request" | "reply", the raw message) for ``pyracoonctl -d``."""


def default_socket_path(environ: Mapping[str, str] = os.environ) -> str:
    """``$PYRACOON_ADMINSOCK`` if set, else Debian's path."""
    return environ.get(ADMINSOCK_ENV) or DEFAULT_SOCKET


class AdminConnectError(AdminSocketError):
    """The admin socket could not be reached; the message says what to check."""

    def __init__(self, path: str, error: OSError) -> None:
        self.path = path
        self.errno = error.errno
        reason = error.strerror or str(error)
        if error.errno in (errno_mod.ENOENT, errno_mod.ECONNREFUSED):
            hint = (f"is pyracoon running, and is {path} its `listen {{ adminsock }}`? "
                    f"(-s PATH or ${ADMINSOCK_ENV} choose another socket)")
        elif error.errno == errno_mod.EACCES:
            hint = ("the socket is root's, mode 0600, unless `listen { adminsock \"PATH\" "
                    "\"owner\" \"group\" MODE; }` says otherwise: run as root or as that "
                    "owner or group")
        else:
            hint = f"is {path} pyracoon's admin socket?"
        super().__init__(f"cannot connect to the admin socket {path} ({reason}): {hint}")


class AdminConnectionClosed(AdminSocketError):
    """The daemon closed the connection before a whole reply arrived."""


class AdminTimeout(AdminSocketError):
    """No reply within the client's time limit."""


class AdminClient:
    """One connection per request, as racoon serves them."""

    def __init__(self, path: str, *, timeout: float | None = 60.0,
                 trace: Trace | None = None) -> None:
        self.path = path
        self.timeout = timeout
        self.trace = trace

    def exchange(self, request: Request, *, stream: bool = False) -> Iterator[Reply]:
        """Send ``request`` and yield its reply; with ``stream`` also every pushed message."""
        data = request.encode()
        if self.trace is not None:
            self.trace("request", data)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
            except OSError as e:
                raise AdminConnectError(self.path, e) from None
            try:
                sock.sendall(data)
                first = True
                while True:
                    reply = self._read_reply(sock, request, allow_eof=not first)
                    if reply is None:
                        return
                    first = False
                    yield reply
                    if not stream or reply.errno:
                        return
            except TimeoutError:
                raise AdminTimeout(
                    f"no reply from the daemon on {self.path} within {self.timeout:g} s "
                    f"({command_name(request.command)})") from None
            except OSError as e:
                raise AdminConnectionClosed(
                    f"the connection to {self.path} failed: {e.strerror or e}") from None
        finally:
            sock.close()

    def _read_reply(self, sock: socket.socket, request: Request,
                    allow_eof: bool) -> Reply | None:
        head = _recv_exactly(sock, HEADER_LEN)
        if not head and allow_eof:
            return None
        if len(head) < HEADER_LEN:
            raise AdminConnectionClosed(
                f"the daemon closed the connection after {len(head)} bytes of the reply "
                f"header: its log should say why")
        h = Header.decode(head)
        length = h.reply_length
        if length < HEADER_LEN:
            raise AdminDecodeError("ac_len", 0, f"the reply says {length} bytes, "
                                   f"shorter than its {HEADER_LEN}-byte header")
        body = _recv_exactly(sock, length - HEADER_LEN)
        if self.trace is not None:
            self.trace("reply", head + body)
        if len(body) < length - HEADER_LEN:
            raise AdminConnectionClosed(
                f"the daemon closed the connection after {HEADER_LEN + len(body)} of the "
                f"{length} bytes its reply announced")
        if h.command != request.command:
            raise AdminDecodeError(
                "ac_cmd", 2, f"a reply to {command_name(h.command)}, but the request was "
                f"{command_name(request.command)}")
        return Reply.decode(head + body)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only when the peer closed the connection."""
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def hexdump(data: bytes) -> str:
    """racoon's ``racoon_hexdump`` layout: 32 bytes a line, a space before every 4 bytes."""
    lines = []
    for start in range(0, len(data), 32):
        chunk = data[start:start + 32]
        lines.append("".join((" " if i % 4 == 0 else "") + f"{b:02x}"
                             for i, b in enumerate(chunk)))
    return "\n".join(lines) + "\n"
