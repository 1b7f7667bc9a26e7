"""racoon's binary reply records: byte layouts where racoonctl reads them, round trips, and
clear errors for replies that are not whole records."""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyracoon.admin.clayout import CEvtAsync, CPh1Dump, CSchedDump, c_time_t
from pyracoon.admin.errors import AdminDecodeError
from pyracoon.admin.protocol import SockAddr
from pyracoon.admin.records import (
    EVT_ASYNC_LEN,
    PH1DUMP_LEN,
    SCHEDDUMP_LEN,
    EventRecord,
    decode_event,
    decode_ph1dump,
    decode_sadb_dump,
    decode_schedule,
    encode_event,
    encode_ph1dump,
    encode_sadb_dump,
    encode_schedule,
)
from pyracoon.admin.render import Endpoint, Phase1Row, ScheduleRow
from pyracoon.kernel import pfkey
from pyracoon.kernel.pfkey import SA, Address, Message
from pyracoon.kernel.sadb import ExtType, MsgType, SaType

TIME = "=q" if ctypes.sizeof(c_time_t) == 8 else "=i"  # time_t, and long (glibc: the same)
V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
LOCAL = Endpoint(V4("192.0.2.1"), 500)
REMOTE = Endpoint(V6("2001:db8::2"), 4500)


def test_ph1dump_bytes_where_racoonctl_reads_them() -> None:
    row = Phase1Row(LOCAL, REMOTE, bytes(range(8)), bytes(range(8, 16)), 9, False, 0x10, 4,
                    1_700_000_000, 3)
    raw = encode_ph1dump([row, row])
    assert len(raw) == 2 * PH1DUMP_LEN
    assert raw[:16] == bytes(range(16))  # isakmp_index: i_ck then r_ck
    assert struct.unpack_from("=ii", raw, CPh1Dump.status.offset) == (9, 1)  # RESPONDER
    remote = CPh1Dump.remote.offset
    assert raw[remote:remote + 128] == SockAddr(REMOTE.address, 4500).encode()
    local = CPh1Dump.local.offset
    assert raw[local:local + 2] == struct.pack("=H", socket.AF_INET)
    assert raw[CPh1Dump.version.offset] == 0x10 and raw[CPh1Dump.etype.offset] == 4
    assert struct.unpack_from(TIME, raw, CPh1Dump.created.offset) == (1_700_000_000,)
    assert struct.unpack_from("=i", raw, CPh1Dump.ph2cnt.offset) == (3,)
    assert decode_ph1dump(raw) == [row, row]


def test_an_sa_not_established_has_created_zero() -> None:
    row = Phase1Row(LOCAL, REMOTE, bytes(8), bytes(8), 3, True)
    raw = encode_ph1dump([row])
    assert struct.unpack_from(TIME, raw, CPh1Dump.created.offset) == (0,)
    assert decode_ph1dump(raw) == [row]


def test_partial_records_are_named() -> None:
    raw = encode_ph1dump([Phase1Row(LOCAL, REMOTE, bytes(8), bytes(8), 9, True)])
    with pytest.raises(AdminDecodeError, match=f"143 bytes, not a whole number of "
                                               f"{PH1DUMP_LEN}-byte records"):
        decode_ph1dump(raw[:143])
    with pytest.raises(AdminDecodeError, match="scheddump"):
        decode_schedule(bytes(SCHEDDUMP_LEN + 1))
    with pytest.raises(AdminDecodeError, match="an event of 10 bytes"):
        decode_event(bytes(10))


def test_an_isakmp_sa_without_address_is_an_error() -> None:
    with pytest.raises(AdminDecodeError, match="family AF_UNSPEC"):
        decode_ph1dump(bytes(PH1DUMP_LEN))


def test_scheddump_layout() -> None:
    raw = encode_schedule([ScheduleRow(7, 30, 1_700_000_030, 1_700_000_000)])
    assert len(raw) == SCHEDDUMP_LEN
    values = {name: struct.unpack_from(TIME, raw, getattr(CSchedDump, name).offset)[0]
              for name in ("xtime", "id", "created", "tick")}
    assert values == {"xtime": 1_700_000_030, "id": 7, "created": 1_700_000_000, "tick": 30}


