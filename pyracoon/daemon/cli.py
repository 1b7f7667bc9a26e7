"""``pyracoon``: racoon's command line, start-up and daemon life.

``pyracoon [-46BFdLVv] [-f conf] [-l logfile] [-p port] [-P nattport] [--kernel SPEC]
[--ike-keylog FILE]``

The order differs from racoon's on purpose (racoon(8)): racoon calls daemon()
first, so a broken configuration only reaches the log and the shell sees status 0, and ``-B``
runs before the configuration is parsed, so it cannot work. Here everything that can fail is
done in the foreground first -- parse the configuration, check key files, open the kernel,
restore backupsa, bind the ISAKMP sockets -- and each failure is one line on stderr and exit
status 1. Only then does the daemon detach (unless ``-F``) and write its pid file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import IO

from pyracoon import __version__
from pyracoon.config import ConfigError, parse_file
from pyracoon.config.model import Config, default_config_path
from pyracoon.engine.credentials import Credentials
from pyracoon.engine.events import Level
from pyracoon.engine.half_open import DEFAULT_PER_PEER, DEFAULT_TOTAL
from pyracoon.kernel import ops
from pyracoon.kernel.base import BACKENDS_TEXT, KERNEL_ENV, KernelError, KernelSocket, open_kernel
from pyracoon.pki import check_file_permission
from pyracoon.pki.errors import PkiError

from . import backupsa
from .addresses import local_addresses
from .log import SYSLOG_SOCKETS, Log, LogFileError, syslog_socket
from .service import HANDLED_SIGNALS, Daemon, Endpoint, Listener, Options, bind_udp

DEFAULT_CONFIG = default_config_path()


class StartupError(Exception):
    """Start-up cannot go on; the message is the one line the user sees."""


def _positive(text: str) -> int:
    """A whole number of at least 1 (argparse reports anything else as a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyracoon",
        description="IKEv1 key management daemon, racoon-compatible.",
        epilog=f"example: pyracoon -F -f {DEFAULT_CONFIG} -l /var/log/racoon.log",
    )
    p.add_argument(
        "-f", dest="config", default=DEFAULT_CONFIG, help=f"configuration file ({DEFAULT_CONFIG})"
    )
    p.add_argument("-l", dest="logfile", help="log to this file instead of syslog")
    p.add_argument("-p", dest="port", type=int, help="ISAKMP port (default 500)")
    p.add_argument("-P", dest="natt_port", type=int, help="NAT-T port (default 4500)")
    p.add_argument("-F", dest="foreground", action="store_true", help="stay in the foreground")
    p.add_argument("-d", dest="debug", action="count", default=0, help="raise the log level")
    p.add_argument("-v", dest="verbose", action="store_true", help="log every datagram")
    p.add_argument("-L", dest="location", action="store_true", help="say where lines come from")
    p.add_argument("-B", dest="restore", action="store_true", help="restore SAs from backupsa")
    p.add_argument("-4", dest="family", action="store_const", const=socket.AF_INET)
    p.add_argument("-6", dest="family", action="store_const", const=socket.AF_INET6)
    p.add_argument("-V", dest="version", action="store_true", help="print the version")
    p.add_argument(
        "--kernel",
        help=(
            f"{BACKENDS_TEXT} (unix:PATH is a pyracoon-kernel); default $PYRACOON_KERNEL or "
            "auto (xfrm on Linux, pfkey elsewhere)"
        ),
    )
    p.add_argument(
        "--half-open-max",
        type=_positive,
        default=DEFAULT_TOTAL,
        metavar="N",
        help=f"half-open responder ISAKMP-SAs kept, the oldest given up beyond ({DEFAULT_TOTAL})",
    )
    p.add_argument(
        "--half-open-per-peer",
        type=_positive,
        default=DEFAULT_PER_PEER,
        metavar="N",
        help=f"half-open responder ISAKMP-SAs one address may have ({DEFAULT_PER_PEER})",
    )
    p.add_argument(
        "--ike-keylog",
        metavar="FILE",
        help="append every ISAKMP SA's initiator cookie and encryption key to FILE (mode 0600) "
        "in Wireshark's ikev1_decryption_table format; for debugging only",
    )
    return p


