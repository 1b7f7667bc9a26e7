"""What ``pyracoonctl`` commands do inside the daemon (the server side of the admin socket).

The admin server (``pyracoon.admin.server``) decodes requests; this handler answers them with
the engine and the kernel. IPsec SAs are read with a DUMP on a second kernel socket, so the
daemon's own socket keeps carrying only the negotiation's traffic, and sent as racoon sends
them, the PF_KEY dump replies themselves; ISAKMP SAs, timers and events come from the engine
and go out as racoon's binary records (``pyracoon.admin.records``), which racoonctl and
pyracoonctl format.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from pyracoon.admin.errors import AdminCommandError
from pyracoon.admin.protocol import AdminIndex, AdminProto
from pyracoon.admin.records import (
    EventRecord,
    encode_event,
    encode_ph1dump,
    encode_schedule,
)
from pyracoon.admin.render import (
    AdminEvent,
    Endpoint,
    Phase1Row,
    Phase1Status,
    ScheduleRow,
)
from pyracoon.engine import events as ev
from pyracoon.kernel import ops
from pyracoon.kernel.base import KernelError, open_kernel
from pyracoon.kernel.dump import sad_entries, show_sad_reply

if TYPE_CHECKING:
    from pyracoon.engine.phase1 import Phase1
    from pyracoon.engine.quick import Quick

    from .feed import Subscription
    from .service import Daemon

SATYPES = {
    AdminProto.ADMIN_PROTO_ESP: (ops.Proto.ESP,),
    AdminProto.ADMIN_PROTO_AH: (ops.Proto.AH,),
    AdminProto.ADMIN_PROTO_IPSEC: (ops.Proto.ESP, ops.Proto.AH, ops.Proto.IPCOMP),
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


def _ep(e: ev.Endpoint) -> Endpoint:
    return Endpoint(e[0], e[1])


class DaemonAdmin:
    """``AdminHandler`` for a running ``Daemon``."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    # -- kernel reads, off the event loop ---------------------------------------------------

    def _dump_sync(
        self, protos: tuple[ops.Proto, ...], text: bool
    ) -> bytes | list[ops.KernelSa]:
        """The SAs as racoon's ``show-sa`` reply (``text``), or as entries."""
        with open_kernel(self.daemon.kernel_spec) as k:
            return show_sad_reply(k, protos) if text else sad_entries(k, protos)

    async def _dump(
        self, protos: tuple[ops.Proto, ...], text: bool
    ) -> bytes | list[ops.KernelSa]:
        try:
            return await asyncio.to_thread(self._dump_sync, protos, text)
        except KernelError as e:
            raise AdminCommandError(errno.EIO, f"cannot read the SAD: {e}") from None

    def _ask_sync(self, requests: list[ops.Request]) -> None:
        with open_kernel(self.daemon.kernel_spec) as k:
            for request in requests:
                reply = k.call(request)
                if isinstance(reply, ops.SaEvent) and reply.errno not in (0, errno.ESRCH):
                    raise AdminCommandError(
                        reply.errno, f"the kernel refused {type(request).__name__}"
                    )

    async def _ask(self, requests: list[ops.Request]) -> None:
        """Flush or delete SAs through a socket of their own, as setkey would: the kernel then
        announces the change to the daemon's socket like anyone else's, and the engine does
        what it does for any deleted SA (tells the peer, forgets the phase 2)."""
        try:
            await asyncio.to_thread(self._ask_sync, requests)
        except KernelError as e:
            raise AdminCommandError(errno.EIO, f"cannot change the SAD: {e}") from None

    # -- commands ---------------------------------------------------------------------------

    async def reload_config(self) -> str:
        """What SIGHUP does; a refused file is an error reply naming FILE:LINE, so the command
        fails where it was typed and not only in the log."""
        refused = self.daemon.reload()
        if refused is not None:
            raise AdminCommandError(
                errno.EINVAL, f"{refused}; the previous configuration is still running"
            )
        return ""

    async def show_schedule(self) -> bytes:
        """racoon's ``struct scheddump`` records, one per negotiation or SA that has a timer
        (racoonctl prints them as its table): ``tick`` is the
        seconds left, ``xtime`` the Unix time it fires, ``created`` when the SA was made (the
        engine's times are monotonic: converted here, where a person reads them)."""
        now = self.daemon.clock()
        engine = self.daemon.engine
        rows = []
        sas: list[Phase1 | Quick] = [*engine.ph1s.values(), *engine.quicks.values()]
        for sa in sas:
            when = sa.next_timer()
            if when is None:
                continue
            created = getattr(sa, "created", None) or now
            rows.append((when, created))
        rows.sort()
        return encode_schedule(
            ScheduleRow(
                i,
                max(0, int(when - now)),
                int(engine.wall_time_of(when)),
                engine.wall_time_of(created),
            )
            for i, (when, created) in enumerate(rows)
        )

    async def show_event(self) -> AsyncIterator[bytes]:
        """Events from now on, for as long as the client stays (no replay of old ones: an SA
        that was established before may be long gone)."""
        return self._events(self.daemon.feed.subscribe())

    @staticmethod
    async def _events(sub: Subscription) -> AsyncIterator[bytes]:
        """One ``struct evt_async`` per event. Events a slow client missed (``sub.dropped``) are
        skipped without notice: racoon's records have no way to say so that racoonctl prints."""
        with sub:
            while True:
                record = _event_record(await sub.get())
                if record is not None:
                    yield record

    async def show_sa(self, proto: AdminProto, verbose: int) -> bytes:
        """racoon's records (``verbose``, the ``-l`` count, is the client's to apply)."""
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
            return encode_ph1dump(rows)
        satypes = SATYPES.get(proto)
        if satypes is None:
            raise AdminCommandError(errno.ENOTSUP, f"show-sa for protocol {proto:#x}")
        reply = await self._dump(satypes, text=True)  # the kernel's own dump replies
        assert isinstance(reply, bytes)
        return reply

    async def flush_sa(self, proto: AdminProto) -> str:
        if proto == AdminProto.ADMIN_PROTO_ISAKMP:
            peers = {s.remote[0] for s in self.daemon.engine.isakmp_sas()}
            for peer in peers:
                self.daemon.engine.delete_isakmp(peer, self.daemon.clock())
            self.daemon.pump()
            return ""
        satypes = SATYPES.get(proto)
        if satypes is None:
            raise AdminCommandError(errno.ENOTSUP, f"flush-sa for protocol {proto:#x}")
        await self._ask([ops.FlushSa(0, proto) for proto in satypes])
        return ""

    async def delete_sa(self, proto: AdminProto, index: AdminIndex) -> str:
        if proto == AdminProto.ADMIN_PROTO_ISAKMP:
            gone = self.daemon.engine.delete_isakmp(index.dst.address, self.daemon.clock())
            self.daemon.pump()
            if not gone:
                raise AdminCommandError(errno.ENOENT, f"no ISAKMP-SA with {index.dst.address}")
            return ""
        satypes = SATYPES.get(proto)
        if satypes is None:
            raise AdminCommandError(errno.ENOTSUP, f"delete-sa for protocol {proto:#x}")
        entries = await self._dump(satypes, text=False)
        assert not isinstance(entries, bytes)
        matching = [
            e for e in entries if {e.id.src, e.id.dst} == {index.src.address, index.dst.address}
        ]
        if not matching:
            raise AdminCommandError(
                errno.ENOENT, f"no IPsec-SA between {index.src.address} and {index.dst.address}"
            )
        await self._ask([ops.DeleteSa(0, e.id) for e in matching])
        return ""

    async def establish_sa(
        self,
        proto: AdminProto,
        index: AdminIndex,
        wait: bool,
        remote_name: str | None,
        user: object,
    ) -> str:
        """Start the negotiation; with ``wait`` (``-w``, ``vpn-connect``) answer only once it
        has succeeded or failed, as docs/admin.md promises."""
        now = self.daemon.clock()
        engine = self.daemon.engine
        if proto not in (
            AdminProto.ADMIN_PROTO_ISAKMP,
            AdminProto.ADMIN_PROTO_ESP,
            AdminProto.ADMIN_PROTO_AH,
        ):
            raise AdminCommandError(errno.ENOTSUP, f"establish-sa for protocol {proto:#x}")
        # subscribe before starting: the outcome may come in this very pump
        with self.daemon.feed.subscribe() as sub:
            peer_address: object = None
            if proto == AdminProto.ADMIN_PROTO_ISAKMP:
                peer = (index.dst.address, index.dst.port or self.daemon.config.isakmp_port)
                local = (index.src.address, engine.config.local_port(index.src.address))
                if wait and any(
                    s.remote[0] == index.dst.address and s.state == "established"
                    for s in engine.isakmp_sas()
                ):
                    return ""  # up already: that is the outcome
                if engine.establish(peer, now, local):
                    peer_address = index.dst.address
            else:
                src = f"{index.src.address}/{index.prefs}"
                dst = f"{index.dst.address}/{index.prefd}"
                peer_address = engine.establish_ipsec(src, dst, now, index.ul_proto)
            self.daemon.pump()
            if peer_address is None:
                raise AdminCommandError(
                    errno.ENOENT,
                    "nothing to negotiate: no matching 'remote' or outbound ipsec policy; "
                    "see the daemon's log",
                )
            if wait:
                await _outcome(
                    sub, 1 if proto == AdminProto.ADMIN_PROTO_ISAKMP else 2, peer_address
                )
        return ""

    async def delete_all_sa_dst(self, proto: AdminProto, index: AdminIndex) -> str:
        self.daemon.engine.delete_isakmp(index.dst.address, self.daemon.clock())
        self.daemon.pump()
        return ""

    async def logout_user(self, login: str) -> str:
        raise AdminCommandError(errno.ENOTSUP, "XAUTH is not supported by pyracoon yet")

    async def get_sa_cert(self, index: AdminIndex) -> bytes:
        raise AdminCommandError(errno.ENOTSUP, "get-cert is not supported by pyracoon yet")