def test_evt_async_layout_and_racoons_trailing_attributes() -> None:
    record = EventRecord(0x0201, 1_700_000_000, LOCAL, None, 0xDEADBEEF)
    raw = encode_event(record)
    assert len(raw) == EVT_ASYNC_LEN
    assert struct.unpack_from("=I", raw, 0) == (0x0201,)
    dst = CEvtAsync.ec_ph1dst.offset
    assert raw[dst:dst + 128] == bytes(128)  # no address: AF_UNSPEC, as racoon leaves it
    assert struct.unpack_from("=I", raw, CEvtAsync.ec_ph2msgid.offset) == (0xDEADBEEF,)
    assert decode_event(raw + b"\x80\x01\x00\x04") == record  # mode-cfg attributes follow


def _sa(spi: int) -> Message:
    m = Message(MsgType.DUMP, SaType.ESP, 0, 99, 4242)
    m.add(SA(spi, 4, 1, 0, 2, 12))
    m.add(Address(ExtType.ADDRESS_SRC, V4("192.0.2.1")))
    m.add(Address(ExtType.ADDRESS_DST, V4("192.0.2.2")))
    return m


def test_sadb_dump_counts_down_to_zero() -> None:
    raw = encode_sadb_dump([_sa(0x100), _sa(0x200), _sa(0x300)])
    seqs = []
    at = 0
    while at < len(raw):
        length = pfkey.HEADER.unpack_from(raw, at)[4] * 8
        seqs.append(pfkey.decode(raw[at:at + length]).seq)
        at += length
    assert seqs == [2, 1, 0]  # racoonctl prints until the message with seq 0
    code, sas = decode_sadb_dump(raw)
    assert code == 0 and [m.sa.spi for m in sas] == [0x100, 0x200, 0x300]


def test_empty_sad_is_the_kernels_enoent() -> None:
    raw = encode_sadb_dump([], SaType.AH)
    assert len(raw) == 16
    assert pfkey.decode(raw) == Message(MsgType.DUMP, SaType.AH, errno.ENOENT, 0, 0)
    assert decode_sadb_dump(raw) == (errno.ENOENT, [])


def test_a_sadb_dump_without_its_last_message_is_an_error() -> None:
    raw = encode_sadb_dump([_sa(1), _sa(2)])
    first = pfkey.HEADER.unpack_from(raw)[4] * 8
    with pytest.raises(AdminDecodeError, match="ends before its last SA"):
        decode_sadb_dump(raw[:first])
    with pytest.raises(AdminDecodeError, match="not a PF_KEY dump"):
        decode_sadb_dump(b"No SAD entries.\n")


_v4 = st.builds(V4, st.integers(0, 2**32 - 1))
_v6 = st.builds(V6, st.integers(0, 2**128 - 1))
_endpoint = st.builds(Endpoint, st.one_of(_v4, _v6), st.integers(0, 65535))
_row = st.builds(
    Phase1Row, _endpoint, _endpoint, st.binary(min_size=8, max_size=8),
    st.binary(min_size=8, max_size=8), st.integers(0, 11), st.booleans(), st.integers(0, 255),
    st.integers(0, 255), st.one_of(st.none(), st.integers(1, 2**40)), st.integers(0, 2**31 - 1))


@settings(max_examples=100, deadline=None)
@given(st.lists(_row, max_size=5))
def test_ph1dump_round_trip(rows: list[Phase1Row]) -> None:
    assert decode_ph1dump(encode_ph1dump(rows)) == rows


@settings(max_examples=100, deadline=None)
@given(st.lists(st.builds(ScheduleRow, st.integers(0, 2**40), st.integers(0, 2**40),
                          st.integers(0, 2**40), st.integers(0, 2**40)), max_size=5))
def test_schedule_round_trip(rows: list[ScheduleRow]) -> None:
    assert decode_schedule(encode_schedule(rows)) == rows


@settings(max_examples=100, deadline=None)
@given(st.builds(EventRecord, st.integers(0, 2**32 - 1), st.integers(0, 2**40),
                 st.one_of(st.none(), _endpoint), st.one_of(st.none(), _endpoint),
                 st.integers(0, 2**32 - 1)))
def test_event_round_trip(record: EventRecord) -> None:
    assert decode_event(encode_event(record)) == record


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2 * PH1DUMP_LEN))
def test_any_bytes_decode_or_fail_cleanly(data: bytes) -> None:
    for decode in (decode_ph1dump, decode_schedule, decode_event, decode_sadb_dump):
        try:
            decode(data)
        except AdminDecodeError:
            pass
