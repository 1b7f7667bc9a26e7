"""``pyracoonctl``: racoonctl for pyracoon, over the admin socket.

Command line (racoonctl 0.8.2's getopt ``lds:``; the options may also follow the command)::

    pyracoonctl [-d] [-l]... [-s SOCKET] COMMAND [ARGS]

    reload-config | rc
    show-schedule | sc
    show-sa | ss        isakmp|ipsec|esp|ah|internal
    flush-sa | fs       isakmp|ipsec|esp|ah
    delete-sa | ds      SAOPTS
    establish-sa | es   [-u LOGIN] [-n REMOTE] [-w] SAOPTS
    vpn-connect | vc    [-u LOGIN] GATEWAY
    vpn-disconnect | vd GATEWAY
    show-event | se
    logout-user | lu    LOGIN
    get-cert | gc | get-sa-cert   [inet|inet6] SRC DST

SAOPTS is ``isakmp inet|inet6 SRC DST`` or ``esp|ah inet|inet6 SRC[/PLEN][[PORT]]
DST[/PLEN][[PORT]] [any|icmp|tcp|udp|gre]`` (see ``pyracoon.admin.saopts``).

``-s`` picks the socket, else ``$PYRACOON_ADMINSOCK``, else /var/run/racoon/racoon.sock.
``-d`` dumps each message of the exchange in racoon's hexdump layout on stderr (racoonctl dumps
only the request, on stdout; stderr keeps a certificate on stdout intact). ``-l`` asks for
more ``show-sa isakmp`` columns, once or twice.

The daemon answers ``show-sa``, ``show-schedule`` and ``show-event`` with racoon's binary
records (``records``), and this program formats them as racoonctl does (``render``; ``setkey
-D`` layout for IPsec SAs), so it works against racoon as well as pyracoon.

Exit status: 0 on success, 1 on any failure, with a ``pyracoonctl: ...`` line on stderr saying
what went wrong; never a traceback. As racoonctl
does, an ``establish-sa`` whose SA already exists counts as success. ``-u`` asks for the XAUTH
password on the terminal, as racoonctl does.
"""

from __future__ import annotations

import errno as errno_mod
import getopt
import getpass as getpass_mod
import ipaddress
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from pyracoon.kernel.dump import SadReplyError, format_sad_reply

from .client import AdminClient, default_socket_path, hexdump
from .errors import AdminDecodeError, AdminError, SaoptsError, errno_text
from .protocol import (
    ADMIN_VERSION,
    LOGINLEN,
    PROTO_WORDS,
    PYRACOON_VERSION_WAIT,
    AdminCommand,
    AdminProto,
    Reply,
    Request,
    XauthCredentials,
)
from .records import decode_event, decode_ph1dump, decode_schedule
from .render import format_event, format_isakmp_sa, format_schedule
from .saopts import FAMILY_WORDS, parse_index, parse_proto, parse_saopts

PROG = "pyracoonctl"

COMMANDS: dict[str, str] = {
    "reload-config": "reload-config", "rc": "reload-config",
    "show-schedule": "show-schedule", "sc": "show-schedule",
    "show-sa": "show-sa", "ss": "show-sa",
    "flush-sa": "flush-sa", "fs": "flush-sa",
    "delete-sa": "delete-sa", "ds": "delete-sa",
    "establish-sa": "establish-sa", "es": "establish-sa",
    "vpn-connect": "vpn-connect", "vc": "vpn-connect",
    "vpn-disconnect": "vpn-disconnect", "vd": "vpn-disconnect",
    "show-event": "show-event", "se": "show-event",
    "logout-user": "logout-user", "lu": "logout-user",
    "get-cert": "get-cert", "gc": "get-cert", "get-sa-cert": "get-cert",
}

