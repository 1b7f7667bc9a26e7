"""racoonctl's layouts for show-sa isakmp, show-schedule and show-event."""

from __future__ import annotations

import ipaddress
import time

from pyracoon.admin.render import (
    ISAKMP_HEADER_LONG,
    ISAKMP_HEADER_SHORT,
    ISAKMP_HEADER_WIDE,
    AdminEvent,
    Endpoint,
    Phase1Row,
    Phase1Status,
    ScheduleRow,
    fixed_addr,
    format_event,
    format_isakmp_sa,
    format_schedule,
)

A = ipaddress.ip_address
ROW = Phase1Row(
    local=Endpoint(A("192.0.2.1"), 500),
    remote=Endpoint(A("192.0.2.2"), 500),
    initiator_cookie=bytes.fromhex("0123456789abcdef"),
    responder_cookie=bytes.fromhex("fedcba9876543210"),
    status=Phase1Status.PHASE1ST_ESTABLISHED,
    initiator=True,
    exchange_type=2,
    created=1700000000,
    phase2_count=2,
)
PENDING = Phase1Row(
    local=Endpoint(A("2001:db8::1"), 500),
    remote=Endpoint(A("2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"), 4500),
    initiator_cookie=bytes.fromhex("1111111111111111"),
    responder_cookie=bytes(8),
    status=Phase1Status.PHASE1ST_MSG1SENT,
    initiator=False,
    exchange_type=4,
    created=None,
)


def test_headers_line_up_with_the_columns() -> None:
    assert ISAKMP_HEADER_SHORT.index("Cookies") == 23
    assert ISAKMP_HEADER_LONG.index("ST") == 23 + 33 + 1
    assert ISAKMP_HEADER_WIDE.index("Destination") == 46
    assert ISAKMP_HEADER_WIDE.index("Cookies") == 92


def test_fixed_addr() -> None:
    assert fixed_addr(Endpoint(A("192.0.2.2"), 500), 22) == "192.0.2.2.500         "
    long6 = Endpoint(A("2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"), 4500)
    assert fixed_addr(long6, 22) == "2001:db8:ffff:ffff.4500"[:17] + ".4500"
    assert len(fixed_addr(long6, 45)) == 45


def test_short_table() -> None:
    text = format_isakmp_sa([ROW, PENDING], 0, localtime=time.gmtime)
    assert text == (
        "Destination            Cookies                           Created\n"
        "192.0.2.2.500          0123456789abcdef:fedcba9876543210 2023-11-14 22:13:20 \n"
        "2001:db8:ffff:fff.4500 1111111111111111:0000000000000000" + " " * 21 + "\n")


def test_long_table() -> None:
    text = format_isakmp_sa([ROW, PENDING], 1, localtime=time.gmtime)
    lines = text.splitlines()
    assert lines[0] == ISAKMP_HEADER_LONG
    assert lines[1] == ("192.0.2.2.500          0123456789abcdef:fedcba9876543210  9 I 10 M "
                        "2023-11-14 22:13:20      2 ")
    assert lines[2].endswith(" 3 R 10 A " + " " * 19 + "      0 ")
    assert lines[2][23:56] == "1111111111111111:0000000000000000"


def test_wide_table_has_the_source() -> None:
    lines = format_isakmp_sa([ROW], 2, localtime=time.gmtime).splitlines()
    assert lines[0] == ISAKMP_HEADER_WIDE
    assert lines[1].startswith("192.0.2.1.500" + " " * 32 + " 192.0.2.2.500" + " " * 32 + " ")
    assert lines[1][92:125] == "0123456789abcdef:fedcba9876543210"


def test_unknown_exchange_type_prints_no_letter() -> None:
    row = Phase1Row(ROW.local, ROW.remote, ROW.initiator_cookie, ROW.responder_cookie, 9, True,
                    exchange_type=32, created=None)
    line = format_isakmp_sa([row], 1).splitlines()[1]
    assert " 9 I 10 " + " " * 19 + " " in line


def test_schedule() -> None:
    text = format_schedule([ScheduleRow(1, 30, 1700000030, 1700000000)], localtime=time.gmtime)
    assert text == ("index    tick     xtime    created\n"
                    "1        30       1700000030 2023-11-14 22:13:20\n")


def test_events() -> None:
    src, dst = Endpoint(A("192.0.2.1"), 500), Endpoint(A("192.0.2.2"), 500)
    assert format_event(AdminEvent.EVT_PHASE2_UP, src, dst) == \
        "Phase 2 established : 192.0.2.1[500] -> 192.0.2.2[500]\n"
    assert format_event(AdminEvent.EVT_PHASE1_PEER_DELETED, src, None) == \
        "Event 262: 192.0.2.1[500] -> anonymous\n"  # racoonctl's saddr2str of AF_UNSPEC