def open_keylog(path: str) -> IO[str]:
    """The key log, created 0600 and appended to: it holds secrets, so no one else may read it.

    The header is Wireshark's own for a UAT file, so the file can be copied as is into a
    profile's ``ikev1_decryption_table``.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
    except OSError as e:
        raise StartupError(f"cannot open the IKE key log {path}: {e.strerror}") from None
    f = os.fdopen(fd, "a")
    if f.tell() == 0:
        f.write("# This file is automatically generated, DO NOT MODIFY.\n")
        f.flush()
    return f


def load_config(args: argparse.Namespace) -> Config:
    try:
        config = parse_file(args.config, include_base=os.getcwd())
    except ConfigError as e:
        raise StartupError(str(e)) from None
    except OSError as e:
        raise StartupError(f"cannot read {args.config}: {e.strerror}") from None
    return config.with_command_line(isakmp_port=args.port, natt_port=args.natt_port)


def check_key_files(config: Config) -> Credentials:
    """Load every certificate and key now, so a bad one stops the start, not a negotiation.

    What is loaded is returned for the engine (``Daemon(credentials=...)``), which would
    otherwise read every file again."""
    credentials = Credentials.load(config)
    uses_psk = False
    for remote in config.remotes:
        ct = remote.certificate_type
        if ct is not None and ct.kind == "x509" and ct.certificate:
            try:
                credentials.check_my_certificate(remote)
            except (PkiError, OSError, ValueError) as e:
                raise StartupError(f"remote {remote.describe()}: {e}") from None
        uses_psk = uses_psk or any(
            p.authentication_method_name.startswith(("pre_shared_key", "xauth_psk"))
            for p in remote.proposals
        )
    if uses_psk and config.paths.pre_shared_key:
        try:
            check_file_permission(config.paths.pre_shared_key, what="pre-shared key file")
        except PkiError as e:
            raise StartupError(str(e)) from None
        except OSError as e:
            raise StartupError(
                f"cannot read the pre-shared key file {config.paths.pre_shared_key} "
                f"(path pre_shared_key): {e.strerror}"
            ) from None
    return credentials


def listen_endpoints(config: Config, family: int | None) -> list[Endpoint]:
    if config.listen.present and config.listen.addresses:
        return [
            (a.address, a.effective_port(config.isakmp_port))
            for a in config.listen.addresses
            if not a.natt
        ]
    return [(a, config.isakmp_port) for a in local_addresses(family)]


def bind_all(
    endpoints: list[Endpoint], log: Log | None = None, *, strict: bool = True
) -> list[Listener]:
    """Bind every endpoint; any failure is a StartupError, with one exception: without
    ``strict`` (``listen { strict_address; }``), an address that is not on this host is skipped
    with a warning, as racoon's grabmyaddr.c opens only the listen addresses the host has."""
    listeners: list[Listener] = []
    try:
        for ep in endpoints:
            try:
                listeners.append(Listener(ep, bind_udp(ep, log)))
            except OSError as e:
                if not strict and e.errno == errno.EADDRNOTAVAIL:
                    if log is not None:
                        log.warning(
                            f"{ep[0]}[{ep[1]}] is not an address of this host: not listening "
                            "on it (strict_address would make this an error; unlike racoon, "
                            "pyracoon does not open it if it appears later)"
                        )
                    continue
                raise StartupError(f"cannot listen on {ep[0]}[{ep[1]}]: {e.strerror}") from None
    except StartupError:
        for lst in listeners:
            lst.sock.close()
        raise
    return listeners


def restore_backup(config: Config, kernel: KernelSocket, log: Log, now: float) -> None:
    path = config.paths.backupsa
    if not path:
        raise StartupError("-B needs 'path backupsa' in the configuration")
    if not os.path.exists(path):
        log.info(f"{path} does not exist: nothing to restore")
        return
    try:
        results = backupsa.restore(path, now)
    except (OSError, backupsa.BackupError) as e:
        raise StartupError(f"cannot restore from {path}: {e}") from None
    for r in results:
        if r.request is None:
            log.warning(r.note)
            continue
        try:
            reply = kernel.call(r.request)
        except KernelError as e:
            log.error(f"{r.note}: {e}")
            continue
        if isinstance(reply, ops.SaEvent) and reply.errno:
            log.error(f"{r.note}: the kernel refused it: {os.strerror(reply.errno)}")
        else:
            log.info(f"{r.note}: restored")


