"""``pyracoon-kernel``: one simulated kernel shared by several processes over a Unix socket.

On a host without PF_KEY, ``pysetkey`` and ``pyracoon`` still need to share one SAD and SPD, the
way setkey and racoon share the host kernel. This program keeps one ``InMemoryKernel`` and serves
it on a ``SOCK_SEQPACKET`` Unix socket, one PF_KEY message per packet, in the same wire format as
a Linux AF_KEY socket. Clients select it with ``--kernel unix:PATH`` or ``PYRACOON_KERNEL``.

The socket also carries the two things a simulated host needs that PF_KEY has no words for,
as JSON objects (a PF_KEY message always starts with the version byte 2, a JSON one with ``{``):

* ``{"op": "output", "src": .., "dst": .., "proto": 17, "sport": 0, "dport": 0}`` passes a packet
  through the SPD (``"op": "input"`` for an arriving one), which may send an ACQUIRE;
* ``{"op": "advance", "seconds": N}`` moves a ``--manual-clock`` forward, firing lifetimes.

The ``packet`` and ``advance`` sub-commands send those from the shell. For tests only, a server
started ``--test-hooks`` also takes ``{"op": "inject", "hex": ".."}``: those bytes go, as they
are, to every other connection as if the kernel had sent them -- the one way to show a client a
message no simulated kernel would produce (a malformed one, a type it does not know).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import selectors
import signal
import socket
import stat
import sys
import time
from collections import deque
from typing import Any

from .base import KERNEL_ENV, KernelError, control_request
from .memory import InMemoryKernel
from .memory_tables import Endpoint
from .pfkey import PfkeyDecodeError, decode


class ManualClock:
    """A clock that moves only when told to (``advance``), for reproducible lifetimes."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ServerError(Exception):
    """The server cannot start; the message says why and what to do."""


