"""What ``pyracoonctl`` commands do inside the daemon (the server side of the admin socket).

The admin server (``pyracoon.admin.server``) decodes requests; this handler answers them with
the engine and the kernel. IPsec SAs are read with a DUMP on a second kernel socket, so the
daemon's own socket keeps carrying only the negotiation's traffic, and printed with the
``setkey -D`` formatter; ISAKMP SAs come from the engine and print as racoonctl's table.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from pyracoon.admin.errors import AdminCommandError
from pyracoon.admin.protocol import AdminIndex, AdminProto
from pyracoon.admin.render import (
    AdminEvent,
    Endpoint,
    Phase1Row,
    Phase1Status,
    ScheduleRow,
    format_event,
    format_isakmp_sa,
    format_schedule,
)
from pyracoon.engine import events as ev
from pyracoon.kernel.base import KernelError, open_kernel
from pyracoon.kernel.pfkey import SA, Message
from pyracoon.kernel.sadb import MsgType, SaType
from pyracoon.setkey.dump import format_sa

if TYPE_CHECKING:
    from .service import Daemon

SATYPES = {
    AdminProto.ADMIN_PROTO_ESP: (SaType.ESP,),
    AdminProto.ADMIN_PROTO_AH: (SaType.AH,),
    AdminProto.ADMIN_PROTO_IPSEC: (SaType.ESP, SaType.AH, SaType.IPCOMP),
}
STATUS = {
    "start": Phase1Status.PHASE1ST_START,
    "msg1 sent": Phase1Status.PHASE1ST_MSG1SENT,
    "msg2 sent": Phase1Status.PHASE1ST_MSG2SENT,
    "msg3 sent": Phase1Status.PHASE1ST_MSG3SENT,
    "msg4 sent": Phase1Status.PHASE1ST_MSG3SENT,
    "msg5 sent": Phase1Status.PHASE1ST_MSG3SENT,
    "established": Phase1Status.PHASE1ST_ESTABLISHED,
    "expired": Phase1Status.PHASE1ST_EXPIRED,
    "failed": Phase1Status.PHASE1ST_EXPIRED,
}
EXCHANGE = {"Identity Protection": 2, "Aggressive": 4, "Base": 1}


def _ep(e: tuple) -> Endpoint:
    return Endpoint(e[0], e[1])


class DaemonAdmin:
    """``AdminHandler`` for a running ``Daemon``."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    # -- kernel reads, off the event loop ---------------------------------------------------

    def _dump_sync(self, satypes: tuple[int, ...]) -> list[Message]:
        with open_kernel(self.daemon.kernel_spec) as k:
            return [m for satype in satypes for m in k.dump(satype)]

    async def _dump(self, satypes: tuple[int, ...]) -> list[Message]:
        try:
            return await asyncio.to_thread(self._dump_sync, satypes)
        except KernelError as e:
            raise AdminCommandError(errno.EIO, f"cannot read the SAD: {e}") from None

    # -- commands ---------------------------------------------------------------------------

    async def reload_config(self) -> str:
        self.daemon.reload()
        return ""

    async def show_schedule(self) -> str:
        """racoonctl's table, one row per negotiation or SA that has a timer: ``tick`` is the
        seconds left, ``xtime`` the Unix time it fires, ``created`` when the SA was made."""
        now = time.time()
        engine = self.daemon.engine
        rows = []
        for sa in [*engine.ph1s.values(), *engine.quicks.values()]:
            when = sa.next_timer()
            if when is None:
                continue
            created = getattr(sa, "created", None) or now
            rows.append((when, created))
        rows.sort()
        return format_schedule(
            ScheduleRow(i, max(0, int(when - now)), int(when), created)
            for i, (when, created) in enumerate(rows)
        )

    async def show_event(self) -> AsyncIterator[str]:
        return self._events()

    async def _events(self) -> AsyncIterator[str]:
        seen = len(self.daemon.recent)
        for event in list(self.daemon.recent):
            yield _event_line(event)
        while True:
            await self.daemon.event_added.wait()
            self.daemon.event_added.clear()
            items = list(self.daemon.recent)
            for event in items[seen:] if seen <= len(items) else items:
                yield _event_line(event)
            seen = len(items)

    async def show_sa(self, proto: AdminProto, verbose: int) -> str:
        if proto == AdminProto.ADMIN_PROTO_ISAKMP:
            rows = [
                Phase1Row(
                    _ep(s.local),
                    _ep(s.remote),
                    s.initiator_cookie,
                    s.responder_cookie,
                    STATUS.get(s.state, Phase1Status.PHASE1ST_START),
                    s.initiator,
                    exchange_type=EXCHANGE.get(s.exchange, 2),
                    created=s.created if s.state == "established" else None,
                    phase2_count=s.phase2_count,
                )
                for s in self.daemon.engine.isakmp_sas()
            ]
            return format_isakmp_sa(rows, min(verbose, 2))
        satypes = SATYPES.get(proto)
        if satypes is None:
            raise AdminCommandError(errno.ENOTSUP, f"show-sa for protocol {proto:#x}")
        sas = await self._dump(satypes)
        if not sas:
            return "No SAD entries.\n"
        now = int(time.time())
        return "".join(format_sa(m, now) for m in sas)

    async def flush_sa(self, proto: AdminProto) -> str:
        if proto == AdminProto.ADMIN_PROTO_ISAKMP:
            peers = {s.remote[0] for s in self.daemon.engine.isakmp_sas()}
            for peer in peers:
                self.daemon.engine.delete_isakmp(peer, time.time())
            self.daemon.pump()
            return ""
        satypes = SATYPES.get(proto)
        if satypes is None:
            raise AdminCommandError(errno.ENOTSUP, f"flush-sa for protocol {proto:#x}")
        for satype in satypes:
            self.daemon.send_kernel(Message(MsgType.FLUSH, satype, seq=0, pid=0))
        return ""

    async def delete_sa(self, proto: AdminProto, index: AdminIndex) -> str:
        if proto == AdminProto.ADMIN_PROTO_ISAKMP:
            gone = self.daemon.engine.delete_isakmp(index.dst.address, time.time())
            self.daemon.pump()
            if not gone:
                raise AdminCommandError(errno.ENOENT, f"no ISAKMP-SA with {index.dst.address}")
            return ""
        satypes = SATYPES.get(proto)
        if satypes is None:
            raise AdminCommandError(errno.ENOTSUP, f"delete-sa for protocol {proto:#x}")
        matching = [
            m
            for m in await self._dump(satypes)
            if m.src is not None
            and m.dst is not None
            and {m.src.addr, m.dst.addr} == {index.src.address, index.dst.address}
        ]
        if not matching:
            raise AdminCommandError(
                errno.ENOENT, f"no IPsec-SA between {index.src.address} and {index.dst.address}"
            )
        for m in matching:
            delete = Message(MsgType.DELETE, m.satype).add(SA(m.sa.spi)).add(m.src).add(m.dst)
            self.daemon.send_kernel(delete)
        return ""

    async def establish_sa(self, proto, index, wait, remote_name, user) -> str:
        now = time.time()
        engine = self.daemon.engine
        if proto == AdminProto.ADMIN_PROTO_ISAKMP:
            peer = (index.dst.address, index.dst.port or self.daemon.config.isakmp_port)
            local = (index.src.address, engine.local_port(index.src.address))
            ok = engine.establish(peer, now, local)
        elif proto in (AdminProto.ADMIN_PROTO_ESP, AdminProto.ADMIN_PROTO_AH):
            src = f"{index.src.address}/{index.prefs}"
            dst = f"{index.dst.address}/{index.prefd}"
            ok = engine.establish_ipsec(src, dst, now, index.ul_proto)
        else:
            raise AdminCommandError(errno.ENOTSUP, f"establish-sa for protocol {proto:#x}")
        self.daemon.pump()
        if not ok:
            raise AdminCommandError(
                errno.ENOENT,
                "nothing to negotiate: no matching 'remote' or outbound ipsec policy; "
                "see the daemon's log",
            )
        return ""

    async def delete_all_sa_dst(self, proto: AdminProto, index: AdminIndex) -> str:
        self.daemon.engine.delete_isakmp(index.dst.address, time.time())
        self.daemon.pump()
        return ""

    async def logout_user(self, login: str) -> str:
        raise AdminCommandError(errno.ENOTSUP, "XAUTH is not supported by pyracoon yet")

    async def get_sa_cert(self, index: AdminIndex) -> bytes:
        raise AdminCommandError(errno.ENOTSUP, "get-cert is not supported by pyracoon yet")


def _event_line(event: ev.Event) -> str:
    if isinstance(event, ev.Phase1Established):
        kind = AdminEvent.EVT_PHASE1_UP
    elif isinstance(event, ev.Phase2Established):
        kind = AdminEvent.EVT_PHASE2_UP
    elif isinstance(event, ev.NegotiationFailed):
        kind = (
            AdminEvent.EVT_PHASE1_NO_RESPONSE
            if event.phase == 1
            else AdminEvent.EVT_PHASE2_NO_RESPONSE
        )
    else:
        return f"{type(event).__name__}\n"
    local = getattr(event, "local", None)
    return format_event(kind, _ep(local) if local else None, _ep(event.remote))
