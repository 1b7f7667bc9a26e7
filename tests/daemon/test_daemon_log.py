"""racoon's log lines, levels and sinks."""

from __future__ import annotations

import io
import ipaddress
import os
import time

from pyracoon.daemon.log import Log, timestamp
from pyracoon.engine.events import Level, LogEvent

WHEN = time.mktime((2014, 6, 2, 12, 39, 30, 0, 0, -1))


def test_foreground_line_has_racoons_shape():
    out = io.StringIO()
    log = Log(Level.INFO, use_syslog=False, stream=out, clock=lambda: WHEN)
    log.event(
        LogEvent(
            Level.INFO,
            "IPsec-SA established: ESP/Tunnel 192.0.2.1[500]->203.0.113.1[500] "
            "spi=4233547948(0xfc56d0ac)",
        )
    )
    log.event(LogEvent(Level.ERROR, "no suitable proposal found.", ipaddress.ip_address("::1")))
    assert out.getvalue().splitlines() == [
        "2014-06-02 12:39:30: INFO: IPsec-SA established: ESP/Tunnel 192.0.2.1[500]->"
        "203.0.113.1[500] spi=4233547948(0xfc56d0ac)",
        "2014-06-02 12:39:30: [::1] ERROR: no suitable proposal found.",
    ]
    assert timestamp(WHEN) == "2014-06-02 12:39:30: "


def test_lines_above_the_level_are_not_written():
    out = io.StringIO()
    log = Log(Level.NOTIFY, use_syslog=False, stream=out, clock=lambda: WHEN)
    log.info("not shown")
    log.notify("the packet is retransmitted by 10.0.0.2[500] (1).")
    assert out.getvalue().endswith("NOTIFY: the packet is retransmitted by 10.0.0.2[500] (1).\n")
    assert "not shown" not in out.getvalue()


def test_location_prefix_with_L():
    log = Log(Level.INFO, use_syslog=False, with_location=True)
    assert log.line(Level.INFO, "x", None, "engine.py:12:_acquire()") == (
        "INFO: engine.py:12:_acquire(): x"
    )


def test_log_file_is_private_appended_and_reopened(tmp_path):
    path = tmp_path / "racoon.log"
    log = Log(Level.INFO, logfile=str(path), use_syslog=False, clock=lambda: WHEN)
    log.info("first")
    assert os.stat(path).st_mode & 0o777 == 0o600
    os.rename(path, tmp_path / "racoon.log.0")
    log.reopen()
    log.info("second")
    log.close()
    assert path.read_text() == "2014-06-02 12:39:30: INFO: second\n"
    assert (tmp_path / "racoon.log.0").read_text() == "2014-06-02 12:39:30: INFO: first\n"


def test_a_broken_stream_does_not_raise(capsys):
    out = io.StringIO()
    out.close()
    log = Log(Level.INFO, use_syslog=False, stream=out)
    log.info("one")
    log.info("two")
    assert capsys.readouterr().err.count("cannot write the log") == 1


def test_unopenable_log_file_is_a_plain_error(tmp_path):
    import pytest

    from pyracoon.daemon.log import LogFileError

    with pytest.raises(LogFileError) as info:
        Log(Level.INFO, logfile=str(tmp_path / "gone" / "racoon.log"), use_syslog=False)
    assert info.value.strerror == (
        f"cannot open the log file {tmp_path / 'gone' / 'racoon.log'}: No such file or directory"
    )


def test_reopen_when_the_directory_is_gone_keeps_going_and_retries(tmp_path, capsys):
    logdir = tmp_path / "log"
    logdir.mkdir()
    path = logdir / "racoon.log"
    log = Log(Level.INFO, logfile=str(path), use_syslog=False, clock=lambda: WHEN)
    log.info("before")
    path.unlink()
    logdir.rmdir()
    log.reopen()  # SIGHUP with the directory removed: no exception
    log.info("lost")
    err = capsys.readouterr().err
    assert f"cannot open the log file {path}: No such file or directory" in err
    assert "logging stops until a SIGHUP can reopen it" in err
    logdir.mkdir()
    log.reopen()  # the next SIGHUP
    log.info("after")
    log.close()
    assert path.read_text() == "2014-06-02 12:39:30: INFO: after\n"


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _limited_log(clock: _Clock) -> tuple[Log, io.StringIO]:
    from pyracoon.daemon.log import RateLimiter

    out = io.StringIO()
    log = Log(Level.INFO, use_syslog=False, stream=out, clock=lambda: WHEN)
    assert log._limiter is not None
    log._limiter = RateLimiter(clock)
    return log, out


def test_errors_about_one_peer_are_rate_limited_and_the_count_is_said():
    from pyracoon.daemon import log as logmod

    clock = _Clock()
    log, out = _limited_log(clock)
    peer = "127.0.0.9[500]"
    for i in range(100):
        log.error(f"bad datagram {i}", peer)
    lines = out.getvalue().splitlines()
    assert len(lines) == logmod.PEER_BURST
    assert lines[-1].endswith(f"bad datagram {int(logmod.PEER_BURST) - 1}")
    # other peers and lines below WARNING are not held back by this peer's flood
    log.error("other peer", "127.0.0.10[500]")
    log.info("negotiation goes on", peer)
    clock.t += 1.0 / logmod.PEER_RATE
    log.error("after a pause", peer)
    tail = out.getvalue().splitlines()[len(lines):]
    assert tail[0].endswith("[127.0.0.10[500]] ERROR: other peer")
    assert tail[1].endswith("INFO: negotiation goes on")
    assert "[127.0.0.9[500]] WARNING: 80 error/warning line(s) about this peer were not logged" in (
        tail[2]
    )
    assert tail[3].endswith("ERROR: after a pause")


def test_many_spoofed_peers_share_one_total_limit():
    from pyracoon.daemon import log as logmod

    clock = _Clock()
    log, out = _limited_log(clock)
    for i in range(1000):
        log.error("bad datagram", f"127.0.{i // 250}.{i % 250}[500]")
    assert len(out.getvalue().splitlines()) == logmod.TOTAL_BURST
    clock.t += logmod.SUMMARY_AFTER
    log.error("one more", "127.0.9.9[500]")
    tail = out.getvalue().splitlines()[int(logmod.TOTAL_BURST):]
    assert "800 error/warning line(s) about 800 peers (" in tail[0]
    assert tail[1].endswith("[127.0.9.9[500]] ERROR: one more")


def test_rate_limiter_memory_is_bounded():
    """A flood from ever new sources keeps at most MAX_TRACKED_PEERS buckets, and every line
    is either written or counted in a summary."""
    from pyracoon.daemon import log as logmod
    from pyracoon.daemon.log import RateLimiter

    def counted(summaries: list[str]) -> int:
        return sum(int(s.split("WARNING: ")[1].split()[0]) for s in summaries)

    clock = _Clock()
    limiter = RateLimiter(clock)
    written = held = 0
    for i in range(3 * logmod.MAX_TRACKED_PEERS):
        clock.t += 0.001
        ok, summaries = limiter.admit(f"peer{i}")
        written += ok
        held += counted(summaries)
    assert len(limiter._peers) <= logmod.MAX_TRACKED_PEERS
    assert len(limiter._held) <= logmod.MAX_TRACKED_PEERS
    clock.t += logmod.SUMMARY_AFTER + 60
    ok, summaries = limiter.admit("late")
    assert ok
    assert any("other peers were not logged" in s for s in summaries), summaries
    held += counted(summaries)
    assert written + held == 3 * logmod.MAX_TRACKED_PEERS
