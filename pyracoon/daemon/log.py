"""racoon's log: its levels, its line format, and where the lines go.

The memo's troubleshooting advice is "if ESP doesn't happen, read /var/log/all.log", and people
grep racoon's lines (racoon's plog.c). So the lines keep racoon's shape::

    [YYYY-MM-DD HH:MM:SS: ][[peer] ]LEVEL: [where: ]text

The timestamp is written only to a log file (``-l``) and to the terminal in the foreground
(``-F``), because syslog stamps lines itself. ``-L`` adds where in pyracoon the line came from,
as racoon's ``file.c:LINE:func():`` prefix does.

Levels are racoon's numbers: ERROR 1 ... INFO 4 (the default) ... DEBUG2 6. The configured
``log`` level is *relative*: every ``-d`` raises it by one (``Config.effective_log_level``).
Syslog gets facility daemon, priority LOG_INFO for levels 1-4 and LOG_DEBUG for 5-6,
as racoon sends them.
"""

from __future__ import annotations

import os
import sys
import syslog
import time
from collections.abc import Callable
from typing import TextIO

from pyracoon.engine.events import Level, LogEvent

LEVEL_NAMES = {lvl.name.lower(): lvl for lvl in Level}

#: Where syslog(3) sends its lines: Linux, the BSDs, macOS.
SYSLOG_SOCKETS = ("/dev/log", "/var/run/log", "/var/run/syslog")


def syslog_socket(candidates: tuple[str, ...] = SYSLOG_SOCKETS) -> str | None:
    """The local syslog socket, if this machine has one.

    syslog(3) drops lines silently when there is no syslog daemon (containers, minimal
    installs), so a detached daemon without ``-l`` would log nothing and never say so; the
    start-up checks this before detaching.
    """
    for path in candidates:
        if os.path.exists(path):
            return path
    return None


def timestamp(when: float) -> str:
    """racoon's ``YYYY-MM-DD HH:MM:SS: `` prefix, in local time."""
    return time.strftime("%Y-%m-%d %H:%M:%S: ", time.localtime(when))


class Log:
    """Formats lines and writes them to syslog, a file and/or a terminal stream.

    A failure to write the log never stops the daemon: the line goes to stderr instead, once.
    """

    def __init__(
        self,
        level: Level = Level.INFO,
        *,
        logfile: str | None = None,
        use_syslog: bool = True,
        stream: TextIO | None = None,
        with_location: bool = False,
        ident: str = "pyracoon",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.level = level
        self.logfile = logfile
        self.use_syslog = use_syslog
        self.stream = stream
        self.with_location = with_location
        self.clock = clock
        self._file: TextIO | None = None
        self._complained = False
        if use_syslog:
            syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_DAEMON)
        if logfile:
            self._open()

    def _open(self) -> None:
        assert self.logfile is not None
        # Log lines name peers and SAs: readable by the owner only, as racoon's umask 077 makes.
        fd = os.open(self.logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def reopen(self) -> None:
        """Reopen the log file, for logrotate after SIGHUP."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.logfile:
            self._open()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.use_syslog:
            syslog.closelog()

    def enabled(self, level: int) -> bool:
        return level <= self.level

    def line(self, level: Level, text: str, peer: object = None, where: str | None = None) -> str:
        """The line without timestamp: ``[peer] LEVEL: [where: ]text``."""
        prefix = f"[{peer}] " if peer is not None else ""
        loc = f"{where}: " if where and self.with_location else ""
        return f"{prefix}{level.name}: {loc}{text}"

    def log(self, level: Level, text: str, peer: object = None, where: str | None = None) -> None:
        if not self.enabled(level):
            return
        body = self.line(level, text, peer, where)
        if self.use_syslog:
            prio = syslog.LOG_INFO if level <= Level.INFO else syslog.LOG_DEBUG
            syslog.syslog(syslog.LOG_DAEMON | prio, body)
        stamped = timestamp(self.clock()) + body + "\n"
        for out in (self._file, self.stream):
            if out is None:
                continue
            try:
                out.write(stamped)
                out.flush()
            except (OSError, ValueError) as e:
                if not self._complained:
                    self._complained = True
                    sys.stderr.write(f"pyracoon: cannot write the log ({e}); line was: {body}\n")

    def event(self, ev: LogEvent, where: str | None = None) -> None:
        """Write one engine ``LogEvent``."""
        self.log(ev.level, ev.text, ev.peer, where)

    # racoon's names, for the daemon's own lines
    def error(self, text: str, peer: object = None) -> None:
        self.log(Level.ERROR, text, peer)

    def warning(self, text: str, peer: object = None) -> None:
        self.log(Level.WARNING, text, peer)

    def notify(self, text: str, peer: object = None) -> None:
        self.log(Level.NOTIFY, text, peer)

    def info(self, text: str, peer: object = None) -> None:
        self.log(Level.INFO, text, peer)

    def debug(self, text: str, peer: object = None) -> None:
        self.log(Level.DEBUG, text, peer)
