"""racoon's admin-socket structs as ``ctypes`` structures: sizes and offsets as its C compiler
lays them out on this machine.

racoon and racoonctl copy these structs to and from the socket as they sit in memory, so the
wire format is the native layout: host byte order, and padding wherever the C ABI puts it. The
sizes cannot be written down as constants: ``struct sockaddr_storage`` is aligned like its
``unsigned long`` member (8 bytes on x86-64, 4 on i386), so ``struct admin_com_indexes`` has 4
bytes of padding after its four ``u_int8_t`` on x86-64 (264 bytes) and none on i386 (260), and
``struct ph1dump``'s ``time_t`` moves with the ABI too. ``ctypes`` applies the same rules as the
platform's C compiler, so the structures below, written member for member after racoon's
headers, give the offsets racoonctl uses (tests/admin checks them against gcc).

* ``struct sockaddr_storage`` (glibc's ``bits/socket.h``): ``sa_family_t ss_family``, padding,
  ``unsigned long __ss_align``; 128 bytes;
* ``struct admin_com_indexes`` (racoon's admin.h);
* ``struct ph1dump`` (racoon's handler.h, filled by ``dumpph1``), with ``isakmp_index``
  (isakmp_var.h: two 8-byte cookies);
* ``struct scheddump`` (racoon's schedule.h, filled by ``sched_dump``);
* ``struct evt_async`` (racoon's evt.h, sent by evt.c after a ``struct admin_com``).
"""

from __future__ import annotations

import ctypes

__all__ = [
    "CAdminComIndexes",
    "CEvtAsync",
    "CIsakmpIndex",
    "CPh1Dump",
    "CSchedDump",
    "CSockaddrStorage",
    "SOCKADDR_STORAGE_LEN",
    "c_time_t",
]

c_time_t: type[ctypes.c_long] = getattr(ctypes, "c_time_t", ctypes.c_long)
"""``time_t``: ctypes names it from Python 3.12 on; before, glibc's ``long``."""

_SS_SIZE = 128  # _SS_SIZE in glibc's bits/socket.h


class CSockaddrStorage(ctypes.Structure):
    """glibc's ``struct sockaddr_storage``: the family, padding, and the aligning member."""

    _fields_ = [
        ("ss_family", ctypes.c_ushort),
        ("ss_padding", ctypes.c_char * (_SS_SIZE - ctypes.sizeof(ctypes.c_ushort)
                                        - ctypes.sizeof(ctypes.c_ulong))),
        ("ss_align", ctypes.c_ulong),
    ]


SOCKADDR_STORAGE_LEN = ctypes.sizeof(CSockaddrStorage)


class CAdminComIndexes(ctypes.Structure):
    """``struct admin_com_indexes``: the selector of delete-sa, establish-sa, get-cert."""

    _fields_ = [
        ("prefs", ctypes.c_uint8),
        ("prefd", ctypes.c_uint8),
        ("ul_proto", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8),
        ("src", CSockaddrStorage),
        ("dst", CSockaddrStorage),
    ]


class CIsakmpIndex(ctypes.Structure):
    """``isakmp_index``: the initiator's and the responder's cookie."""

    _fields_ = [("i_ck", ctypes.c_uint8 * 8), ("r_ck", ctypes.c_uint8 * 8)]


class CPh1Dump(ctypes.Structure):
    """``struct ph1dump``: one ISAKMP SA of ``show-sa isakmp``."""

    _fields_ = [
        ("index", CIsakmpIndex),
        ("status", ctypes.c_int),
        ("side", ctypes.c_int),
        ("remote", CSockaddrStorage),
        ("local", CSockaddrStorage),
        ("version", ctypes.c_uint8),
        ("etype", ctypes.c_uint8),
        ("created", c_time_t),
        ("ph2cnt", ctypes.c_int),
    ]


class CSchedDump(ctypes.Structure):
    """``struct scheddump``: one timer of ``show-schedule``."""

    _fields_ = [
        ("xtime", c_time_t),
        ("id", ctypes.c_long),
        ("created", c_time_t),
        ("tick", c_time_t),
    ]


class CEvtAsync(ctypes.Structure):
    """``struct evt_async``: one event pushed to ``show-event`` (and establish-sa) clients."""

    _fields_ = [
        ("ec_type", ctypes.c_uint32),
        ("ec_timestamp", c_time_t),
        ("ec_ph1src", CSockaddrStorage),
        ("ec_ph1dst", CSockaddrStorage),
        ("ec_ph2msgid", ctypes.c_uint32),
    ]