USAGE = f"""\
Usage:
  {PROG} [opts] reload-config
  {PROG} [opts] show-schedule
  {PROG} [opts] show-sa isakmp|ipsec|esp|ah
  {PROG} [opts] flush-sa isakmp|ipsec|esp|ah
  {PROG} [opts] delete-sa <saopts>
  {PROG} [opts] establish-sa [-u identity] [-n remoteconf] [-w] <saopts>
  {PROG} [opts] vpn-connect [-u identity] vpn_gateway
  {PROG} [opts] vpn-disconnect vpn_gateway
  {PROG} [opts] show-event
  {PROG} [opts] logout-user login
  {PROG} [opts] get-cert [inet|inet6] src dst

General options:
  -d            Debug: hexdump admin messages (on stderr)
  -l            Increase output verbosity (mainly for show-sa)
  -s <socket>   Specify adminport socket to use (default: $PYRACOON_ADMINSOCK,
                else /var/run/racoon/racoon.sock)

Parameter specifications:
    <saopts>: "isakmp" <family> <src> <dst>
            : {{"esp","ah"}} <family> <src[/prefixlen][[port]]> <dst[/prefixlen][[port]]>
                              [<ul_proto>]
    <family>: "inet" or "inet6"
    <ul_proto>: "icmp", "tcp", "udp", "gre" or "any"
"""


class UsageError(AdminError):
    """A command line pyracoonctl cannot turn into a request."""


@dataclass(frozen=True)
class Invocation:
    """A parsed command line: the request and how to treat its answer."""

    name: str
    request: Request
    stream: bool = False  # show-event: read pushed messages until the daemon closes
    wait: bool = False  # establish-sa -w, vpn-connect: no reply time limit
    raw: bool = False  # get-cert: the body is a DER certificate, written as bytes
    exists_ok: bool = False  # establish-sa: EEXIST means "already up", racoonctl exits 0
    formatter: Callable[[bytes], str] | None = None  # binary records -> racoonctl's text


@dataclass(frozen=True)
class Options:
    socket_path: str
    hexdump: bool
    long_format: int
    words: list[str]


def parse_options(args: list[str], environ: Mapping[str, str]) -> Options:
    """racoonctl's ``getopt("lds:")``, and the same options after the command word.

    racoonctl stops at the command word, so ``racoonctl show-sa isakmp -l`` fails with
    "insufficient arguments"; people write it that way anyway. No command has a sub-option
    named ``-l``, ``-d`` or ``-s``, so taking them anywhere is unambiguous.
    """
    try:
        opts, rest = getopt.getopt(args, "lds:h")
    except getopt.GetoptError as e:
        raise UsageError(str(e)) from None
    if any(opt == "-h" for opt, _ in opts):
        raise UsageError("")  # an empty message: print the usage, exit 0
    if not rest:
        raise UsageError("no command given")
    words = [rest[0]]
    tail = rest[1:]
    while tail:
        word, tail = tail[0], tail[1:]
        if word in ("-l", "-d"):
            opts.append((word, ""))
        elif word == "-s":
            if not tail:
                raise UsageError("option -s requires argument")
            opts.append((word, tail[0]))
            tail = tail[1:]
        else:
            words.append(word)
    path = default_socket_path(environ)
    dump = False
    long_format = 0
    for opt, value in opts:
        if opt == "-s":
            path = value
        elif opt == "-d":
            dump = True
        elif opt == "-l":
            long_format += 1
    return Options(path, dump, long_format, words)


def build(words: list[str], long_format: int,
          ask_password: Callable[[str], str]) -> Invocation:
    """Turn ``COMMAND ARGS...`` into the request racoonctl would send."""
    word, args = words[0], words[1:]
    name = COMMANDS.get(word)
    if name is None:
        raise UsageError(f"invalid command '{word}'")
    try:
        return _BUILDERS[name](name, args, long_format, ask_password)
    except SaoptsError as e:
        raise UsageError(f"{name}: {e.message}") from None


def _no_args(name: str, args: list[str]) -> None:
    if args:
        raise UsageError(f"{name}: too many arguments: '{args[0]}'")


def _simple(command: AdminCommand,
            formatter: Callable[[bytes], str] | None = None) -> Callable[..., Invocation]:
    def builder(name: str, args: list[str], long_format: int,
                ask_password: Callable[[str], str]) -> Invocation:
        _no_args(name, args)
        return Invocation(name, Request(command), stream=command == AdminCommand.ADMIN_SHOW_EVT,
                          formatter=formatter)
    return builder


