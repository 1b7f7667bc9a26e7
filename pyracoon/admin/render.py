"""racoonctl's text layouts of ``show-sa isakmp``, ``show-schedule`` and ``show-event``, for
``pyracoonctl``.

racoon (and pyracoon) send binary records (``struct ph1dump``, ``struct scheddump``, ``struct
evt_async``; see ``records``) and the client formats them. The rows here are those records'
fields; the output is what racoonctl prints, trailing spaces included, so scripts that parse
racoonctl keep working with pyracoonctl.

* ISAKMP SAs (``dump_isakmp_sa``): with no ``-l``, ``Destination Cookies Created``; with one,
  also ``ST`` (racoon's phase-1 status number), ``S`` (I or R), ``V`` (ISAKMP version, hex),
  ``E`` (exchange type letter) and ``Phase2`` (the number of phase-2 handles); with two, the
  source address too, and 45-character address columns. An address is written
  ``ADDRESS.PORT`` padded or cut to the column, as racoonctl's ``fixed_addr`` does.
* schedule: ``index    tick     xtime    created`` and one ``%-8d`` row per timer.
* events: ``MESSAGE : SRC[PORT] -> DST[PORT]`` with racoonctl's messages; an address the event
  does not have prints ``anonymous``, as racoonctl's ``saddr2str`` writes an ``AF_UNSPEC``
  address.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum

LocalTime = Callable[[float], time.struct_time]

ISAKMP_HEADER_SHORT = "Destination            Cookies                           Created"
ISAKMP_HEADER_LONG = ("Destination            Cookies                           ST S  V E "
                      "Created             Phase2")
ISAKMP_HEADER_WIDE = ("Source                                        Destination          "
                      "                         Cookies                           ST S  V E "
                      "Created             Phase2")
SCHEDULE_HEADER = "index    tick     xtime    created"

# racoonctl's estr[]: the letter of an ISAKMP exchange type (1 Base, 2 Main, 3 aUth only,
# 4 Aggressive, 5 Informational); other types print no letter.
EXCHANGE_LETTERS = ("", "B", "M", "U", "A", "I")


class Phase1Status(IntEnum):
    """racoon 0.8's ``PHASE1ST_*``: the number in the ``ST`` column."""

    PHASE1ST_SPAWN = 0
    PHASE1ST_START = 1
    PHASE1ST_MSG1RECEIVED = 2
    PHASE1ST_MSG1SENT = 3
    PHASE1ST_MSG2RECEIVED = 4
    PHASE1ST_MSG2SENT = 5
    PHASE1ST_MSG3RECEIVED = 6
    PHASE1ST_MSG3SENT = 7
    PHASE1ST_MSG4RECEIVED = 8
    PHASE1ST_ESTABLISHED = 9
    PHASE1ST_DYING = 10
    PHASE1ST_EXPIRED = 11


class AdminEvent(IntEnum):
    """racoon's ``EVT_*`` event types (evt.h)."""

    EVT_RACOON_QUIT = 0x0001
    EVT_PHASE1_UP = 0x0100
    EVT_PHASE1_DOWN = 0x0101
    EVT_PHASE1_NO_RESPONSE = 0x0102
    EVT_PHASE1_NO_PROPOSAL = 0x0103
    EVT_PHASE1_AUTH_FAILED = 0x0104
    EVT_PHASE1_DPD_TIMEOUT = 0x0105
    EVT_PHASE1_PEER_DELETED = 0x0106
    EVT_PHASE1_MODE_CFG = 0x0107
    EVT_PHASE1_XAUTH_SUCCESS = 0x0108
    EVT_PHASE1_XAUTH_FAILED = 0x0109
    EVT_PHASE2_NO_PHASE1 = 0x0200
    EVT_PHASE2_UP = 0x0201
    EVT_PHASE2_DOWN = 0x0202
    EVT_PHASE2_NO_RESPONSE = 0x0203


