"""The daemon's end of the admin socket: accept, read one request, ask the handler, reply.

racoon's ``admin_init`` creates the socket (owner, group and mode from ``listen { adminsock
"PATH" "owner" "group" MODE; }``, default root:root 0600); ``admin_handler`` accepts a
connection, reads exactly one request and writes one reply. This module does the same on
asyncio, and leaves every decision to an ``AdminHandler`` the daemon provides, so the socket
code can be tested with a fake handler and the daemon never touches bytes.

What we do differently from racoon, and why:

* the socket is bound under umask 0177 and then chmod-ed, so it is never reachable with wider
  permissions than configured, not even for the instant between ``bind`` and ``chmod``;
* an existing path is replaced only if it is a socket nobody answers on: racoon unlinks any
  socket, so a second racoon silently steals the first one's admin socket;
* a malformed request gets an ``EINVAL`` reply and a log line instead of being read past its
  end; a handler that raises gets ``EIO``; neither stops the server;
* racoon reads forever from a client that sends half a request; we give up after
  ``read_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as errno_mod
import grp
import logging
import os
import pwd
import socket
import stat
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol, TypeAlias

from .errors import AdminCommandError, AdminDecodeError, AdminSocketError
from .protocol import (
    HEADER_LEN,
    PYRACOON_VERSION_WAIT,
    AdminCommand,
    AdminIndex,
    AdminProto,
    Header,
    Reply,
    Request,
    XauthCredentials,
    command_name,
    proto_name,
)

if TYPE_CHECKING:
    from pyracoon.config.model import AdminSock

Answer: TypeAlias = bytes | bytearray | str
"""What a handler returns: the reply body. Text is sent as UTF-8; None counts as empty."""

SUN_PATH_MAX = 107  # sizeof(sun_path) - 1 on Linux
_MAX_ERROR_TEXT = 0xFFFF - HEADER_LEN  # an errno reply cannot be long (the field holds errno)


class AdminHandler(Protocol):
    """What the daemon does for each admin command. One method per wire command.

    Each returns the reply body (racoon's binary records for the show commands, see
    ``pyracoon.admin.records``; the certificate bytes for ``get_sa_cert``; None for an empty
    reply), or raises ``AdminCommandError(errno,
    message)``; the errno goes back in ``ac_errno`` as racoon sends it (``ENOENT`` no such SA
    or policy, ``EEXIST`` already established, ``ENOTSUP`` not supported...), the message as
    the reply body.

    racoonctl's ``vpn-connect`` and ``vpn-disconnect`` have no commands of their own on the
    wire: vpn-connect is ``establish_sa(ISAKMP, ...)`` (with ``user`` when ``-u`` is given) and
    vpn-disconnect is ``delete_all_sa_dst``.
    """

    async def reload_config(self) -> Answer | None:
        """``reload-config``: what SIGHUP does."""
        ...

    async def show_schedule(self) -> Answer | None:
        """``show-schedule``: the timers, an array of ``struct scheddump``."""
        ...

    async def show_event(self) -> Answer | AsyncIterator[Answer] | None:
        """``show-event``: an async iterator of ``struct evt_async`` records pushed as they happen.

        With an iterator the server sends an empty reply, then one ``ADMIN_SHOW_EVT`` message per
        item, until the iterator ends or the client goes away (racoon's event subscription).
        """
        ...

    async def show_sa(self, proto: AdminProto, verbose: int) -> Answer | None:
        """``show-sa``: ISAKMP SAs as ``struct ph1dump`` records, IPsec SAs (ipsec = all, esp,
        ah) as the kernel's ``SADB_DUMP`` messages. ``verbose`` is the ``-l`` byte of older
        pyracoonctl requests (0 from racoonctl): the client applies ``-l`` now."""
        ...

    async def flush_sa(self, proto: AdminProto) -> Answer | None:
        """``flush-sa``: ISAKMP SAs (with a Delete to each peer), or IPsec SAs of ``proto``."""
        ...

    async def delete_sa(self, proto: AdminProto, index: AdminIndex) -> Answer | None:
        """``delete-sa``: the phase-1 SAs between ``index.src`` and ``index.dst`` (racoon uses
        the addresses only, whatever ``proto`` says)."""
        ...

    async def establish_sa(self, proto: AdminProto, index: AdminIndex, wait: bool,
                           remote_name: str | None,
                           user: XauthCredentials | None
                           ) -> Answer | AsyncIterator[Answer] | None:
        """``establish-sa``/``vpn-connect``: start phase 1 (ISAKMP) or a quick mode for the
        policy ``index`` selects (ESP/AH). With ``wait`` (pyracoonctl's request version 2)
        answer once the SA is up or has failed. Otherwise it may return an async iterator of
        that SA's ``struct evt_async`` records, ending when the SA is gone: racoon's per-SA
        event subscription, which racoonctl's ``-w`` and ``vpn-connect`` read (the server
        pushes it only to clients of request version 1 or more, as racoon's admin.c).
        ``remote_name`` is ``-n``; ``user`` is ``-u`` (XAUTH login and password)."""
        ...

    async def delete_all_sa_dst(self, proto: AdminProto, index: AdminIndex
                                ) -> Answer | AsyncIterator[Answer] | None:
        """``vpn-disconnect``: every phase-1 SA to ``index.dst``; may return an async iterator
        of every event from then on (racoon subscribes such a client to all events, and
        racoonctl waits for the "Phase 1 deleted" among them)."""
        ...

    async def logout_user(self, login: str) -> Answer | None:
        """``logout-user``: the SAs of an XAUTH login."""
        ...

    async def get_sa_cert(self, index: AdminIndex) -> Answer | None:
        """``get-cert``: the peer certificate of the phase-1 SA ``index.src``-``index.dst``."""
        ...


class AdminLog(Protocol):
    """The three log calls the server makes; ``pyracoon.daemon.log.Log`` provides them."""

    def error(self, text: str) -> None: ...

    def info(self, text: str) -> None: ...

    def debug(self, text: str) -> None: ...


class _StdLog:
    """``AdminLog`` over the standard ``logging`` module, for use outside the daemon."""

    def __init__(self) -> None:
        self._log = logging.getLogger("pyracoon.admin")

    def error(self, text: str) -> None:
        self._log.error(text)

    def info(self, text: str) -> None:
        self._log.info(text)

    def debug(self, text: str) -> None:
        self._log.debug(text)


def resolve_owner(owner: str | int | None) -> int:
    """A user name or uid → uid; None → -1 (leave unchanged)."""
    if owner is None:
        return -1
    if isinstance(owner, int) or owner.isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise AdminSocketError(f"adminsock owner '{owner}' is not a user on this host") from None


def resolve_group(group: str | int | None) -> int:
    """A group name or gid → gid; None → -1 (leave unchanged)."""
    if group is None:
        return -1
    if isinstance(group, int) or group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise AdminSocketError(f"adminsock group '{group}' is not a group on this host") from None


class AdminServer:
    """racoon's admin socket on asyncio. ``await start()``, later ``await close()``.

    ``owner``/``group`` are names or numbers (None leaves the creator's); ``mode`` is the
    socket's permission bits, 0600 by default as racoon's.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        handler: AdminHandler,
        owner: str | int | None = None,
        group: str | int | None = None,
        mode: int = 0o600,
        *,
        log: AdminLog | None = None,
        read_timeout: float = 10.0,
    ) -> None:
        self.path = os.fspath(path)
        self.handler = handler
        self.owner = owner
        self.group = group
        self.mode = mode
        self.log: AdminLog = log or _StdLog()
        self.read_timeout = read_timeout
        self._server: asyncio.AbstractServer | None = None
        self._identity: tuple[int, int] | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(cls, adminsock: AdminSock, handler: AdminHandler, *,
                    log: AdminLog | None = None) -> AdminServer | None:
        """The server ``listen { adminsock ...; }`` asks for; None for ``adminsock disabled``.

        racoon's defaults are root:root. A daemon that does not run as root cannot give its
        socket to root, and the defaults only mean "root's" because racoon always runs as root,
        so an unprivileged daemon (tests, the in-memory kernel) keeps its own ownership unless
        racoon.conf names another owner or group.
        """
        if adminsock.disabled or not adminsock.path:
            return None
        owner: str | None = adminsock.owner
        group: str | None = adminsock.group
        if os.geteuid() != 0 and (owner, group) == ("root", "root"):
            owner = group = None
        return cls(adminsock.path, handler, owner, group, adminsock.mode, log=log)

    async def __aenter__(self) -> AdminServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ socket life

    async def start(self) -> None:
        """Create the socket with its owner, group and mode, and start accepting."""
        sock = self._bind()
        try:
            self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        except BaseException:
            sock.close()
            self._unlink()
            raise
        self.log.debug(f"open {self.path} as racoon management.")

    def _bind(self) -> socket.socket:
        path = self.path
        if not path:
            raise AdminSocketError("the admin socket path is empty")
        if len(os.fsencode(path)) > SUN_PATH_MAX:
            raise AdminSocketError(
                f"admin socket path {path} is {len(os.fsencode(path))} bytes: a Unix socket "
                f"path can have at most {SUN_PATH_MAX}")
        uid, gid = resolve_owner(self.owner), resolve_group(self.group)
        if not 0 <= self.mode <= 0o7777:
            raise AdminSocketError(f"admin socket mode {self.mode:o} is not a permission mode")
        parent = os.path.dirname(path)
        if parent and not os.path.isdir(parent):
            try:
                os.makedirs(parent, 0o755)
            except OSError as e:
                raise AdminSocketError(
                    f"cannot create {parent} for the admin socket: {e.strerror}") from None
        self._remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old_umask = os.umask(0o177)
            try:
                sock.bind(path)
            finally:
                os.umask(old_umask)
        except OSError as e:
            sock.close()
            raise AdminSocketError(f"cannot bind the admin socket {path}: {e.strerror}") from None
        try:
            if uid != -1 or gid != -1:
                os.chown(path, uid, gid)
            os.chmod(path, self.mode)
            st = os.stat(path)
        except OSError as e:
            sock.close()
            self._unlink()
            raise AdminSocketError(
                f"cannot set owner {self.owner}, group {self.group}, mode {self.mode:04o} on "
                f"the admin socket {path}: {e.strerror}") from None
        self._identity = (st.st_dev, st.st_ino)
        return sock

    @staticmethod
    def _remove_stale(path: str) -> None:
        """Unlink a left-over socket; refuse a file that is not a socket, or a live one."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        except OSError as e:
            raise AdminSocketError(f"cannot check {path}: {e.strerror}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise AdminSocketError(
                f"refusing to use {path} as the admin socket: it exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(path)
        except OSError:
            pass  # nobody listening: a socket left by a process that died
        else:
            raise AdminSocketError(
                f"another process is listening on the admin socket {path}: is pyracoon (or "
                "racoon) already running?")
        finally:
            probe.close()
        os.unlink(path)

    async def close(self) -> None:
        """Stop accepting, end running connections, and remove the socket file."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        self._unlink()

    def _unlink(self) -> None:
        """Remove the socket if it is still ours (not one a later process put there)."""
        if self._identity is None:
            return
        with contextlib.suppress(OSError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)
        self._identity = None

    # ------------------------------------------------------------------ one connection

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._one_request(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client left, or we are shutting down
        except Exception as e:  # never let one connection take the server down
            self.log.error(f"admin connection failed: {type(e).__name__}: {e}")
        finally:
            writer.close()
            # close() may cancel us here too; the connection is over either way
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)

    async def _one_request(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readexactly(HEADER_LEN), self.read_timeout)
        except asyncio.IncompleteReadError as e:
            if e.partial:
                self.log.error(f"invalid header length of admin command: {len(e.partial)} "
                               f"bytes, the header has {HEADER_LEN}")
            return
        except TimeoutError:
            self.log.error(f"admin client sent no command within {self.read_timeout:g} s")
            return
        h = Header.decode(head)
        if h.length < HEADER_LEN:
            self._malformed(writer, h, AdminDecodeError(
                "ac_len", 0, f"{h.length} is shorter than the {HEADER_LEN}-byte header"))
            await writer.drain()
            return
        try:
            body = await asyncio.wait_for(reader.readexactly(h.length - HEADER_LEN),
                                          self.read_timeout)
        except (asyncio.IncompleteReadError, TimeoutError) as e:
            got = len(e.partial) if isinstance(e, asyncio.IncompleteReadError) else "fewer"
            self._malformed(writer, h, AdminDecodeError(
                "ac_len", 0, f"says {h.length} bytes but the client sent {HEADER_LEN} + {got}"))
            await writer.drain()
            return
        request = Request(h.command, h.proto, body, h.third if h.flagged else None)
        self.log.debug(f"admin request {command_name(request.command)} "
                       f"proto {proto_name(request.proto)} ({h.length} bytes)")
        reply, stream = await self._dispatch(request)
        try:
            writer.write(self._encode(reply, request))
            await writer.drain()
            if stream is not None and _wants_events(request):
                await self._push(stream, request, reader, writer)
        finally:
            if stream is not None:  # not pushed, or pushed to its end: release it either way
                close = getattr(stream, "aclose", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()

    def _malformed(self, writer: asyncio.StreamWriter, h: Header, e: AdminDecodeError) -> None:
        self.log.error(f"malformed admin command {command_name(h.command)}: {e}")
        writer.write(Reply(h.command, h.proto, errno_mod.EINVAL,
                           _error_body(f"malformed request: {e}")).encode())

    def _encode(self, reply: Reply, request: Request) -> bytes:
        try:
            return reply.encode()
        except Exception as e:  # a handler answer racoon's format cannot carry
            self.log.error(f"admin {command_name(request.command)}: cannot send the reply: {e}")
            return Reply(request.command, request.proto, errno_mod.EFBIG,
                         _error_body(f"the reply cannot be sent: {e}")).encode()

    async def _dispatch(self, request: Request) -> tuple[Reply, AsyncIterator[Answer] | None]:
        """Run the handler; every failure becomes an errno reply."""
        name = command_name(request.command)
        try:
            answer = await self._call(request)
        except AdminCommandError as e:
            self.log.debug(f"admin {name}: {e} (errno {e.errno})")
            return Reply(request.command, request.proto, e.errno, _error_body(e.message)), None
        except AdminDecodeError as e:
            self.log.error(f"malformed admin command {name}: {e}")
            return Reply(request.command, request.proto, errno_mod.EINVAL,
                         _error_body(f"malformed request: {e}")), None
        except Exception as e:
            self.log.error(f"admin {name} failed: {type(e).__name__}: {e}")
            return Reply(request.command, request.proto, errno_mod.EIO,
                         _error_body(f"pyracoon failed: {type(e).__name__}: {e}")), None
        if answer is None:  # a handler with nothing to say: an empty reply, as racoon's
            return Reply(request.command, request.proto, 0, b""), None
        if isinstance(answer, (bytes, bytearray, str)):
            return Reply(request.command, request.proto, 0, _body(answer)), None
        if hasattr(answer, "__aiter__"):
            return Reply(request.command, request.proto, 0, b""), answer
        self.log.error(f"admin {name}: the handler returned a {type(answer).__name__}")
        return Reply(request.command, request.proto, errno_mod.EIO,
                     _error_body(f"pyracoon failed: {name} answered a "
                                 f"{type(answer).__name__}")), None

    async def _call(self, request: Request) -> Answer | AsyncIterator[Answer] | None:
        h = self.handler
        cmd = request.command
        if cmd == AdminCommand.ADMIN_RELOAD_CONF:
            return await h.reload_config()
        if cmd == AdminCommand.ADMIN_SHOW_SCHED:
            return await h.show_schedule()
        if cmd == AdminCommand.ADMIN_SHOW_EVT:
            return await h.show_event()
        if cmd == AdminCommand.ADMIN_SHOW_SA:
            return await h.show_sa(_proto(request), request.verbosity())
        if cmd == AdminCommand.ADMIN_FLUSH_SA:
            return await h.flush_sa(_proto(request))
        if cmd == AdminCommand.ADMIN_DELETE_SA:
            return await h.delete_sa(_proto(request), request.index())
        if cmd in (AdminCommand.ADMIN_ESTABLISH_SA, AdminCommand.ADMIN_ESTABLISH_SA_PSK):
            proto = _proto(request, (AdminProto.ADMIN_PROTO_ISAKMP, AdminProto.ADMIN_PROTO_ESP,
                                     AdminProto.ADMIN_PROTO_AH))
            index, remote_name, user = request.establish()
            wait = (request.version or 0) >= PYRACOON_VERSION_WAIT
            return await h.establish_sa(proto, index, wait, remote_name, user)
        if cmd == AdminCommand.ADMIN_DELETE_ALL_SA_DST:
            return await h.delete_all_sa_dst(_proto(request), request.index())
        if cmd == AdminCommand.ADMIN_LOGOUT_USER:
            return await h.logout_user(request.login())
        if cmd == AdminCommand.ADMIN_GET_SA_CERT:
            _proto(request, (AdminProto.ADMIN_PROTO_ISAKMP,))
            return await h.get_sa_cert(request.index())
        self.log.error(f"invalid command: {cmd}")
        raise AdminCommandError(errno_mod.ENOTSUP, f"unknown admin command 0x{cmd:04x}")

    async def _push(self, stream: AsyncIterator[Answer], request: Request,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send each item of ``stream`` as its own message until it ends or the client leaves.

        Every pushed message is an ``ADMIN_SHOW_EVT`` with protocol 0, whatever the request
        was: racoon's evt.c builds them so (``evtmsg_create``), and racoonctl recognises an
        event by that command, also after an ``establish-sa`` or ``vpn-disconnect``. When the
        stream ends the connection is closed, as racoon's ``evt_list_cleanup`` closes the
        listeners of an SA that is gone; racoonctl still waiting then fails."""
        items = stream.__aiter__()
        gone = asyncio.ensure_future(reader.read(1))  # b"" when the client closes
        try:
            while True:
                nxt: asyncio.Future[Answer] = asyncio.ensure_future(_anext(items))
                either: set[asyncio.Future[Answer] | asyncio.Future[bytes]] = {nxt, gone}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    with contextlib.suppress(BaseException):
                        await nxt
                    return
                try:
                    item = nxt.result()
                except StopAsyncIteration:
                    return
                writer.write(self._encode(Reply(AdminCommand.ADMIN_SHOW_EVT, 0, 0, _body(item)),
                                          request))
                await writer.drain()
        finally:
            gone.cancel()


def _wants_events(request: Request) -> bool:
    """Whether the client reads events pushed after the reply. racoon's admin.c subscribes an
    ``establish-sa`` connection only when the request's version is 1 or more (racoonctl always
    sends 1; a version-0 client reads one reply and leaves)."""
    if request.command in (AdminCommand.ADMIN_ESTABLISH_SA, AdminCommand.ADMIN_ESTABLISH_SA_PSK):
        return (request.version or 0) >= 1
    return True


async def _anext(items: AsyncIterator[Answer]) -> Answer:
    return await items.__anext__()


def _proto(request: Request,
           allowed: tuple[AdminProto, ...] = tuple(AdminProto)) -> AdminProto:
    """``ac_proto`` as an ``AdminProto``, or ENOTSUP as racoon answers an unknown one."""
    try:
        proto = AdminProto(request.proto)
    except ValueError:
        proto = None
    if proto is None or proto not in allowed:
        raise AdminCommandError(
            errno_mod.ENOTSUP,
            f"{command_name(request.command)} does not take protocol {proto_name(request.proto)}")
    return proto


def _body(answer: Answer) -> bytes:
    if isinstance(answer, str):
        return answer.encode()
    return answer if isinstance(answer, bytes) else bytes(answer)  # bytes (and subclasses) as is


def _error_body(text: str) -> bytes:
    return text.encode()[:_MAX_ERROR_TEXT]