def write_pidfile(path: str, pid: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(f"{pid}\n")


def detach(pidfile: str) -> None:
    """Fork; the parent records the child's pid and exits 0, the child leaves the terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid > 0:
        try:
            write_pidfile(pidfile, pid)
        except OSError as e:
            print(f"pyracoon: cannot write the pid file {pidfile}: {e.strerror}", file=sys.stderr)
            os.kill(pid, 15)
            os._exit(1)
        os._exit(0)
    os.setsid()
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        print(f"pyracoon {__version__} (racoon of ipsec-tools 0.8.2, reimplemented in Python)")
        return 0
    os.umask(0o077)
    try:
        return _start(args)
    except StartupError as e:
        print(f"pyracoon: {e}", file=sys.stderr)
        return 1


def _start(args: argparse.Namespace) -> int:
    # A detached daemon runs in /, so a relative -f or -l would name another file at the first
    # SIGHUP (re-read, reopen): fix them to what they name now, from where we were started.
    start_dir = os.getcwd()
    config_path = os.path.join(start_dir, args.config)
    if args.logfile:
        args.logfile = os.path.join(start_dir, args.logfile)
    config = load_config(args)
    credentials = check_key_files(config)
    level = config.effective_log_level(args.debug)
    try:
        log = Log(
            Level(level),  # the config's LogLevel has the engine's numbering (racoon's plog.c)
            logfile=args.logfile,
            use_syslog=args.logfile is None,
            stream=sys.stderr if args.foreground else None,
            with_location=args.location,
        )
    except LogFileError as e:
        raise StartupError(e.strerror) from None
    if args.foreground:
        print("Foreground mode.", file=sys.stderr, flush=True)
    log.info(f"pyracoon {__version__}")
    log.info(f'Reading configuration from "{config_path}"')
    for w in config.warnings:
        log.warning(w.log_line())
    keylog = None
    if args.ike_keylog:
        keylog = open_keylog(args.ike_keylog)
        log.warning(
            f"--ike-keylog: the encryption key of every ISAKMP SA goes to {args.ike_keylog}; "
            "whoever reads that file can decrypt phase 1 and quick mode (debugging only)"
        )
    try:
        kernel = open_kernel(args.kernel)
    except KernelError as e:
        raise StartupError(str(e)) from None
    kernel.notice = log.warning
    spec = args.kernel or os.environ.get(KERNEL_ENV) or "auto"
    log.info(f"kernel: {kernel.backend} (--kernel {spec})")
    if args.restore:
        restore_backup(config, kernel, log, time.time())
    listeners = bind_all(
        listen_endpoints(config, args.family), log, strict=config.listen.strict_address
    )
    if not listeners:
        raise StartupError("no address to listen on: add a 'listen { isakmp ADDR; }' block")
    for lst in listeners:
        log.info(
            f"{lst.endpoint[0]}[{lst.endpoint[1]}] used as isakmp port (fd={lst.sock.fileno()})"
        )
    pidfile = config.paths.pidfile_path()
    # From the moment the pid file names us, a SIGTERM must mean a clean stop, not death by the
    # default action before the event loop has installed its handlers: hold the signals back
    # until Daemon.run() is ready for them.
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    if args.foreground:
        try:
            write_pidfile(pidfile, os.getpid())
        except OSError as e:
            raise StartupError(f"cannot write the pid file {pidfile}: {e.strerror}") from None
    else:
        if args.logfile is None and syslog_socket() is None:
            # the last thing said on the terminal: everything else has been checked
            print(
                f"pyracoon: warning: no syslog socket on this machine "
                f"({', '.join(SYSLOG_SOCKETS)}), so once detached this daemon's log goes "
                "nowhere; give -l FILE to log to a file",
                file=sys.stderr,
                flush=True,
            )
        detach(pidfile)
        log.stream = None
    options = Options(
        config_path, args.debug, args.port, args.natt_port, args.verbose, args.kernel, start_dir,
        half_open_max=args.half_open_max, half_open_per_peer=args.half_open_per_peer,
    )  # fmt: skip
    daemon = Daemon(
        config, options, kernel, listeners, log, keylog=keylog, credentials=credentials
    )
    try:
        status = asyncio.run(daemon.run())
    finally:
        if keylog is not None:
            keylog.close()
        with contextlib.suppress(OSError):
            with open(pidfile) as f:
                mine = f.read().strip() == str(os.getpid())
            if mine:
                os.unlink(pidfile)
        kernel.close()
        log.close()
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