# racoonctl's evtmsg[]; an event without a message prints as "Event N".
EVENT_MESSAGES: dict[int, str] = {
    AdminEvent.EVT_RACOON_QUIT: "Racoon terminated",
    AdminEvent.EVT_PHASE1_UP: "Phase 1 established",
    AdminEvent.EVT_PHASE1_DOWN: "Phase 1 deleted",
    AdminEvent.EVT_PHASE1_NO_RESPONSE: "Phase 1 error: peer not responding",
    AdminEvent.EVT_PHASE1_NO_PROPOSAL: "Phase 1 error: no proposal chosen",
    AdminEvent.EVT_PHASE1_AUTH_FAILED: "Phase 1 error: authentication failed (bad certificate?)",
    AdminEvent.EVT_PHASE1_DPD_TIMEOUT: "Phase 1 error: dead peer detected",
    AdminEvent.EVT_PHASE1_MODE_CFG: "Phase 1 mode configuration done",
    AdminEvent.EVT_PHASE1_XAUTH_SUCCESS: "Phase 1 Xauth succeeded",
    AdminEvent.EVT_PHASE1_XAUTH_FAILED: "Phase 1 Xauth failed",
    AdminEvent.EVT_PHASE2_NO_PHASE1: "Phase 2 error: no suitable phase 1",
    AdminEvent.EVT_PHASE2_UP: "Phase 2 established",
    AdminEvent.EVT_PHASE2_DOWN: "Phase 2 deleted",
    AdminEvent.EVT_PHASE2_NO_RESPONSE: "Phase 2 error: no response",
}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Endpoint:
    """An address and port, as racoon's ``getnameinfo`` shows them (numeric)."""

    address: Address
    port: int

    def __str__(self) -> str:
        """racoon's ``saddr2str``: ``ADDRESS[PORT]``."""
        return f"{self.address}[{self.port}]"


@dataclass(frozen=True)
class Phase1Row:
    """One ISAKMP SA, the fields of racoon's ``struct ph1dump``.

    ``created`` is a Unix time, or None for an SA not established yet (racoon prints blanks).
    """

    local: Endpoint
    remote: Endpoint
    initiator_cookie: bytes
    responder_cookie: bytes
    status: int
    initiator: bool
    version: int = 0x10
    exchange_type: int = 2
    created: float | None = None
    phase2_count: int = 0


@dataclass(frozen=True)
class ScheduleRow:
    """One timer, the fields of racoon's ``struct scheddump``."""

    index: int
    tick: int
    xtime: int
    created: float


def fixed_addr(endpoint: Endpoint, width: int) -> str:
    """racoonctl's ``fixed_addr``: ``ADDRESS.PORT`` in exactly ``width`` characters.

    The address is cut to leave room for ``.PORT``; the port itself is never cut.
    """
    port = str(endpoint.port)
    address = str(endpoint.address)[:max(width - len(port) - 1, 0)]
    return f"{address}.{port}".ljust(width)[:width]


def _timestamp(when: float | None, localtime: LocalTime) -> str:
    if not when:
        return " " * 19
    return time.strftime("%Y-%m-%d %H:%M:%S", localtime(when))


def format_isakmp_sa(rows: Iterable[Phase1Row], long_format: int = 0, *,
                     localtime: LocalTime = time.localtime) -> str:
    """The ``show-sa isakmp`` table for ``long_format`` = the number of ``-l`` given."""
    header = (ISAKMP_HEADER_SHORT, ISAKMP_HEADER_LONG)[long_format] if long_format < 2 \
        else ISAKMP_HEADER_WIDE
    lines = [header + "\n"]
    width = 45 if long_format >= 2 else 22
    for row in rows:
        parts = []
        if long_format >= 2:
            parts.append(fixed_addr(row.local, width) + " ")
        parts.append(fixed_addr(row.remote, width) + " ")
        parts.append(f"{row.initiator_cookie.hex()}:{row.responder_cookie.hex()} ")
        if long_format >= 1:
            parts.append(f"{row.status:2d} {'I' if row.initiator else 'R'} {row.version:2x} ")
            if 0 <= row.exchange_type < len(EXCHANGE_LETTERS):
                parts.append(EXCHANGE_LETTERS[row.exchange_type] + " ")
        parts.append(_timestamp(row.created, localtime) + " ")
        if long_format >= 1:
            parts.append(f"{row.phase2_count:6d} ")
        lines.append("".join(parts) + "\n")
    return "".join(lines)


def format_schedule(rows: Iterable[ScheduleRow], *,
                    localtime: LocalTime = time.localtime) -> str:
    """The ``show-schedule`` table."""
    lines = [SCHEDULE_HEADER + "\n"]
    for row in rows:
        lines.append(f"{row.index:<8d} {row.tick:<8d} {row.xtime:<8d} "
                     f"{_timestamp(row.created, localtime)}\n")
    return "".join(lines)


def format_event(event: int, src: Endpoint | None, dst: Endpoint | None) -> str:
    """One ``show-event`` line: ``Phase 1 established : 192.0.2.1[500] -> 192.0.2.2[500]``."""
    message = EVENT_MESSAGES.get(event)
    head = f"{message} : " if message else f"Event {event}: "
    return f"{head}{src if src else 'anonymous'} -> {dst if dst else 'anonymous'}\n"