def format_schedule_reply(body: bytes) -> str:
    """``show-schedule``: the ``struct scheddump`` array as racoonctl's table."""
    return format_schedule(decode_schedule(body))


def format_event_reply(body: bytes) -> str:
    """``show-event``: one pushed ``struct evt_async`` as racoonctl's line; the first, empty
    reply (the subscription's acknowledgement) prints nothing."""
    if not body:
        return ""
    record = decode_event(body)
    return format_event(record.event, record.src, record.dst)


def format_sadb_reply(body: bytes) -> str:
    """``show-sa esp|ah|ipsec``: the PF_KEY dump as ``setkey -D`` prints it, or racoonctl's
    ``No SAD entries.`` / ``<strerror>.`` for the kernel's errno."""
    try:
        return format_sad_reply(body, int(time.time()))
    except SadReplyError as e:
        raise AdminDecodeError(e.field, e.offset, e.message) from None


def _isakmp_formatter(long_format: int) -> Callable[[bytes], str]:
    def formatter(body: bytes) -> str:
        return format_isakmp_sa(decode_ph1dump(body), min(long_format, 2))
    return formatter


def _one_proto(args: list[str], name: str, allowed: tuple[AdminProto, ...]) -> AdminProto:
    words = "|".join(w for w, p in PROTO_WORDS.items() if p in allowed)
    if not args:
        raise UsageError(f"{name}: insufficient arguments: which protocol ({words})?")
    if len(args) > 1:
        raise UsageError(f"{name}: too many arguments: '{args[1]}'")
    return parse_proto(args[0], allowed)


def _show_sa(name: str, args: list[str], long_format: int,
             ask_password: Callable[[str], str]) -> Invocation:
    proto = _one_proto(args, name, tuple(AdminProto))
    formatter = (_isakmp_formatter(long_format) if proto == AdminProto.ADMIN_PROTO_ISAKMP
                 else None if proto == AdminProto.ADMIN_PROTO_INTERNAL else format_sadb_reply)
    return Invocation(name, Request(AdminCommand.ADMIN_SHOW_SA, proto), formatter=formatter)


def _flush_sa(name: str, args: list[str], long_format: int,
              ask_password: Callable[[str], str]) -> Invocation:
    allowed = (AdminProto.ADMIN_PROTO_ISAKMP, AdminProto.ADMIN_PROTO_IPSEC,
               AdminProto.ADMIN_PROTO_ESP, AdminProto.ADMIN_PROTO_AH)
    return Invocation(name, Request(AdminCommand.ADMIN_FLUSH_SA,
                                    _one_proto(args, name, allowed)))


def _delete_sa(name: str, args: list[str], long_format: int,
               ask_password: Callable[[str], str]) -> Invocation:
    proto, index = parse_saopts(args)
    return Invocation(name, Request(AdminCommand.ADMIN_DELETE_SA, proto, index.encode()))


def _credentials(login: str, ask_password: Callable[[str], str]) -> XauthCredentials:
    try:
        password = ask_password("Password: ")
    except (EOFError, OSError):
        raise UsageError("-u: no password could be read (is there a terminal?)") from None
    return XauthCredentials(login, password)


def _establish_sa(name: str, args: list[str], long_format: int,
                  ask_password: Callable[[str], str]) -> Invocation:
    login = remote = None
    wait = False
    while args and args[0] in ("-u", "-n", "-w"):
        flag, args = args[0], args[1:]
        if flag == "-w":
            wait = True
            continue
        if not args:
            raise UsageError(f"{name}: {flag} needs an argument")
        if flag == "-u":
            login = args[0]
        else:
            remote = args[0]
        args = args[1:]
    proto, index = parse_saopts(args)
    body = index.encode()
    command = AdminCommand.ADMIN_ESTABLISH_SA
    if login is not None:
        # racoon reads -n only without -u (the two share the bytes after the index)
        if remote is not None:
            raise UsageError(f"{name}: -u and -n cannot be combined (racoon reads one of them)")
        command = AdminCommand.ADMIN_ESTABLISH_SA_PSK
        body += _credentials(login, ask_password).encode()
    elif remote is not None:
        if proto != AdminProto.ADMIN_PROTO_ISAKMP:
            raise UsageError(f"{name}: -n REMOTE applies to isakmp only (racoonctl drops it "
                             "for esp and ah)")
        body += remote.encode() + b"\0"
    version = PYRACOON_VERSION_WAIT if wait else ADMIN_VERSION
    return Invocation(name, Request(command, proto, body, version), wait=wait, exists_ok=True)


