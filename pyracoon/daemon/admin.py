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
from collections import deque
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
        that was established before may be long gone). Events a slow client missed
        (``sub.dropped``) are skipped without notice: racoon's records have no way to say so
        that racoonctl prints."""
        return EventStream(self.daemon.feed.subscribe(), _AllEvents())

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
    ) -> str | AsyncIterator[bytes]:
        """Start the negotiation. With ``wait`` (pyracoonctl's ``-w``, ``vpn-connect``) answer
        only once it has succeeded or failed, as docs/admin.md promises. Otherwise answer now
        and hand the server that SA's events to push, as racoon's admin.c subscribes the
        connection to the new phase 1's or phase 2's listener list: racoonctl ``-w`` and
        ``vpn-connect`` read them until the event they wait for, and the stream ends (the
        connection closes) when the negotiation failed, as racoon closes the listeners of an
        SA it deletes. An ISAKMP SA that is up already is ``EEXIST``, racoon's answer, which
        racoonctl and pyracoonctl count as success."""
        now = self.daemon.clock()
        engine = self.daemon.engine
        if proto not in (
            AdminProto.ADMIN_PROTO_ISAKMP,
            AdminProto.ADMIN_PROTO_ESP,
            AdminProto.ADMIN_PROTO_AH,
        ):
            raise AdminCommandError(errno.ENOTSUP, f"establish-sa for protocol {proto:#x}")
        phase = 1 if proto == AdminProto.ADMIN_PROTO_ISAKMP else 2
        # subscribe before starting: the outcome may come in this very pump
        sub = self.daemon.feed.subscribe()
        handed_over = False
        try:
            peer_address: object = None
            if phase == 1:
                peer = (index.dst.address, index.dst.port or self.daemon.config.isakmp_port)
                local = (index.src.address, engine.config.local_port(index.src.address))
                if any(
                    s.remote[0] == index.dst.address and s.state == "established"
                    for s in engine.isakmp_sas()
                ):
                    if wait:
                        return ""  # up already: that is the outcome
                    raise AdminCommandError(
                        errno.EEXIST,
                        f"an ISAKMP-SA with {index.dst.address} is already established")
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
                await _outcome(sub, phase, peer_address)
                return ""
            stream = EventStream(sub, _SaEvents(phase, peer_address))
            handed_over = True  # the stream owns it now
            return stream
        finally:
            if not handed_over:
                sub.close()

    async def delete_all_sa_dst(self, proto: AdminProto, index: AdminIndex
                                ) -> str | AsyncIterator[bytes]:
        """``vpn-disconnect``: delete every phase-1 SA to the gateway. As racoon's admin.c, a
        client of a gateway that had SAs is then subscribed to every event (racoonctl waits
        for the "Phase 1 deleted" among them); with nothing to delete the answer is all."""
        # before deleting: the events come in this very pump
        sub = self.daemon.feed.subscribe()
        handed_over = False
        try:
            gone = self.daemon.engine.delete_isakmp(index.dst.address, self.daemon.clock())
            self.daemon.pump()
            if not gone:
                return ""
            stream = EventStream(sub, _AllEvents())
            handed_over = True
            return stream
        finally:
            if not handed_over:
                sub.close()

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


class _AllEvents:
    """Every event, for as long as the client stays: racoon's global listener list."""

    def take(self, event: ev.Event) -> tuple[list[bytes], bool]:
        record = _event_record(event)
        return ([record] if record is not None else []), False


class _SaEvents:
    """The events of one negotiation and the SA it makes, as racoon's evt.c sends them to the
    listener list of that phase 1 (``ph1->evt_listeners``) or phase 2 (``iph2->...``).

    Phase 1: "Phase 1 established" followed by racoon's "mode configuration done" (racoon
    sends it right after for a ``remote`` without mode_cfg, which pyracoon never has:
    isakmp.c ``log_ph1established``; racoonctl's ``-w isakmp`` and ``vpn-connect`` wait for
    it), then the phase-2 events under that SA, until it is deleted or its peer is dead. A
    phase 1 that fails sends its failure and ends.

    Phase 2: "Phase 2 established" (what racoonctl ``-w esp|ah`` waits for), until deleted;
    a failed quick mode sends its failure and ends; a failed phase 1 under it just ends (its
    event goes to the phase 1's listeners, not the phase 2's).

    The engine's events name the peer, not the negotiation, so the SA is told by its peer's
    address, then by its cookies or message id once it is up.
    """

    def __init__(self, phase: int, peer: object) -> None:
        self.phase = phase
        self.peer = peer
        self.cookies: bytes | None = None
        self.message_id: int | None = None

    def take(self, event: ev.Event) -> tuple[list[bytes], bool]:
        remote = getattr(event, "remote", None)
        if remote is None or remote[0] != self.peer:
            return [], False
        if self.phase == 1:
            return self._phase1(event)
        return self._phase2(event)

    def _phase1(self, event: ev.Event) -> tuple[list[bytes], bool]:
        up = self.cookies is not None
        if isinstance(event, ev.Phase1Established) and not up:
            self.cookies = event.cookies
            done = _record(AdminEvent.EVT_PHASE1_MODE_CFG, event.local, event.remote)
            return [r for r in (_event_record(event), done) if r is not None], False
        if isinstance(event, ev.NegotiationFailed) and event.phase == 1 and not up:
            return _records(event), True
        if isinstance(event, (ev.Phase1Deleted, ev.PeerDead)) and event.cookies == self.cookies:
            return _records(event), True
        if up and isinstance(event, (ev.Phase2Established, ev.Phase2Deleted)) or (
                up and isinstance(event, ev.NegotiationFailed) and event.phase == 2):
            return _records(event), False
        return [], False

    def _phase2(self, event: ev.Event) -> tuple[list[bytes], bool]:
        up = self.message_id is not None
        if isinstance(event, ev.Phase2Established) and not up:
            self.message_id = event.message_id
            return _records(event), False
        if isinstance(event, ev.NegotiationFailed) and not up:
            return (_records(event) if event.phase == 2 else []), True
        if isinstance(event, ev.Phase2Deleted) and event.message_id == self.message_id:
            return _records(event), True
        return [], False


class EventStream:
    """The records a subscription's events become, pushed by the admin server.

    An object rather than an async generator because the subscription must be released also
    when the server never starts iterating (a client of request version 0, a reply that could
    not be written): ``aclose`` releases it in every case."""

    def __init__(
        self,
        sub: Subscription,
        select: _AllEvents | _SaEvents,
    ) -> None:
        self._sub = sub
        self._select = select
        self._pending: deque[bytes] = deque()
        self._done = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._pending:
            if self._done:
                self._sub.close()
                raise StopAsyncIteration
            records, self._done = self._select.take(await self._sub.get())
            self._pending.extend(records)
        return self._pending.popleft()

    async def aclose(self) -> None:
        self._sub.close()


def _records(event: ev.Event) -> list[bytes]:
    record = _event_record(event)
    return [record] if record is not None else []


def _record(kind: AdminEvent, local: ev.Endpoint | None, remote: ev.Endpoint | None,
            message_id: int = 0) -> bytes:
    return encode_event(EventRecord(
        kind, int(time.time()), _ep(local) if local else None, _ep(remote) if remote else None,
        message_id))


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
    return _record(kind, getattr(event, "local", None), getattr(event, "remote", None),
                   getattr(event, "message_id", 0))
