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

ERROR and WARNING lines about a peer are rate-limited (racoon has no limit): a flood of bad
datagrams gives one such line each, and an unlimited log is a disk-filling attack. Each peer has
a token bucket (:data:`PEER_BURST` lines, then :data:`PEER_RATE` a second) and all peers share
one (:data:`TOTAL_BURST`, :data:`TOTAL_RATE`), so spoofing many sources does not get around it.
What is held back is counted, and said in one WARNING line once the peer may log again (or,
at the latest, :data:`SUMMARY_AFTER` seconds later, on the next line logged). Lines at NOTIFY
and below (a negotiation's own story, debug output) are never limited.
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

PEER_BURST, PEER_RATE = 20.0, 1.0  # ERROR/WARNING lines about one peer: burst, then per second
TOTAL_BURST, TOTAL_RATE = 200.0, 20.0  # the same, summed over all peers
SUMMARY_AFTER = 10.0  # say what was held back at the latest this long after it began
MAX_TRACKED_PEERS = 4096  # buckets kept; full ones (nothing held back) are dropped beyond this


class LogFileError(OSError):
    """The log file cannot be opened; the text names the file and the reason, for a person."""


class _Bucket:
    __slots__ = ("tokens", "stamp", "suppressed", "since")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.stamp = now
        self.suppressed = 0
        self.since = 0.0

    def take(self, burst: float, rate: float, now: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """Token buckets for ERROR/WARNING lines per peer and in total (the module says why).

    Time is ``time.monotonic``: a clock step must not open or close the gate. The work per
    line does not grow with the number of peers: buckets are found by key, held-back counts
    wait in the order they began, and only the due ones are looked at.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._peers: dict[str, _Bucket] = {}
        self._held: dict[str, _Bucket] = {}  # peers with lines held back, oldest first
        self._total: _Bucket | None = None
        # held-back lines of peers pruned while held: lines, peers, since when
        self._forgotten_lines = self._forgotten_peers = 0
        self._forgotten_since = 0.0

    def admit(self, peer: str) -> tuple[bool, list[str]]:
        """Whether a line about ``peer`` may be written now, and summary lines due first."""
        now = self.clock()
        if self._total is None:
            self._total = _Bucket(TOTAL_BURST, now)
        bucket = self._peers.get(peer)
        if bucket is None:
            if len(self._peers) >= MAX_TRACKED_PEERS:
                self._prune(now)
            bucket = self._peers[peer] = _Bucket(PEER_BURST, now)
        ok = bucket.take(PEER_BURST, PEER_RATE, now) and self._total.take(
            TOTAL_BURST, TOTAL_RATE, now
        )
        summaries = []
        if ok and peer in self._held:
            del self._held[peer]
            summaries.append(self._summary([(peer, bucket)], now))
        due = []
        while self._held:
            first = next(iter(self._held))
            if now - self._held[first].since < SUMMARY_AFTER:
                break
            due.append((first, self._held.pop(first)))
        if due:
            summaries.append(self._summary(due, now))
        if self._forgotten_lines and now - self._forgotten_since >= SUMMARY_AFTER:
            summaries.append(
                f"WARNING: {self._forgotten_lines} more error/warning line(s) about "
                f"{self._forgotten_peers} other peers were not logged in the last "
                f"{now - self._forgotten_since:.0f} s "
                "(too many peers at once to count them one by one)"
            )
            self._forgotten_lines = self._forgotten_peers = 0
        if not ok:
            if peer not in self._held:
                bucket.since = now
                self._held[peer] = bucket
            bucket.suppressed += 1
        return ok, summaries

    @staticmethod
    def _summary(held: list[tuple[str, _Bucket]], now: float) -> str:
        lines = sum(b.suppressed for _, b in held)
        span = max(now - b.since for _, b in held)
        for _, b in held:
            b.suppressed = 0
        limit = (
            f"rate limit: {PEER_BURST:.0f} lines, then {PEER_RATE:g}/s per peer, "
            f"{TOTAL_RATE:g}/s in total"
        )
        if len(held) == 1:
            return (
                f"[{held[0][0]}] WARNING: {lines} error/warning line(s) about this peer were "
                f"not logged in the last {span:.0f} s ({limit})"
            )
        names = ", ".join(p for p, _ in held[:5]) + (", ..." if len(held) > 5 else "")
        return (
            f"WARNING: {lines} error/warning line(s) about {len(held)} peers ({names}) were "
            f"not logged in the last {span:.0f} s ({limit})"
        )

    def _prune(self, now: float) -> None:
        """Forget buckets that are full again (they equal fresh ones), or else the oldest."""
        for peer in [
            p
            for p, b in self._peers.items()
            if p not in self._held and b.tokens + (now - b.stamp) * PEER_RATE >= PEER_BURST
        ]:
            del self._peers[peer]
        excess = len(self._peers) - MAX_TRACKED_PEERS + 1
        for peer in list(self._peers)[: max(0, excess)]:
            del self._peers[peer]
            held = self._held.pop(peer, None)
            if held is not None:  # its count goes into one anonymous total, said later
                if not self._forgotten_lines:
                    self._forgotten_since = held.since
                self._forgotten_lines += held.suppressed
                self._forgotten_peers += 1


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
        rate_limit: bool = True,
    ) -> None:
        self.level = level
        self.logfile = logfile
        self.use_syslog = use_syslog
        self.stream = stream
        self.with_location = with_location
        self.clock = clock
        self._file: TextIO | None = None
        self._complained = False
        self._limiter = RateLimiter() if rate_limit else None
        if use_syslog:
            syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_DAEMON)
        if logfile:
            self._open()

    def _open(self) -> None:
        assert self.logfile is not None
        # Log lines name peers and SAs: readable by the owner only, as racoon's umask 077 makes.
        try:
            fd = os.open(self.logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as e:
            raise LogFileError(
                e.errno, f"cannot open the log file {self.logfile}: {e.strerror}"
            ) from None
        self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def reopen(self) -> None:
        """Reopen the log file, for logrotate after SIGHUP.

        If it cannot be reopened (its directory was removed, the disk is full), the daemon goes
        on: the reason goes to syslog and stderr, and the next SIGHUP tries again.
        """
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.logfile:
            try:
                self._open()
            except LogFileError as e:
                text = f"{e.strerror}; logging stops until a SIGHUP can reopen it"
                syslog.syslog(syslog.LOG_DAEMON | syslog.LOG_ERR, f"ERROR: {text}")
                sys.stderr.write(f"pyracoon: {text}\n")

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
        if self._limiter is not None and peer is not None and level <= Level.WARNING:
            ok, summaries = self._limiter.admit(str(peer))
            for summary in summaries:
                self._write(Level.WARNING, summary)
            if not ok:
                return
        self._write(level, self.line(level, text, peer, where))

    def _write(self, level: Level, body: str) -> None:
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
