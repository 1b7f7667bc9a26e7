"""The binary reply bodies of racoon's admin socket, both ways: what the daemon sends, what
``pyracoonctl`` reads.

racoon answers ``show-sa``, ``show-schedule`` and ``show-event`` with binary records that
racoonctl formats, and so does pyracoon, so either client works with either daemon:

* ``show-sa isakmp``: an array of ``struct ph1dump`` (racoon's handler.c ``dumpph1``), no
  header, no count: the reply length says how many;
* ``show-sa esp|ah|ipsec``: the PF_KEY ``SADB_DUMP`` replies concatenated as the kernel sent
  them (racoon's pfkey.c ``pfkey_dump_sadb``); racoonctl prints them one after the other with
  setkey's printer until the one whose ``sadb_msg_seq`` is 0, so the last must be 0. An empty
  SAD is a single ``sadb_msg`` with ``sadb_msg_errno = ENOENT`` ("No SAD entries."). Those are
  PF_KEY messages, so the kernel layer builds and reads them (``pyracoon.kernel.dump``:
  ``encode_sad_reply``, ``decode_sad_reply``); ``decode_sadb_dump`` here only turns their
  errors into this module's;
* ``show-schedule``: an array of ``struct scheddump`` (racoon's schedule.c ``sched_dump``);
* ``show-event``: after an empty reply, one message per event: ``struct admin_com`` (command
  ``ADMIN_SHOW_EVT``) and ``struct evt_async`` (racoon's evt.c ``evtmsg_create``).

Layouts are the native C ones of ``clayout``. An address the record does not have (an event
without a phase 1) is an all-zero ``sockaddr_storage``, family ``AF_UNSPEC``, as racoon leaves
it; racoonctl prints it ``anonymous``.
"""

from __future__ import annotations

import ctypes
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from pyracoon.kernel.dump import SadReplyError, decode_sad_reply, encode_sad_reply

from .clayout import (
    SOCKADDR_STORAGE_LEN,
    CEvtAsync,
    CPh1Dump,
    CSchedDump,
    CSockaddrStorage,
)
from .errors import AdminDecodeError
from .protocol import SockAddr
from .render import Endpoint, Phase1Row, ScheduleRow

__all__ = [
    "EVT_ASYNC_LEN",
    "PH1DUMP_LEN",
    "SCHEDDUMP_LEN",
    "EventRecord",
    "decode_event",
    "decode_ph1dump",
    "decode_sadb_dump",
    "decode_schedule",
    "encode_event",
    "encode_ph1dump",
    "encode_sadb_dump",
    "encode_schedule",
]

PH1DUMP_LEN = ctypes.sizeof(CPh1Dump)  # 304 on x86-64
SCHEDDUMP_LEN = ctypes.sizeof(CSchedDump)  # 32 on x86-64
EVT_ASYNC_LEN = ctypes.sizeof(CEvtAsync)  # 280 on x86-64

INITIATOR = 0  # racoon's isakmp.h: ph1dump.side
RESPONDER = 1


@dataclass(frozen=True)
class EventRecord:
    """One ``struct evt_async``: an ``EVT_*`` type, when, the phase-1 addresses, the quick
    mode's message id (phase-2 events)."""

    event: int
    timestamp: int
    src: Endpoint | None
    dst: Endpoint | None
    ph2msgid: int = 0


# --------------------------------------------------------------------------- sockaddr


def _put_sockaddr(target: CSockaddrStorage, endpoint: Endpoint | None) -> None:
    if endpoint is None:
        return  # all zero: AF_UNSPEC, as racoon leaves an address it does not have
    raw = SockAddr(endpoint.address, endpoint.port).encode()
    ctypes.memmove(ctypes.addressof(target), raw, SOCKADDR_STORAGE_LEN)


def _get_sockaddr(source: CSockaddrStorage, name: str, offset: int) -> Endpoint | None:
    raw = bytes(source)
    if source.ss_family == socket.AF_UNSPEC:
        return None
    try:
        addr = SockAddr.decode(raw, 0, name)
    except AdminDecodeError as e:
        raise AdminDecodeError(e.field, offset + e.offset, e.message) from None
    return Endpoint(addr.address, addr.port)


def _records(body: bytes, size: int, name: str) -> range:
    """The offsets of the ``size``-byte records of ``body``; a partial record is an error."""
    if len(body) % size:
        raise AdminDecodeError(
            name, len(body) - len(body) % size,
            f"the reply has {len(body)} bytes, not a whole number of {size}-byte records")
    return range(0, len(body), size)


