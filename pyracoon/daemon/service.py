"""The asyncio edge around the engine: UDP sockets, the kernel socket, one timer, signals.

The engine decides; this module only moves bytes and time (the aioquic shape). Every input --
a datagram, a kernel message, the timer, a signal -- is handed to the engine with the current
time, and then ``pump`` carries out what the engine asked for: datagrams to send, PF_KEY
messages to write (recorded in ``path backupsa`` when they install an SA), log lines, and the
next time to wake up.

Nothing here may stop the daemon because one peer misbehaved: an exception while handling one
input is logged with the peer and the daemon carries on serving the others. The same holds for
a PF_KEY message that cannot be decoded: it is logged (once per kind) and skipped; only a
kernel socket that fails as a whole stops the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import asyncio_dgram

from pyracoon.admin.errors import AdminError
from pyracoon.admin.server import AdminServer
from pyracoon.config import ConfigError, parse_file
from pyracoon.config.model import Config
from pyracoon.engine import Engine
from pyracoon.engine import events as ev
from pyracoon.engine.credentials import Credentials
from pyracoon.engine.half_open import DEFAULT_PER_PEER, DEFAULT_TOTAL, HalfOpen
from pyracoon.kernel import ops
from pyracoon.kernel.base import KernelError, KernelMessageUndecodable, KernelSocket
from pyracoon.kernel.bypass import BypassError, set_bypass

from . import backupsa
from .feed import EventFeed
from .log import Log

Endpoint = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]
HANDLED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}

KERNEL_BEAT = 0.1
"""Seconds between reads of the kernel socket that do not wait for readiness (_poll_kernel)."""


@dataclass
class Listener:
    """One bound ISAKMP socket and the endpoint it stands for."""

    endpoint: Endpoint
    sock: socket.socket
    stream: asyncio_dgram.aio.DatagramStream | None = None
    """Set by ``run``; only ``recv`` and ``close`` are used (sends go through ``sock``)."""


def bind_udp(endpoint: Endpoint, log: Log | None = None) -> socket.socket:
    """A UDP socket bound to ``endpoint``; ``OSError`` says why not (port in use...).

    The socket bypasses IPsec policy (:mod:`.bypass`), so that an SPD entry covering all traffic
    does not catch IKE itself. Failing that is one warning on ``log``, not a reason to stop:
    peers that no policy covers can still be reached.

    No SO_REUSEADDR: for UDP it buys nothing on restart (there is no TIME_WAIT), and on Linux
    it lets a second daemon bind the same address and port as a running one, after which the
    two split the peers' datagrams between them. Without it the second is refused at start.
    """
    addr, port = endpoint
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            option = set_bypass(sock)
        except BypassError as e:
            if log is not None:
                log.warning(f"IKE packets may be caught by IPsec policies: {addr}[{port}]: {e}")
        else:
            if log is not None:
                log.debug(f"{addr}[{port}]: IPsec policy bypassed ({option})")
        sock.bind((str(addr), port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class Options:
    """What the command line adds to the configuration."""

    config_path: str
    debug_count: int = 0
    isakmp_port: int | None = None
    natt_port: int | None = None
    verbose: bool = False
    kernel: str | None = None
    """The ``--kernel`` spec, for the second socket ``pyracoonctl show-sa`` reads the SAD with."""
    include_base: str | None = None
    """The directory relative ``include`` names were taken under at start (the working
    directory then): a detached daemon runs in ``/``, and a reload must find the same files."""
    half_open_max: int = DEFAULT_TOTAL
    """``--half-open-max``: half-open responder ISAKMP-SAs kept (engine/half_open.py)."""
    half_open_per_peer: int = DEFAULT_PER_PEER
    """``--half-open-per-peer``: half-open responder ISAKMP-SAs one address may have."""


class Daemon:
    """One running pyracoon: an engine, its kernel socket and its listeners."""

    def __init__(
        self,
        config: Config,
        options: Options,
        kernel: KernelSocket,
        listeners: list[Listener],
        log: Log,
        *,
        clock: Callable[[], float] = time.monotonic,
        keylog: IO[str] | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        """``credentials``: those of ``config``, already loaded (the start-up checks read
        them); without, the engine loads them."""
        self.config = config
        self.options = options
        self.kernel = kernel
        self.listeners = {lst.endpoint: lst for lst in listeners}
        self.log = log
        self.clock = clock
        """The engine's clock: monotonic, so that a wall-clock step moves no lifetime or
        resend (asyncio's timers run on it too); wall time only for what people read."""
        self.keylog = keylog
        """``--ike-keylog``: where phase-1 keys go (Wireshark's ``ikev1_decryption_table``)."""
        self.engine = Engine(
            config,
            export_ike_keys=keylog is not None,
            wall_time=self.wall_time,
            credentials=credentials,
            half_open=HalfOpen(options.half_open_max, options.half_open_per_peer),
        )
        self.installed: dict[backupsa.SaKey, ops.SaId] = {}
        """SAs this daemon installed, by backupsa's key (satype, dst, spi): what a clean stop
        removes."""
        self._backup_tombstones = 0
        """Tombstones appended to backupsa since it was last rewritten."""
        self.feed = EventFeed()
        """Phase-1/phase-2 outcomes, for ``pyracoonctl show-event`` and ``establish-sa -w``."""
        self.kernel_spec = options.kernel
        self.admin: AdminServer | None = None
        self._stop = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._kernel_beat: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._undecodable_seen: set[tuple[int | None, str, str]] = set()
        """Kinds (type, structure, field) of undecodable kernel messages already logged."""
        self.exit_status = 0

    def wall_time(self, when: float) -> float:
        """Unix time of ``when`` on :attr:`clock` (for show-sa, show-schedule, certificates)."""
        return time.time() - (self.clock() - when)

    # -- life ---------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for lst in self.listeners.values():
            lst.stream = await asyncio_dgram.from_socket(lst.sock)
            self._tasks.append(loop.create_task(self._serve_udp(lst)))
        loop.add_reader(self.kernel.fileno(), self._on_kernel)
        self._poll_kernel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        # Signals that arrived while starting were held back (see cli._start): deliver them now
        # that there is someone to handle them.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        await self._start_admin()
        self.engine.start(self.clock())
        self.pump()
        await self._stop.wait()
        await self._shutdown()
        return self.exit_status

    async def _start_admin(self) -> None:
        from .admin import DaemonAdmin

        try:
            self.admin = AdminServer.from_config(
                self.config.listen.adminsock, DaemonAdmin(self), log=self.log
            )
            if self.admin is not None:
                await self.admin.start()
                self.log.info(f"admin socket {self.config.listen.adminsock.path} ready")
        except (OSError, AdminError) as e:
            self.admin = None
            self.log.error(f"no admin socket, pyracoonctl will not reach this daemon: {e}")

    def stop(self, status: int = 0) -> None:
        self.exit_status = status
        self._stop.set()

    def _on_stop_signal(self, signum: int) -> None:
        self.log.info(f"caught signal {signum}")
        self.stop(0)

    async def _shutdown(self) -> None:
        """Remove the SAs we installed (manual ones stay: racoon's FLUSH of everything is a
        known racoon bug), empty backupsa, close everything."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            loop.remove_reader(self.kernel.fileno())
        if self._kernel_beat is not None:
            self._kernel_beat.cancel()
        # racoon's flushph2()/flushph1(): peers hear a Delete before our SAs go, so they stop
        # sending into them (the datagrams leave now, while the sockets are still open)
        self._guarded("the shutdown", None, lambda: self._farewell())
        for added in list(self.installed.values()):
            what = _sa_name(added)
            try:
                reply = self.kernel.call(ops.DeleteSa(0, added), timeout=1.0)
            except KernelError as e:
                self.log.error(f"pfkey DELETE of {what} failed at shutdown: {e}")
                continue
            if not isinstance(reply, ops.SaEvent):
                self.log.warning(f"pfkey DELETE of {what} at shutdown: unexpected answer")
            elif reply.errno == errno.ESRCH:
                # gone already (a DELETE or FLUSH we did not see): nothing left to remove
                self.log.debug(f"{what} was already gone at shutdown")
            elif reply.errno:
                self.log.warning(f"pfkey DELETE of {what} at shutdown: {os.strerror(reply.errno)}")
        self.installed.clear()
        if self.config.paths.backupsa:
            with contextlib.suppress(OSError):
                backupsa.truncate(self.config.paths.backupsa)
        if self.admin is not None:
            await self.admin.close()
        for task in self._tasks:
            task.cancel()
        for lst in self.listeners.values():
            if lst.stream is not None:
                lst.stream.close()
        if self._timer is not None:
            self._timer.cancel()
        self.log.info(f"pyracoon process {os.getpid()} shutdown")

    # -- inputs -------------------------------------------------------------------------------

    async def _serve_udp(self, lst: Listener) -> None:
        assert lst.stream is not None
        while True:
            try:
                data, addr = await lst.stream.recv()
            except asyncio_dgram.TransportClosed:
                return
            except OSError as e:  # e.g. ICMP port unreachable reported on the socket
                self.log.debug(f"receive on {lst.endpoint[0]}[{lst.endpoint[1]}]: {e.strerror}")
                continue
            assert isinstance(addr, tuple)  # an AF_INET or AF_INET6 peer: (host, port, ...)
            remote = (ipaddress.ip_address(str(addr[0]).split("%")[0]), int(addr[1]))
            if self.options.verbose:
                self.log.info(f"received {len(data)} bytes from {remote[0]}[{remote[1]}]")
            self._guarded(
                f"a datagram from {remote[0]}[{remote[1]}]",
                remote[0],
                functools.partial(
                    self.engine.receive_datagram, data, lst.endpoint, remote, self.clock()
                ),
            )

    def _farewell(self) -> None:
        sent = self.engine.shutdown(self.clock())
        if sent:
            self.log.info(f"sent {sent} Delete message(s) to peers before shutting down")

    def _poll_kernel(self) -> None:
        """Read the kernel socket on a beat too, not only when the event loop says it is readable.

        Linux's af_key does not always wake epoll: in the kernel lab (Linux 6.1) a REGISTER
        reply and the ACQUIREs of a ping sat unread for seconds, until something else woke the
        loop, while poll() and select() saw them. A read that finds nothing is one syscall.
        """
        self._on_kernel()
        if not self._stop.is_set():
            loop = asyncio.get_running_loop()
            self._kernel_beat = loop.call_later(KERNEL_BEAT, self._poll_kernel)

    def _on_kernel(self) -> None:
        while True:
            try:
                event = self.kernel.recv_event(0)
            except KernelMessageUndecodable as e:
                # One message lost, not the kernel: a daemon that stopped here would leave every
                # peer without SAs because of one extension it cannot parse. Say it once per
                # kind of problem, so a kernel that keeps sending it does not flood the log.
                if e.kind not in self._undecodable_seen:
                    self._undecodable_seen.add(e.kind)
                    self.log.error(f"{e}; skipped")
                else:
                    self.log.debug(f"{e}; skipped")
                continue
            except KernelError as e:
                self.log.error(f"lost the kernel: {e}")
                self.stop(1)
                return
            if event is None:
                return
            self._track(event)
            self._guarded(
                f"the kernel's {type(event).__name__}",
                None,
                functools.partial(self.engine.receive_kernel, event, self.clock()),
            )

    def _on_timer(self) -> None:
        self._timer = None
        self._guarded("the timer", None, lambda: self.engine.handle_timer(self.clock()))

    def _guarded(self, what: str, peer: object, action: Callable[[], None]) -> None:
        """Run one engine input; a bug there is logged and does not take the daemon down."""
        try:
            action()
        except Exception as e:  # noqa: BLE001 - the daemon must keep serving other peers
            self.log.error(f"internal error while handling {what}: {type(e).__name__}: {e}", peer)
        self.pump()

    # -- outputs ------------------------------------------------------------------------------

    def pump(self) -> None:
        for event in self.engine.events():
            if isinstance(event, ev.DatagramOut):
                self._send_datagram(event)
            elif isinstance(event, ev.KernelRequest):
                self.send_kernel(event.request)
            elif isinstance(event, ev.LogEvent):
                self.log.event(event, "engine")
            elif isinstance(event, ev.IkeKeys):
                self._write_keylog(event)
            else:
                self.feed.publish(event)
        self._arm_timer()

    def _fallback_listener(self, out: ev.DatagramOut) -> Listener | None:
        """A socket for a datagram whose local address has none: the one the route would use.

        Never a loopback socket for a peer off this host: a datagram from ::1 to a global
        address is dropped by the peer's kernel as a martian (seen on a real kernel).
        """
        remote = out.remote[0]
        same = [x for x in self.listeners.values() if x.endpoint[0].version == remote.version]
        fam = socket.AF_INET6 if remote.version == 6 else socket.AF_INET
        try:
            with socket.socket(fam, socket.SOCK_DGRAM) as probe:
                probe.connect((str(remote), out.remote[1]))
                routed = ipaddress.ip_address(str(probe.getsockname()[0]).split("%")[0])
        except (OSError, ValueError):
            routed = None
        chosen = next((x for x in same if x.endpoint[0] == routed), None)
        if chosen is None:
            chosen = next(
                (x for x in same if remote.is_loopback or not x.endpoint[0].is_loopback), None
            )
        if chosen is not None:
            self.log.debug(
                f"no socket on {out.local[0]}[{out.local[1]}]: sending from "
                f"{chosen.endpoint[0]}[{chosen.endpoint[1]}]",
                remote,
            )
        return chosen

    def _write_keylog(self, keys: ev.IkeKeys) -> None:
        """One ``icookie,key`` row (hex, unquoted: the UAT's byte fields), flushed at once."""
        if self.keylog is None:
            return
        self.keylog.write(f"{keys.initiator_cookie.hex()},{keys.encryption_key.hex()}\n")
        self.keylog.flush()

    def _send_datagram(self, out: ev.DatagramOut) -> None:
        lst = self.listeners.get(out.local) or self._fallback_listener(out)
        if lst is None or lst.stream is None:
            self.log.error(f"no socket to send from {out.local[0]}[{out.local[1]}]", out.remote[0])
            return
        if self.options.verbose:
            self.log.info(f"sending {len(out.data)} bytes to {out.remote[0]}[{out.remote[1]}]")
        try:
            lst.sock.sendto(out.data, (str(out.remote[0]), out.remote[1]))
        except OSError as e:
            self.log.error(f"sendto {out.remote[0]}[{out.remote[1]}] failed: {e.strerror}")

    def send_kernel(self, request: ops.Request) -> None:
        if isinstance(request, ops.InstallSa) and self.config.paths.backupsa:
            try:
                entry = backupsa.entry_from_install(request, time.time())
                backupsa.append(self.config.paths.backupsa, entry)
            except (OSError, backupsa.BackupError) as e:
                self.log.error(f"cannot record the SA in {self.config.paths.backupsa}: {e}")
        try:
            self.kernel.submit(request)
        except KernelError as e:
            self.log.error(f"pfkey {type(request).__name__} failed: {e}")

    def _track(self, event: ops.Event) -> None:
        """Keep ``installed`` current from the kernel's answers and broadcasts."""
        if not isinstance(event, ops.SaEvent):
            return
        if event.errno:
            return
        if event.change in (ops.SaChange.UPDATE, ops.SaChange.ADD):
            if event.ours and event.sa is not None:
                self.installed[backupsa.sa_key(event.sa.id)] = event.sa.id
            return
        if event.change is ops.SaChange.FLUSH:  # it names no SA, only a protocol (or all)
            for key, sa in list(self.installed.items()):
                if event.proto is None or sa.proto is event.proto:
                    del self.installed[key]
                    self._backup_tombstones += 1
            self._backup_forget(None)
            return
        if event.sa is None:
            return
        if event.change in (ops.SaChange.DELETE, ops.SaChange.HARD_EXPIRE):
            key = backupsa.sa_key(event.sa.id)
            if self.installed.pop(key, None) is not None:
                self._backup_forget(key)

    def _backup_forget(self, key: backupsa.SaKey | None) -> None:
        """Tombstone a gone SA in backupsa; rewrite the file when tombstones outnumber the
        live SAs (backupsa.py says why). ``None``: SAs went in bulk (FLUSH), count only."""
        path = self.config.paths.backupsa
        if not path:
            return
        try:
            if key is not None:
                backupsa.forget(path, *key)
                self._backup_tombstones += 1
            if self._backup_tombstones > max(64, len(self.installed)):
                backupsa.compact(path, self.installed)
                self._backup_tombstones = 0
        except (OSError, backupsa.BackupError) as e:
            self.log.error(f"cannot update {path} for a deleted SA: {e}")

    def _arm_timer(self) -> None:
        when = self.engine.next_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if when is None:
            return
        delay = max(0.0, when - self.clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    # -- reconfiguration ----------------------------------------------------------------------

    def reload(self) -> str | None:
        """SIGHUP: parse the file again; a broken one is refused and the old one keeps running.

        Returns None when the new configuration runs, else why not (``FILE:LINE: ...``), so
        that ``pyracoonctl reload-config`` can fail with it instead of only logging it.
        """
        path = self.options.config_path
        try:
            new = parse_file(path, include_base=self.options.include_base).with_command_line(
                isakmp_port=self.options.isakmp_port, natt_port=self.options.natt_port
            )
        except ConfigError as e:
            self.log.error(f"{e}")
            self.log.error(f"configuration reload refused; still running the previous {path}")
            return str(e)
        except OSError as e:
            self.log.error(f"cannot read {path}: {e.strerror}; still running the previous one")
            return f"cannot read {path}: {e.strerror}"
        self.config = new
        self.engine.reload(new, self.clock())
        self.log.reopen()
        self.log.info(f'Reading configuration from "{path}"')
        for w in new.warnings:
            self.log.warning(w.log_line())
        self.pump()
        return None


def _sa_name(added: ops.SaId) -> str:
    """``ESP SA 10.0.0.1->10.0.0.2 spi=0x1234``: which SA a shutdown line is about."""
    return f"{added.proto.name} SA {added.src}->{added.dst} spi={added.spi:#x}"