def _gateway(word: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str]:
    """The gateway's address (resolving a name as racoonctl does) and its family word."""
    try:
        infos = socket.getaddrinfo(word, 4500, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UsageError(f"cannot resolve the VPN gateway '{word}': {e}") from None
    address = ipaddress.ip_address(str(infos[0][4][0]).partition("%")[0])
    return address, "inet6" if address.version == 6 else "inet"


def _vpn_connect(name: str, args: list[str], long_format: int,
                 ask_password: Callable[[str], str]) -> Invocation:
    login = None
    if args and args[0] == "-u":
        if len(args) < 2:
            raise UsageError(f"{name}: -u needs an argument")
        login, args = args[1], args[2:]
    if len(args) != 1:
        raise UsageError(f"{name}: expected one VPN gateway" if not args
                         else f"{name}: too many arguments: '{args[1]}'")
    gateway, family = _gateway(args[0])
    # The source address the kernel would use towards the gateway, as racoonctl finds it: a
    # connected UDP socket sends nothing.
    probe = socket.socket(socket.AF_INET6 if gateway.version == 6 else socket.AF_INET,
                          socket.SOCK_DGRAM)
    try:
        probe.connect((str(gateway), 4500))
        local = ipaddress.ip_address(probe.getsockname()[0].partition("%")[0])
    except OSError as e:
        raise UsageError(f"{name}: no route to the VPN gateway {gateway}: "
                         f"{e.strerror or e}") from None
    finally:
        probe.close()
    index = parse_index([family, str(local), str(gateway)])
    body = index.encode()
    command = AdminCommand.ADMIN_ESTABLISH_SA
    if login is not None:
        command = AdminCommand.ADMIN_ESTABLISH_SA_PSK
        body += _credentials(login, ask_password).encode()
    return Invocation(name, Request(command, AdminProto.ADMIN_PROTO_ISAKMP, body,
                                    PYRACOON_VERSION_WAIT), wait=True, exists_ok=True)


def _vpn_disconnect(name: str, args: list[str], long_format: int,
                    ask_password: Callable[[str], str]) -> Invocation:
    if len(args) != 1:
        raise UsageError(f"{name}: expected one VPN gateway" if not args
                         else f"{name}: too many arguments: '{args[1]}'")
    gateway, family = _gateway(args[0])
    anyaddr = "::" if family == "inet6" else "0.0.0.0"
    index = parse_index([family, anyaddr, str(gateway)])
    return Invocation(name, Request(AdminCommand.ADMIN_DELETE_ALL_SA_DST,
                                    AdminProto.ADMIN_PROTO_ISAKMP, index.encode()))


def _logout_user(name: str, args: list[str], long_format: int,
                 ask_password: Callable[[str], str]) -> Invocation:
    if len(args) != 1:
        raise UsageError(f"{name}: expected one login" if not args
                         else f"{name}: too many arguments: '{args[1]}'")
    login = args[0].encode()
    if not login or len(login) > LOGINLEN:
        raise UsageError(f"{name}: bad login '{args[0]}': racoon takes 1 to {LOGINLEN} bytes")
    return Invocation(name, Request(AdminCommand.ADMIN_LOGOUT_USER, 0, login))


def _get_cert(name: str, args: list[str], long_format: int,
              ask_password: Callable[[str], str]) -> Invocation:
    if args and args[0] not in FAMILY_WORDS and len(args) == 2:
        # racoonctl wants the family; take it from the source address when it is left out
        try:
            version = ipaddress.ip_address(args[0].partition("%")[0]).version
        except ValueError:
            raise UsageError(f"{name}: bad address '{args[0]}'") from None
        args = ["inet6" if version == 6 else "inet", *args]
    if len(args) != 3:
        raise UsageError(f"{name}: expected [inet|inet6] SRC DST")
    index = parse_index(args)
    return Invocation(name, Request(AdminCommand.ADMIN_GET_SA_CERT,
                                    AdminProto.ADMIN_PROTO_ISAKMP, index.encode()), raw=True)


_BUILDERS: dict[str, Callable[[str, list[str], int, Callable[[str], str]], Invocation]] = {
    "reload-config": _simple(AdminCommand.ADMIN_RELOAD_CONF),
    "show-schedule": _simple(AdminCommand.ADMIN_SHOW_SCHED, format_schedule_reply),
    "show-event": _simple(AdminCommand.ADMIN_SHOW_EVT, format_event_reply),
    "show-sa": _show_sa,
    "flush-sa": _flush_sa,
    "delete-sa": _delete_sa,
    "establish-sa": _establish_sa,
    "vpn-connect": _vpn_connect,
    "vpn-disconnect": _vpn_disconnect,
    "logout-user": _logout_user,
    "get-cert": _get_cert,
}

__all__ = ["COMMANDS", "USAGE", "Invocation", "build", "main", "run"]


def _print_body(reply: Reply, inv: Invocation, out: TextIO) -> None:
    if inv.formatter is not None:
        out.write(inv.formatter(reply.body))
        out.flush()
        return
    if not reply.body:
        return
    if inv.raw:
        out.flush()
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            buffer.write(reply.body)
            buffer.flush()
        else:
            out.write(reply.body.decode("latin-1"))
        return
    text = reply.text()
    out.write(text if text.endswith("\n") else text + "\n")
    out.flush()


def _error_line(inv: Invocation, reply: Reply) -> str:
    detail = errno_text(reply.errno)
    message = reply.text().strip()
    return f"{PROG}: {inv.name}: {message} ({detail})" if message else \
        f"{PROG}: {inv.name}: {detail}"


def run(
    args: list[str],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    ask_password: Callable[[str], str] = getpass_mod.getpass,
    timeout: float = 60.0,
) -> int:
    """``main`` with its streams, environment and password prompt injectable, for tests."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    env = os.environ if environ is None else environ
    try:
        opts = parse_options(args, env)
        inv = build(opts.words, opts.long_format, ask_password)
    except UsageError as e:
        if str(e):
            err.write(f"{PROG}: {e}\n")
            err.write(f"Run '{PROG} -h' for the usage.\n")
            return 1
        out.write(USAGE)
        return 0

    def trace(direction: str, data: bytes) -> None:
        err.write(f"{direction} ({len(data)} bytes):\n{hexdump(data)}")
        err.flush()

    client = AdminClient(opts.socket_path,
                         timeout=None if (inv.stream or inv.wait) else timeout,
                         trace=trace if opts.hexdump else None)
    try:
        for reply in client.exchange(inv.request, stream=inv.stream):
            if reply.errno:
                if (inv.name == "show-schedule" and reply.errno == errno_mod.ENOMEM
                        and not reply.body):
                    # racoon's sched_dump fails an empty schedule, and racoon answers ENOMEM
                    out.write(format_schedule(()))
                    return 0
                if inv.exists_ok and reply.errno == errno_mod.EEXIST:
                    # success, as racoonctl's: its stdout stays empty (racoon itself sends no
                    # text), so the note goes to stderr and scripts see racoonctl's output
                    message = reply.text().strip() or "the SA is already established"
                    err.write(f"{PROG}: {inv.name}: {message}\n")
                    return 0
                err.write(_error_line(inv, reply) + "\n")
                return 1
            _print_body(reply, inv, out)
    except AdminError as e:
        err.write(f"{PROG}: {inv.name}: {e}\n")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``pyracoonctl`` console script."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        return 130  # show-event and -w end with ^C; say nothing more
    except BrokenPipeError:
        # "pyracoonctl show-sa esp | head": the reader left; stay quiet as racoonctl would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as e:  # a bug of ours: one line, not a traceback, and a failing status
        sys.stderr.write(f"{PROG}: internal error: {type(e).__name__}: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
