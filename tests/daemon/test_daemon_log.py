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