async def _outcome(sub: Subscription, phase: int, peer: object) -> None:
    """Wait for the end of the negotiation with ``peer``: return when the SA of ``phase`` is
    up, raise with the engine's reason when it failed (a phase-1 failure ends a phase-2 wait
    too). The engine's retransmission and phase-1 timers bound the wait."""
    while True:
        event = await sub.get()
        remote = getattr(event, "remote", None)
        if remote is None or remote[0] != peer:
            continue
        if phase == 1 and isinstance(event, ev.Phase1Established):
            return
        if phase == 2 and isinstance(event, ev.Phase2Established):
            return
        if isinstance(event, ev.NegotiationFailed) and event.phase <= phase:
            code = errno.ETIMEDOUT if "time up" in event.reason else errno.ECONNREFUSED
            raise AdminCommandError(code, f"phase {event.phase} with {peer} failed: {event.reason}")
        if isinstance(event, ev.PeerDead):
            raise AdminCommandError(errno.ETIMEDOUT, f"{peer} stopped answering (DPD)")


#: What ``show-event`` prints for each engine outcome, as racoonctl's event names.
_EVENT_KINDS: dict[type, AdminEvent] = {
    ev.Phase1Established: AdminEvent.EVT_PHASE1_UP,
    ev.Phase1Deleted: AdminEvent.EVT_PHASE1_DOWN,
    ev.Phase2Established: AdminEvent.EVT_PHASE2_UP,
    ev.Phase2Deleted: AdminEvent.EVT_PHASE2_DOWN,
    ev.PeerDead: AdminEvent.EVT_PHASE1_DPD_TIMEOUT,
}


def _event_record(event: ev.Event) -> bytes | None:
    """racoon's ``struct evt_async`` for an outcome; None for events a watcher has no use for."""
    if isinstance(event, ev.NegotiationFailed):
        kind = (
            AdminEvent.EVT_PHASE1_NO_RESPONSE
            if event.phase == 1
            else AdminEvent.EVT_PHASE2_NO_RESPONSE
        )
    else:
        found = _EVENT_KINDS.get(type(event))
        if found is None:
            return None
        kind = found
    local = getattr(event, "local", None)
    remote = getattr(event, "remote", None)
    return encode_event(EventRecord(
        kind, int(time.time()), _ep(local) if local else None, _ep(remote) if remote else None,
        getattr(event, "message_id", 0)))