class KernelServer:
    """The accept/read/write loop around one ``InMemoryKernel``."""

    TICK = 0.25

    def __init__(
        self,
        path: str,
        *,
        manual_clock: bool = False,
        verbose: bool = False,
        test_hooks: bool = False,
    ) -> None:
        self.path = path
        self.clock = ManualClock() if manual_clock else None
        self.kernel = InMemoryKernel(self.clock or time.time)
        self.verbose = verbose
        self.test_hooks = test_hooks
        """Whether ``inject`` is allowed: off unless a test asks, since it lets one client
        send any bytes to all the others."""
        self.sel = selectors.DefaultSelector()
        self.conns: dict[socket.socket, tuple[Endpoint, deque[bytes]]] = {}
        self.deaf: set[socket.socket] = set()
        """Connections whose reading side is gone; their requests are still processed."""
        self.stopping = False
        self._lock_fd: int | None = None
        self.listener: socket.socket | None = None

    # -- start and stop -----------------------------------------------------------------------

    def bind(self) -> None:
        """Take the path, refusing it while another server holds it."""
        lock_path = self.path + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise ServerError(f"cannot create {lock_path}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ServerError(
                f"another pyracoon-kernel is already serving {self.path}; stop it first "
                "or choose another path"
            ) from None
        self._lock_fd = fd
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                self.close()
                raise ServerError(f"{self.path} exists and is not a socket; refusing to replace it")
            os.unlink(self.path)  # left behind by a server that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            old = os.umask(0o177)
            try:
                sock.bind(self.path)
            finally:
                os.umask(old)
            sock.listen(16)
        except OSError as e:
            sock.close()
            self.close()
            raise ServerError(f"cannot listen on {self.path}: {e.strerror}") from e
        sock.setblocking(False)
        self.listener = sock
        self.sel.register(sock, selectors.EVENT_READ)

    def close(self) -> None:
        for conn in list(self.conns):
            self._drop(conn)
        if self.listener is not None:
            self.sel.unregister(self.listener)
            self.listener.close()
            self.listener = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path + ".lock")
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the loop -----------------------------------------------------------------------------

    def serve(self) -> None:
        while not self.stopping:
            for key, events in self.sel.select(self.TICK):
                sock = key.fileobj
                if sock is self.listener:
                    self._accept()
                    continue
                assert isinstance(sock, socket.socket)  # the selector holds only sockets
                if events & selectors.EVENT_READ:
                    self._read(sock)
                if events & selectors.EVENT_WRITE and sock in self.conns:
                    self._write(sock)
            self.kernel.tick()
            self._flush_queues()

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.conns[conn] = (self.kernel.attach(), deque())
        self.sel.register(conn, selectors.EVENT_READ)

    def _drop(self, conn: socket.socket) -> None:
        self.deaf.discard(conn)
        ep, _ = self.conns.pop(conn)
        self.kernel.detach(ep)
        self.sel.unregister(conn)
        conn.close()

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(1 << 19)
        except BlockingIOError:
            return
        except ConnectionResetError:
            # The client closed while replies we sent it were still unread. Linux then sets a
            # one-shot ECONNRESET on our end, and recv reports it *before* the requests the
            # client queued ahead of its close; the next recv returns them, then EOF. So this
            # is not the end: stop sending to it and keep reading, as a kernel still carries
            # out what a PF_KEY socket wrote before it was closed.
            self._go_deaf(conn)
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        ep, out = self.conns[conn]
        if data[:1] == b"{":
            answer = json.dumps(self._control(data, ep)).encode()
            if conn not in self.deaf:
                out.append(answer)
        else:
            if self.verbose:
                self._log(">", data)
            self.kernel.handle(ep, data)
        self._flush_queues()

    def _control(self, data: bytes, sender: Endpoint) -> dict[str, Any]:
        """Answer a JSON control request (packets, the manual clock, test hooks)."""
        try:
            req = json.loads(data)
            op = req["op"]
            if op == "inject":
                if not self.test_hooks:
                    return {"error": "inject is a test hook; start the kernel --test-hooks"}
                raw = bytes.fromhex(req["hex"])
                others = [ep for ep in self.kernel.endpoints.values() if ep.id != sender.id]
                for ep in others:
                    ep.deliver(raw)
                return {"delivered": len(others)}
            if op == "now":
                return {"now": self.kernel.clock()}
            if op == "advance":
                if self.clock is None:
                    return {"error": "this kernel runs on the real clock; start it --manual-clock"}
                self.clock.advance(float(req["seconds"]))
                self.kernel.tick()
                return {"now": self.clock.now}
            if op in ("output", "input"):
                fn = self.kernel.output if op == "output" else self.kernel.input
                kw = {k: int(req[k]) for k in ("proto", "sport", "dport", "size") if k in req}
                if op == "input" and req.get("spi") is not None:
                    kw["spi"] = int(req["spi"])
                res = fn(req["src"], req["dst"], **kw)
                return {
                    "verdict": res.verdict.name.lower(),
                    "policy_id": res.policy_id,
                    "spis": res.spis,
                    "acquired": res.acquired,
                    "reason": res.reason,
                }
            return {"error": f"unknown op {op!r}"}
        except (ValueError, KeyError, TypeError) as e:
            return {"error": f"bad control request: {e}"}

    def _flush_queues(self) -> None:
        for conn, (ep, out) in list(self.conns.items()):
            while ep.queue:
                data = ep.queue.popleft()
                if self.verbose:
                    self._log("<", data)
                if conn not in self.deaf:
                    out.append(data)
            if out:
                self._write(conn)

    def _write(self, conn: socket.socket) -> None:
        _, out = self.conns[conn]
        try:
            while out:
                conn.send(out[0])
                out.popleft()
        except BlockingIOError:
            pass
        except OSError:
            # The client stopped reading (it may have sent its last requests and closed).
            self._go_deaf(conn)
            return
        want_write = bool(out) and conn not in self.deaf
        self.sel.modify(conn, selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0))

    def _go_deaf(self, conn: socket.socket) -> None:
        """Stop sending to ``conn`` but keep reading it until EOF.

        A client that closes right after writing has its last requests still queued here; they
        are carried out, as a kernel does with what a closed PF_KEY socket wrote, and what it
        would have received is dropped.
        """
        _, out = self.conns[conn]
        out.clear()
        self.deaf.add(conn)
        self.sel.modify(conn, selectors.EVENT_READ)

    def _log(self, arrow: str, data: bytes) -> None:
        try:
            text = decode(data).describe()
        except PfkeyDecodeError as e:
            text = str(e)
        print(f"pyracoon-kernel: {arrow} {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# command line


def _control_request(spec: str | None, req: dict[str, Any]) -> dict[str, Any]:
    spec = spec or os.environ.get(KERNEL_ENV) or ""
    if not spec.startswith("unix:"):
        raise KernelError("packet and advance need a simulated kernel: --kernel unix:PATH")
    return control_request(spec[5:], req)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyracoon-kernel",
        description="Serve a simulated PF_KEY kernel on a Unix socket, or drive one.",
        epilog="examples:\n"
        "  pyracoon-kernel --listen /tmp/k.sock --background --pidfile /tmp/k.pid\n"
        "  pyracoon-kernel --kernel unix:/tmp/k.sock packet 10.0.0.1 10.0.0.2 udp 5000 53\n"
        "  pyracoon-kernel --kernel unix:/tmp/k.sock advance 180",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--listen", metavar="PATH", help="serve a new simulated kernel at PATH")
    p.add_argument(
        "--background",
        action="store_true",
        help="with --listen: return once PATH accepts connections, serving on in the background",
    )
    p.add_argument("--pidfile", metavar="FILE", help="with --listen: write the server's pid here")
    p.add_argument("--manual-clock", action="store_true", help="time moves only by 'advance'")
    p.add_argument("-v", "--verbose", action="store_true", help="log every PF_KEY message")
    p.add_argument(
        "--test-hooks", action="store_true", help="accept the 'inject' control request (tests)"
    )
    p.add_argument(
        "--kernel", metavar="unix:PATH", help=f"the kernel to drive (default ${KERNEL_ENV})"
    )
    sub = p.add_subparsers(dest="command")
    pk = sub.add_parser("packet", help="pass one packet through the SPD")
    pk.add_argument("src")
    pk.add_argument("dst")
    pk.add_argument("proto", nargs="?", default="udp", help="tcp, udp, icmp, icmp6 or a number")
    pk.add_argument("sport", nargs="?", type=int, default=0)
    pk.add_argument("dport", nargs="?", type=int, default=0)
    pk.add_argument("--in", dest="inbound", action="store_true", help="an arriving packet")
    pk.add_argument("--spi", type=lambda s: int(s, 0), help="arrived inside ESP with this SPI")
    pk.add_argument("--size", type=int, default=64)
    adv = sub.add_parser("advance", help="move a --manual-clock kernel forward")
    adv.add_argument("seconds", type=float)
    return p


PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "icmp6": 58, "ipv6-icmp": 58, "any": 255}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.listen:
            return _serve(args)
        if args.command == "packet":
            proto = PROTOCOLS.get(args.proto) if not args.proto.isdigit() else int(args.proto)
            if proto is None:
                raise KernelError(f"unknown protocol {args.proto!r}")
            req = {
                "op": "input" if args.inbound else "output",
                "src": args.src,
                "dst": args.dst,
                "proto": proto,
                "sport": args.sport,
                "dport": args.dport,
                "size": args.size,
                "spi": args.spi,
            }
            res = _control_request(args.kernel, req)
            if "error" in res:
                raise KernelError(res["error"])
            line = f"{res['verdict']}"
            if res["spis"]:
                line += " spi=" + ",".join(f"{s:#x}" for s in res["spis"])
            if res["acquired"]:
                line += " (ACQUIRE sent)"
            if res["reason"]:
                line += f" ({res['reason']})"
            print(line)
            return 0
        if args.command == "advance":
            res = _control_request(args.kernel, {"op": "advance", "seconds": args.seconds})
            if "error" in res:
                raise KernelError(res["error"])
            return 0
        build_parser().print_usage(sys.stderr)
        print("pyracoon-kernel: give --listen PATH, or a packet/advance command", file=sys.stderr)
        return 2
    except (KernelError, ServerError) as e:
        print(f"pyracoon-kernel: {e}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    path = os.path.abspath(args.listen)  # removed at the end, wherever we are by then
    server = KernelServer(
        path, manual_clock=args.manual_clock, verbose=args.verbose, test_hooks=args.test_hooks
    )

    def stop(signum: int, frame: object) -> None:
        server.stopping = True

    # before the fork: a SIGTERM sent as soon as the pid file names us must be a clean stop
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    server.bind()
    pidfile = os.path.abspath(args.pidfile) if args.pidfile else None
    if args.background:
        _background(path, pidfile)
    elif pidfile:
        _write_pidfile(pidfile, os.getpid())
    try:
        return _serve_bound(server, args)
    finally:
        if pidfile:
            with contextlib.suppress(OSError):
                with open(pidfile) as f:
                    mine = f.read().strip() == str(os.getpid())
                if mine:
                    os.unlink(pidfile)


def _write_pidfile(path: str, pid: int) -> None:
    try:
        with open(path, "w") as f:
            f.write(f"{pid}\n")
    except OSError as e:
        raise ServerError(f"cannot write the pid file {path}: {e.strerror}") from e


def _background(path: str, pidfile: str | None) -> None:
    """Fork once the socket listens: the parent returns to the shell, the child serves.

    The socket is bound and listening before the fork, so a client started right after the
    parent exits connects; there is no start-up race for a script to sleep through (a plain
    ``pyracoon-kernel --listen PATH &`` has one). The path lock is inherited by the child.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid > 0:
        if pidfile:
            try:
                _write_pidfile(pidfile, pid)
            except ServerError as e:
                os.kill(pid, signal.SIGTERM)
                print(f"pyracoon-kernel: {e}", file=sys.stderr)
                os._exit(1)
        print(f"pyracoon-kernel: serving a simulated kernel on {path} (pid {pid})", file=sys.stderr)
        os._exit(0)
    os.setsid()
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _serve_bound(server: KernelServer, args: argparse.Namespace) -> int:
    print(
        f"pyracoon-kernel: serving a simulated kernel on {server.path}", file=sys.stderr, flush=True
    )
    try:
        server.serve()
    finally:
        server.close()
    print("pyracoon-kernel: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