# --------------------------------------------------------------------------- show-sa isakmp


def encode_ph1dump(rows: Iterable[Phase1Row]) -> bytes:
    """The ``show-sa isakmp`` body: one ``struct ph1dump`` per row."""
    out = bytearray()
    for row in rows:
        rec = CPh1Dump()
        ctypes.memmove(ctypes.addressof(rec.index), row.initiator_cookie.ljust(8, b"\0")[:8]
                       + row.responder_cookie.ljust(8, b"\0")[:8], 16)
        rec.status = row.status
        rec.side = INITIATOR if row.initiator else RESPONDER
        _put_sockaddr(rec.remote, row.remote)
        _put_sockaddr(rec.local, row.local)
        rec.version = row.version
        rec.etype = row.exchange_type
        rec.created = int(row.created or 0)
        rec.ph2cnt = row.phase2_count
        out += bytes(rec)
    return bytes(out)


def decode_ph1dump(body: bytes) -> list[Phase1Row]:
    """The rows of a ``show-sa isakmp`` body (racoon's or pyracoon's)."""
    rows = []
    for at in _records(body, PH1DUMP_LEN, "ph1dump"):
        rec = CPh1Dump.from_buffer_copy(body, at)
        remote = _get_sockaddr(rec.remote, "ph1dump.remote", at + CPh1Dump.remote.offset)
        local = _get_sockaddr(rec.local, "ph1dump.local", at + CPh1Dump.local.offset)
        if remote is None or local is None:
            raise AdminDecodeError("ph1dump.remote" if remote is None else "ph1dump.local", at,
                                   "an ISAKMP SA without an address (family AF_UNSPEC)")
        rows.append(Phase1Row(
            local, remote, bytes(rec.index.i_ck), bytes(rec.index.r_ck), rec.status,
            rec.side == INITIATOR, rec.version, rec.etype, rec.created or None, rec.ph2cnt))
    return rows


# --------------------------------------------------------------------------- show-schedule


def encode_schedule(rows: Iterable[ScheduleRow]) -> bytes:
    """The ``show-schedule`` body: one ``struct scheddump`` per timer."""
    return b"".join(
        bytes(CSchedDump(xtime=row.xtime, id=row.index, created=int(row.created),
                         tick=row.tick))
        for row in rows)


def decode_schedule(body: bytes) -> list[ScheduleRow]:
    rows = []
    for at in _records(body, SCHEDDUMP_LEN, "scheddump"):
        rec = CSchedDump.from_buffer_copy(body, at)
        rows.append(ScheduleRow(rec.id, rec.tick, rec.xtime, rec.created))
    return rows


# --------------------------------------------------------------------------- show-event


def encode_event(record: EventRecord) -> bytes:
    """One pushed event's body (the server puts the ``struct admin_com`` in front)."""
    rec = CEvtAsync(ec_type=record.event, ec_timestamp=record.timestamp,
                    ec_ph2msgid=record.ph2msgid)
    _put_sockaddr(rec.ec_ph1src, record.src)
    _put_sockaddr(rec.ec_ph1dst, record.dst)
    return bytes(rec)


def decode_event(body: bytes) -> EventRecord:
    """A pushed event's body. Mode-config attributes racoon may append are read past."""
    if len(body) < EVT_ASYNC_LEN:
        raise AdminDecodeError("evt_async", 0,
                               f"an event of {len(body)} bytes, the record has {EVT_ASYNC_LEN}")
    rec = CEvtAsync.from_buffer_copy(body)
    return EventRecord(
        rec.ec_type, rec.ec_timestamp,
        _get_sockaddr(rec.ec_ph1src, "evt_async.ec_ph1src", CEvtAsync.ec_ph1src.offset),
        _get_sockaddr(rec.ec_ph1dst, "evt_async.ec_ph1dst", CEvtAsync.ec_ph1dst.offset),
        rec.ec_ph2msgid)


def decode_sadb_dump(body: bytes) -> tuple[int, list[object]]:
    """``(errno, SAs)`` of a ``show-sa esp|ah|ipsec`` body (``kernel.dump.decode_sad_reply``),
    a malformed one being an :class:`AdminDecodeError` like every other record here."""
    try:
        code, sas = decode_sad_reply(body)
    except SadReplyError as e:
        raise AdminDecodeError(e.field, e.offset, e.message) from None
    return code, list(sas)


encode_sadb_dump = encode_sad_reply
"""The ``show-sa esp|ah|ipsec`` body (``kernel.dump.encode_sad_reply``)."""
