"""The dispatcher: every phase-1 and phase-2 SA of one host, sans I/O.

Theory of operation
-------------------
Three things come in -- :meth:`Engine.receive_datagram` (an ISAKMP datagram with its local and
remote endpoints), :meth:`Engine.receive_kernel` (a PF_KEY message: ACQUIRE, GETSPI/UPDATE/ADD
replies, EXPIRE, DELETE, SPD dumps and changes) and :meth:`Engine.handle_timer` -- each with the
current time ``now`` (seconds on a monotonic clock in the daemon, a fake clock in tests; the
engine never reads a clock).  What the engine decided comes out of :meth:`Engine.events` as
:mod:`~pyracoon.engine.events` values, and :meth:`Engine.next_timer` says when it wants to be
called again.

This module only routes and owns what crosses SAs (the OCaml isakmp "Dispatcher" split):

* a datagram goes to the SA its cookies and message id name (:mod:`.phase1`, :mod:`.quick`,
  :mod:`.informational`), a new responder is created for a first message;
* a kernel message goes to the negotiation waiting for it (by ``(seq, type, satype)``), to the
  SPD cache (:mod:`.spd`), to the purge it answers, or starts a negotiation (ACQUIRE);
* a timer goes to the due SAs only (:mod:`.timers`, one heap for all);
* what an SA reports (:class:`~pyracoon.engine.context.Outcome`: established, failed, dying,
  expired, dead) is acted upon here: INITIAL-CONTACT, queued phase 2s, Delete, ACQUIRE errors.

Credentials are loaded with the configuration (:mod:`.credentials`).  Failures are
:mod:`~pyracoon.engine.errors` exceptions named after the notify to send; this module turns
them into the notify, the log lines and the end of the SA.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyracoon.config.model import Config, Rekey, Remote
from pyracoon.kernel import ops
from pyracoon.wire import Message, WireError, decode_message
from pyracoon.wire.constants import ExchangeType, display_name

from . import events as ev
from .context import (
    Outcome,
    OutcomeKind,
    Output,
    ReplyKey,
    Settings,
    event_key,
    padding_policy,
)
from .credentials import Credentials
from .errors import EngineError, LocalError, NoProposalChosen, UnexpectedMessage
from .events import Endpoint, IPAddress, Level, fmt_endpoint
from .half_open import HalfOpen
from .informational import Informational
from .phase1 import AGGRESSIVE, MAIN, P1State, Phase1, Role, random_message_id
from .proposals import PROTOCOL_NAMES
from .quick import QState, Quick
from .spd import SpdCache, SpdEntry, policy_offers, tunnel_request
from .tables import Phase1Table, QuickTable
from .timers import TimerHeap
from .traffic import KERNEL_PROTO, Request, Selector, not_a_peer

#: How many such destinations are remembered, to log each at INFO only once.
_NOT_A_PEER_MEMORY = 1024


#: ACQUIREs kept while the SPD dump is under way (a kernel sends them for queued traffic at once)
_EARLY_ACQUIRES = 256


@dataclass(eq=False)
class Waiting:
    """A phase-2 request queued until its phase 1 is up (timer phase1)."""

    remote: Remote
    local: Endpoint
    peer: Endpoint
    request: Request
    deadline: float
    queued: bool = True


def _unix(now: float) -> float:
    return now


class Engine:
    """All negotiations of one host.

    What it asks of the kernel and hears from it is the vocabulary of :mod:`pyracoon.kernel.ops`
    (the socket, not the engine, knows which process it is).

    ``psk`` overrides ``path pre_shared_key`` (tests, or a daemon that reads the file itself).
    ``credentials`` are those of ``config`` already loaded (the daemon's start-up checks loaded
    them; ``psk`` is then not used): without, they are loaded here.  A reload always loads.
    ``wall_time`` turns an engine time into Unix time, for what people read (``show-sa``
    dates, certificate validity); by default engine times are Unix times (tests).
    ``wall_clock`` (engine time -> date) overrides it for certificate validity only.
    ``commit_bit`` sets the commit bit in QM1: racoon never does; it exists to test the other
    side of racoon's isakmp_quick.c against ourselves.  ``export_ike_keys`` emits
    :class:`~pyracoon.engine.events.IkeKeys` (``pyracoon --ike-keylog``; off by default: the
    event carries a secret).
    """

    def __init__(
        self,
        config: Config,
        psk: Any = None,
        wall_clock: Callable[[float], datetime] | None = None,
        commit_bit: bool = False,
        export_ike_keys: bool = False,
        wall_time: Callable[[float], float] | None = None,
        credentials: Credentials | None = None,
        half_open: HalfOpen | None = None,
    ) -> None:
        if credentials is not None and credentials.config is not config:
            raise ValueError("the credentials given to the engine are not those of its config")
        self.psk = psk
        self.wall_time: Callable[[float], float] = wall_time or _unix
        self.wall_clock = wall_clock
        self.out = Output(export_ike_keys=export_ike_keys)
        self.config = config
        credentials = self._load_credentials(config, credentials)
        self.settings = Settings(
            config, credentials, config.timer, padding_policy(config), commit_bit,
            self._wall_date,
        )  # fmt: skip
        self.ph1s = Phase1Table()
        self.half_open = half_open if half_open is not None else HalfOpen()
        """Responder phase 1s not yet established, capped (half_open.py says why)."""
        self.quicks = QuickTable()
        self.established: list[Quick] = []
        self.waiting: list[Waiting] = []
        self.spdc = SpdCache(self.out)
        """The SPD cache; ACQUIREs that come while it loads wait in early_acquires."""
        self.early_acquires: list[ops.Acquire] = []
        self.info = Informational(self.out, self.settings, self)
        self.contacted: set[IPAddress] = set()
        #: Destinations whose ACQUIREs were ignored (not_a_peer) and already logged at INFO.
        self.not_peers: set[IPAddress] = set()
        self.timers: TimerHeap[Any] = TimerHeap()
        self._touched: list[Any] = []
        self.now = 0.0

    # ================================================================== plumbing
    @property
    def commit_bit(self) -> bool:
        return self.settings.commit_bit

    @commit_bit.setter
    def commit_bit(self, value: bool) -> None:
        self.settings.commit_bit = value

    @property
    def export_ike_keys(self) -> bool:
        return self.out.export_ike_keys

    @export_ike_keys.setter
    def export_ike_keys(self, value: bool) -> None:
        self.out.export_ike_keys = value

    @property
    def spd(self) -> dict[int, SpdEntry]:
        """The cached SPD entries by policy id."""
        return self.spdc.entries

    @property
    def spd_loading(self) -> bool:
        """Between our X_SPDDUMP request and its last reply."""
        return self.spdc.loading

    @property
    def pending(self) -> dict[ReplyKey, Any]:
        """Kernel requests whose replies an SA waits for."""
        return self.out.pending

    @property
    def _events(self) -> list[ev.Event]:
        return self.out.events

    @property
    def padding(self) -> Any:
        return self.settings.padding

    @property
    def timer_visits(self) -> int:
        """Timer entries examined so far by next_timer/handle_timer (cost, for tests)."""
        return self.timers.visits

    def wall_time_of(self, when: float) -> float:
        """Unix time of engine time ``when`` (for ``show-sa``, ``show-schedule``)."""
        return self.wall_time(when)

    def _wall_date(self, now: float) -> datetime:
        if self.wall_clock is not None:
            return self.wall_clock(now)
        return datetime.fromtimestamp(self.wall_time(now), UTC)

    def wall_clock_datetime(self) -> datetime:
        """The last input's time as a date, for certificate validity."""
        return self._wall_date(self.now)

    def _load_credentials(self, config: Config, loaded: Credentials | None = None) -> Credentials:
        """Certificates, keys, trust stores and peers_certfile of ``config``, read now unless
        ``loaded`` already holds them; each file that failed is one ERROR line naming the
        remote, the file and the reason."""
        creds = loaded if loaded is not None else Credentials.load(config, self.psk)
        for line in creds.problems:
            self.out.log(Level.ERROR, line)
        return creds

    def _certificate_warnings(self, now: float) -> None:
        for line in self.settings.credentials.validity_warnings(self._wall_date(now)):
            self.out.log(Level.WARNING, line)

    def events(self) -> list[ev.Event]:
        """Everything decided since the last call, in order."""
        out, self.out.events = self.out.events, []
        return out

    def log(self, level: Level, text: str, peer: Any = None) -> None:
        """Queue a log line (racoon's wording where racoon has one)."""
        self.out.log(level, text, peer)

    def next_seq(self) -> int:
        """A fresh PF_KEY sequence number for requests not tied to an ACQUIRE."""
        return self.out.next_seq()

    def kernel_request(self, request: ops.Request, owner: Quick | None = None) -> None:
        """Queue a kernel request; replies come back to ``owner`` (context.reply_key)."""
        self.out.kernel_request(request, owner)

    def _touch(self, sa: Any) -> None:
        """``sa`` is being called: its timers may move (rescheduled in :meth:`_settle`)."""
        self._touched.append(sa)

    def _call(self, sa: Any, action: Callable[[], None]) -> None:
        """Call into one SA, then act on what it reported, in order."""
        self._touch(sa)
        try:
            action()
        finally:
            self._drain_outcomes()

    def _drain_outcomes(self) -> None:
        while self.out.outcomes:
            self._on_outcome(self.out.outcomes.popleft())

    def _settle(self) -> None:
        """End of an input: act on what is left and put the touched SAs back on the heap."""
        self._drain_outcomes()
        touched, self._touched = self._touched, []
        for sa in touched:
            self._reschedule(sa)

    def _alive(self, sa: Any) -> bool:
        if isinstance(sa, Phase1):
            return self.ph1s.get(sa.icky) is sa
        if isinstance(sa, Quick):
            return self.quicks.get((sa.ph1.icky, sa.message_id)) is sa
        return isinstance(sa, Waiting) and sa.queued

    def _reschedule(self, sa: Any) -> None:
        if not self._alive(sa):
            self.timers.cancel(sa)
        elif isinstance(sa, Waiting):
            self.timers.set(sa, sa.deadline)
        else:
            self.timers.set(sa, sa.next_timer())

    def _on_outcome(self, o: Outcome) -> None:
        kind, sa, now = o.kind, o.sa, o.now
        if kind is OutcomeKind.PHASE1_ESTABLISHED:
            self.phase1_established(sa, now)
        elif kind is OutcomeKind.PHASE1_FAILED:
            self.phase1_failed(sa, o.text, now)
        elif kind is OutcomeKind.PHASE1_DYING:
            self.phase1_dying(sa, now)
        elif kind is OutcomeKind.PHASE1_EXPIRED:
            self.phase1_expired(sa, now)
        elif kind is OutcomeKind.PHASE1_DEAD:
            self.phase1_dead(sa, now)
        elif kind is OutcomeKind.PHASE2_ESTABLISHED:
            self.phase2_established(sa, now)
        elif kind is OutcomeKind.PHASE2_FAILED:
            self.phase2_failed(sa, o.text, now)
        elif kind is OutcomeKind.PHASE2_EXPIRED:
            self.phase2_expired(sa, now)
        elif kind is OutcomeKind.PHASE2_REPLACED:
            self.info.retire(sa.request)

    # ================================================================== start
    def start(self, now: float) -> None:
        """REGISTER for AH/ESP/IPComp, then X_SPDDUMP to fill the SPD cache (racoon's pfkey.c,
        pfkey_init())."""
        self.now = now
        for proto in (ops.Proto.AH, ops.Proto.ESP, ops.Proto.IPCOMP):
            # REGISTER, so that ACQUIREs for it come to us
            self.kernel_request(ops.Register(self.next_seq(), proto))
        self.spdc.request_dump(clear=False)
        self._certificate_warnings(now)
        self._settle()

    def reload(self, config: Config, now: float) -> None:
        """SIGHUP: take the new configuration and re-read the SPD (racoon(8)).

        Existing SAs stay; each ISAKMP SA is re-bound to the remote the new file gives for its
        peer (racoon's revalidation), or keeps its old settings, with a warning, when the new
        file has none.  Certificates, keys and the CA directory are read again now; a file
        that fails is logged now, and negotiations that need it fail with that reason.
        """
        self.now = now
        self.config = config
        self.settings.config = config
        self.settings.timer = config.timer
        self.settings.padding = padding_policy(config)
        self.settings.credentials = self._load_credentials(config)
        self._certificate_warnings(now)
        for ph1 in self.ph1s.values():
            remote = config.remote_for(ph1.peer[0], ph1.peer[1])
            if remote is None:
                self.log(
                    Level.WARNING,
                    f"no remote for {fmt_endpoint(ph1.peer)} after the reload: ISAKMP-SA "
                    f"{ph1.index()} keeps its old settings until it ends",
                    ph1.peer[0],
                )
            else:
                ph1.remote = remote
        self.spdc.request_dump(clear=True)
        self._settle()

    # ================================================================== racoonctl
    def isakmp_sas(self) -> list[ev.IsakmpSaStatus]:
        """Every ISAKMP SA, negotiating or established (``show-sa isakmp``); ``created`` is
        Unix time."""
        return [
            ev.IsakmpSaStatus(
                ph1.local,
                ph1.peer,
                ph1.icky,
                ph1.rcky,
                self.wall_time(ph1.created),
                ph1.state.value,
                display_name(ExchangeType, ph1.exchange),
                ph1.role is Role.INITIATOR,
                sum(1 for q in self.established if q.ph1 is ph1),
            )
            for ph1 in self.ph1s.values()
        ]

    def establish(self, peer: Endpoint, now: float, local: Endpoint | None = None) -> bool:
        """``establish-sa isakmp``: start a phase 1 with ``peer`` unless one exists."""
        self.now = now
        peer = ev.endpoint(*peer)
        if self.phase1_for(peer) is not None:
            return True
        remote = self.config.remote_for(peer[0], peer[1])
        if remote is None:
            self.log(Level.ERROR, f"no configuration found for {peer[0]}", peer[0])
            return False
        if local is None:
            wildcard = ipaddress.ip_address("::" if peer[0].version == 6 else "0.0.0.0")
            local = (wildcard, self.config.isakmp_port)
        started = self.initiate(remote, local, peer, now) is not None
        self._settle()
        return started

    def delete_isakmp(self, peer_address: Any, now: float) -> int:
        """``delete-sa isakmp``: announce and drop every ISAKMP SA with that peer."""
        self.now = now
        address = ipaddress.ip_address(str(peer_address).split("%")[0])
        gone = list(self.ph1s.of_peer(address))
        for ph1 in gone:
            self.log(Level.INFO, f"purging ISAKMP-SA spi={ph1.index()}.", address)
            self.remove_phase1(ph1, announce=True)
        self._settle()
        return len(gone)

    def shutdown(self, now: float) -> int:
        """The daemon stops: tell every peer with a Delete (Informational.farewell)."""
        self.now = now
        sent = self.info.farewell()
        self._settle()
        return sent

    # ================================================================== timers
    def next_timer(self) -> float | None:
        """When the engine next wants :meth:`handle_timer` (None: no timer).  O(1): the top
        of the timer heap."""
        return self.timers.next()

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now`` (resends, deadlines, lifetimes, DPD), visiting only
        the SAs that are due: phase 1s, then quick modes, then waiting requests, each in the
        order they were created."""
        self.now = now
        for sa in self.timers.pop_due(now, _timer_rank):
            if not self._alive(sa):
                continue
            if isinstance(sa, Waiting):
                self._waiting_timed_out(sa)
                continue
            t = sa.next_timer()
            if t is not None and now >= t:
                self._call(sa, functools.partial(sa.handle_timer, now))
            else:
                self._touch(sa)
        self._settle()

    def _waiting_timed_out(self, w: Waiting) -> None:
        ph1 = self.phase1_for(w.peer)
        if ph1 is not None and ph1.state not in (P1State.FAILED, P1State.EXPIRED):
            # racoon gives up here even while the phase 1 still resends; a lossy path then
            # never gets its SAs. Its own timers bound the phase 1: wait for it.
            w.deadline = self.now + self.config.timer.phase1
            self._touch(w)
            return
        self._unqueue(w)
        offer = w.request.offers[-1] if w.request.offers else None
        proto = PROTOCOL_NAMES.get(offer.protocol, "?") if offer else "?"
        self.log(
            Level.ERROR,
            "phase2 negotiation failed due to time up waiting for phase1. "
            f"{proto} {fmt_endpoint(w.peer)}->{fmt_endpoint(w.local)}",
            w.peer[0],
        )
        self.log(
            Level.INFO,
            f"{w.peer[0]} give up to get IPsec-SA due to time up to wait.",
            w.peer[0],
        )
        self._acquire_error(w.request)
        self.out.emit(ev.NegotiationFailed(2, w.peer, "time up waiting for phase 1"))

    def _queue(self, w: Waiting) -> None:
        self.waiting.append(w)
        self._touch(w)

    def _unqueue(self, w: Waiting) -> None:
        if w.queued:
            w.queued = False
            self.waiting.remove(w)
            self.timers.cancel(w)

    # ================================================================== credentials
    def psk_source(self) -> Any:
        """Where pre-shared keys come from: the injected source, else ``path pre_shared_key``."""
        return self.settings.credentials.psk_source()

    # ================================================================== datagrams
    def receive_datagram(self, data: bytes, local: Endpoint, remote: Endpoint, now: float) -> None:
        """One ISAKMP datagram (without NAT-T marker) from ``remote`` to ``local``."""
        self.now = now
        try:
            self._route_datagram(data, ev.endpoint(*local), ev.endpoint(*remote), now)
        finally:
            self._settle()

    def _route_datagram(self, data: bytes, local: Endpoint, remote: Endpoint, now: float) -> None:
        try:
            msg = decode_message(data)
        except WireError as exc:
            self.log(Level.ERROR, f"invalid packet from {fmt_endpoint(remote)}: {exc}", remote[0])
            return
        ph1 = self.ph1s.get(bytes(msg.initiator_cookie))
        if (
            ph1 is not None
            and any(ph1.rcky)
            and any(msg.responder_cookie)
            and bytes(msg.responder_cookie) != ph1.rcky
        ):
            self.log(Level.DEBUG, "responder cookie mismatch: dropped", remote[0])
            return
        if ph1 is not None and remote[0] != ph1.peer[0]:
            # racoon warns and goes on; a copy from elsewhere must not make us answer the peer
            db, act = fmt_endpoint(ph1.peer), fmt_endpoint(remote)
            self.log(Level.WARNING, f"remote address mismatched. db={db}, act={act}", remote[0])
            return
        fresh: Phase1 | None = None  # a responder this very datagram creates
        try:
            if msg.exchange_type in (MAIN, AGGRESSIVE):
                if ph1 is None:
                    if any(msg.responder_cookie):
                        self.log(Level.DEBUG, "unknown ISAKMP-SA: dropped", remote[0])
                        return
                    if not self.half_open.admits(remote[0]):
                        self.log(Level.WARNING, self.half_open.refusal(remote), remote[0])
                        return
                    ph1 = Phase1.for_first_message(
                        self.out, self.settings, msg, local, remote, now
                    )
                    if ph1 is None:
                        return
                    self.ph1s[ph1.icky] = ph1
                    fresh = ph1
                    evicted = self.half_open.add(ph1)
                    if evicted is not None and self._alive(evicted):
                        self.log(Level.WARNING, self.half_open.eviction(evicted), evicted.peer[0])
                        self.remove_phase1(evicted, announce=False)
                if msg.exchange_type != ph1.exchange:
                    raise UnexpectedMessage("exchange type changed in the middle of phase 1")
                p = ph1
                self._call(p, lambda: p.receive(msg, data, now))
            elif msg.exchange_type == ExchangeType.QUICK:
                if ph1 is None or not ph1.established:
                    self.log(
                        Level.DEBUG,
                        "quick mode for an unknown or unestablished ISAKMP-SA: dropped",
                        remote[0],
                    )
                    return
                self._receive_quick(ph1, msg, data, now)
            elif msg.exchange_type == ExchangeType.INFORMATIONAL:
                if ph1 is not None:
                    self._touch(ph1)  # an R-U-THERE-ACK moves its DPD timers
                self.info.receive(ph1, msg, remote, now)
            else:
                self.log(
                    Level.WARNING,
                    "unsupported exchange "
                    f"{display_name(ExchangeType, msg.exchange_type)} from "
                    f"{fmt_endpoint(remote)}: dropped",
                    remote[0],
                )
        except UnexpectedMessage as exc:
            self.log(Level.DEBUG, f"{exc}: dropped", remote[0])
            if fresh is not None and fresh.state is P1State.START:
                # A first message that starts nothing (an encrypted "MM1", a first message of
                # the wrong shape) leaves no responder behind: unauthenticated input must not
                # hold memory, and such a responder would have no timer to end it.
                self._forget_phase1(fresh)
        except EngineError as exc:
            self._fail(exc, ph1, msg, now)

    def _receive_quick(self, ph1: Phase1, msg: Message, data: bytes, now: float) -> None:
        key = (ph1.icky, msg.message_id)
        q = self.quicks.get(key)
        if q is None:
            q = Quick.for_qm1(self.out, self.settings, ph1, msg.message_id, now, self.spdc)
            self.quicks[key] = q
        found = q
        self._call(found, lambda: found.receive(msg, data, now))

    def _fail(self, exc: EngineError, ph1: Phase1 | None, msg: Message, now: float) -> None:
        peer = ph1.peer[0] if ph1 is not None else None
        self.log(Level.ERROR, exc.log_text, peer)
        for line in exc.details:
            if line:
                self.log(Level.ERROR, line, peer)
        if ph1 is None:
            return
        if msg.exchange_type in (MAIN, AGGRESSIVE):
            # The failed message is not committed (a forged or corrupted datagram must not move
            # the CBC chain), but the notify's IV is made from its last block, as racoon's
            # "ive" is, so that the peer that really sent it can read the notify.
            base_iv = ph1.pending_iv()
            ph1.abandon_message()
            if exc.notify is not None:
                self.info.send_notify(ph1, exc.notify, data=exc.data, base_iv=base_iv)
            if isinstance(exc, NoProposalChosen) and ph1.state is P1State.START:
                self.log(Level.ERROR, "failed to get valid proposal.", peer)
            if ph1.state is P1State.START or isinstance(exc, LocalError):
                self.phase1_failed(ph1, f"phase1 negotiation failed. {ph1.index()}", now)
            # Otherwise the SA stays where it was, as in racoon: the negotiation ends by a
            # valid retransmission or by its timer, never because of one bad datagram.
        elif msg.exchange_type == ExchangeType.QUICK:
            if exc.notify is not None:
                self.info.send_notify(ph1, exc.notify, data=exc.data)
            q = self.quicks.get((ph1.icky, msg.message_id))
            if q is not None and q.message_failed(exc):
                self.phase2_failed(q, f"phase2 negotiation failed. {q.index()}", now)

    def send_notify(
        self, ph1: Phase1, notify: int, now: float, *, data: bytes = b"",
        base_iv: bytes | None = None,
    ) -> None:  # fmt: skip
        """Send one notify about ``ph1`` (HASH-protected once keys exist)."""
        self.info.send_notify(ph1, notify, data=data, base_iv=base_iv)

    # ================================================================== kernel
    def receive_kernel(self, event: ops.Event, now: float) -> None:
        """One event from the kernel (a reply, a broadcast, an ACQUIRE, an EXPIRE)."""
        self.now = now
        try:
            self._route_kernel(event, now)
        finally:
            self._settle()

    def _route_kernel(self, event: ops.Event, now: float) -> None:
        if isinstance(event, ops.PolicyEvent):
            if self.spdc.receive(event):
                self._spd_loaded(now)
        elif isinstance(event, ops.Acquire):
            if self.spdc.loading:
                # Registered sockets receive ACQUIREs at once, before the SPD dump that tells
                # which policy they name has come back: keep them until it has.
                if len(self.early_acquires) < _EARLY_ACQUIRES:
                    self.early_acquires.append(event)
                return
            self._acquire(event, now)
        elif isinstance(event, ops.SaEvent):
            self._sa_event(event, now)
        elif event.malformed:
            self.log(Level.ERROR, f"kernel message ignored: {event.what}")
        else:
            self.log(Level.DEBUG, f"kernel message not used: {event.what}")

    def _sa_event(self, event: ops.SaEvent, now: float) -> None:
        change = event.change
        if change in (ops.SaChange.GETSPI, ops.SaChange.UPDATE, ops.SaChange.ADD):
            key = event_key(event)
            if not event.ours or key is None:
                return
            owner = self.out.pending.pop(key, None)
            if change is not ops.SaChange.GETSPI and owner is not None:
                # UPDATE and ADD replies share a key per protocol: keep it for the twin.
                if any(r.pending for r in owner.installed):
                    self.out.pending[key] = owner
            if owner is not None:
                self._call(owner, lambda: owner.kernel_reply(event, now))
                if owner.state in (QState.ESTABLISHED, QState.FAILED):
                    self.out.forget_pending(owner)
        elif change in (ops.SaChange.SOFT_EXPIRE, ops.SaChange.HARD_EXPIRE):
            self._expire(event, now)
        elif change is ops.SaChange.DELETE and not event.ours and event.errno == 0:
            self.info.kernel_deleted(event)
        elif change is ops.SaChange.DUMP and event.ours:
            self.info.receive_dump(event)
        elif change is ops.SaChange.FLUSH and event.errno == 0:
            for q in self.established:
                self.out.emit(ev.Phase2Deleted(q.local, q.peer, q.message_id))
            self.established.clear()

    def _spd_loaded(self, now: float) -> None:
        """The SPD cache is whole: carry out the ACQUIREs that arrived before it was."""
        self.spdc.loading = False
        early, self.early_acquires = self.early_acquires, []
        for acquire in early:
            self._acquire(acquire, now)

    def _find_policy(
        self, direction: ops.Direction, src: Selector, dst: Selector, *, wild: bool = False
    ) -> SpdEntry | None:
        return self.spdc.find(direction, src, dst, wild=wild)

    def _acquire(self, acquire: ops.Acquire, now: float) -> None:
        sp = self.spd.get(acquire.policy_id)
        if sp is None:
            self.log(Level.ERROR, f"no policy found: id:{acquire.policy_id}")
            return
        if sp.action is not ops.PolicyAction.IPSEC:
            return
        tunnel = tunnel_request(sp)
        peer_addr = tunnel.dst if tunnel is not None and tunnel.dst else acquire.dst
        why = not_a_peer(peer_addr)
        if why is not None:
            self._ignore_acquire(peer_addr, why, acquire.policy_id)
            return
        local_addr = tunnel.src if tunnel is not None and tunnel.src else acquire.src
        why = not_a_peer(local_addr)
        if why is not None:
            # e.g. a neighbour advertisement from our link-local address to a global one under
            # the memo's ::/0 policy: no IKE endpoint of ours can stand for that address
            why = f"its source {local_addr} is {why} and"
            self._ignore_acquire(peer_addr, why, acquire.policy_id)
            return
        pol_id = acquire.policy_id
        if any(
            q.request.policy_id == pol_id and q.state not in (QState.ESTABLISHED, QState.FAILED)
            for q in self.quicks.for_policy(pol_id)
        ) or any(w.request.policy_id == pol_id for w in self.waiting):
            self.log(Level.DEBUG, f"ignore the acquire because ph2 found for policy {pol_id}")
            return
        self._phase2_for_policy(sp, acquire.src, acquire.dst, acquire.seq, now)

    def _ignore_acquire(self, peer_addr: Any, why: str, policy_id: int) -> None:
        """Say once per destination, at INFO, why its ACQUIREs lead to nothing; then DEBUG.

        Nothing goes back to the kernel either, as racoon ignores an ACQUIRE for a multicast
        destination: there is no negotiation whose failure could be reported.
        """
        if peer_addr in self.not_peers:
            self.log(Level.DEBUG, f"ignore the acquire for {peer_addr}: {why}", peer_addr)
            return
        if len(self.not_peers) >= _NOT_A_PEER_MEMORY:
            self.not_peers.clear()
        self.not_peers.add(peer_addr)
        self.log(
            Level.INFO,
            f"ACQUIRE for {peer_addr} ignored: {why} cannot be an IKE peer, so nothing is "
            f"negotiated for it (policy id:{policy_id}; a '-P out none' policy for it stops "
            "these ACQUIREs)",
            peer_addr,
        )

    def establish_ipsec(
        self, src: str, dst: str, now: float, ul_proto: int = 255
    ) -> IPAddress | None:
        """``establish-sa esp|ah SRC DST``: negotiate the SAs the outbound SP covering that
        traffic asks for, as an ACQUIRE would (without a kernel seq).

        Returns the peer the negotiation is with (the tunnel's far end, or DST), for
        ``establish-sa -w`` to wait on; None when nothing could be started.
        """
        self.now = now
        local_sel = Selector(ipaddress.ip_network(src, strict=False), ul_proto)
        remote_sel = Selector(ipaddress.ip_network(dst, strict=False), ul_proto)
        sp = self._find_policy(ops.Direction.OUT, local_sel, remote_sel, wild=True)
        if sp is None or sp.action is not ops.PolicyAction.IPSEC:
            self.log(Level.ERROR, f"no policy found: {local_sel} -> {remote_sel} (out)")
            return None
        peer = self._phase2_for_policy(
            sp, local_sel.network.network_address, remote_sel.network.network_address, 0, now
        )
        self._settle()
        return peer

    def _phase2_for_policy(
        self, sp: SpdEntry, src_addr: Any, dst_addr: Any, seq: int, now: float
    ) -> IPAddress | None:
        """A phase 2 for outbound SP ``sp``, triggered by traffic ``src_addr -> dst_addr``;
        the peer's address, or None when there is no ``remote`` for it."""
        pol_id = sp.policy_id
        tunnel = tunnel_request(sp)
        me = tunnel.src if tunnel is not None else src_addr
        peer_addr = tunnel.dst if tunnel is not None else dst_addr
        assert me is not None and peer_addr is not None
        sp_in = self._find_policy(ops.Direction.IN, sp.dst, sp.src)
        offers = policy_offers(sp, sp_in, inbound_first=False)
        local_sel, remote_sel = sp.src, sp.dst
        if tunnel is None:
            # Transport mode protects exactly the two hosts, whatever the SP's prefixes say
            # (the seed's "spdadd ::/0 ::/0 any"): the IDs are the SA endpoints, so that a
            # per-peer "sainfo address A any address B any" applies, as the memo shows.
            local_sel = Selector(ipaddress.ip_network(src_addr), sp.src.proto, sp.src.port)
            remote_sel = Selector(ipaddress.ip_network(dst_addr), sp.dst.proto, sp.dst.port)
        request = Request(local_sel, remote_sel, offers, pol_id, seq, tunnel is not None)
        remote = self.config.remote_for(peer_addr)
        if remote is None:
            self.log(
                Level.ERROR,
                f"no configuration found for {peer_addr}: add a 'remote {peer_addr}' block",
                peer_addr,
            )
            self._acquire_error(request)
            return None
        local = (me, self.config.local_port(me))
        peer = (peer_addr, remote.port or self.config.isakmp_port)
        self._request_phase2(remote, local, peer, request, now)
        return ipaddress.ip_address(str(peer_addr))

    def _request_phase2(
        self, remote: Remote, local: Endpoint, peer: Endpoint, request: Request, now: float
    ) -> None:
        ph1 = self.phase1_for(peer)
        if ph1 is not None and ph1.established:
            self._start_quick(ph1, request, now)
            return
        if ph1 is None and remote.passive:
            self.log(
                Level.ERROR,
                f"phase1 negotiation with {peer[0]} not initiated: remote "
                f"{remote.describe()} is passive (remove 'passive on' to let us initiate)",
                peer[0],
            )
            self._acquire_error(request)
            return
        self._queue(Waiting(remote, local, peer, request, now + self.config.timer.phase1))
        if ph1 is None:
            self.log(
                Level.INFO,
                f"IPsec-SA request for {peer[0]} queued due to no phase1 found.",
                peer[0],
            )
            if self.initiate(remote, local, peer, now) is None:
                for w in [w for w in self.waiting if w.request is request]:
                    self._unqueue(w)
                self._acquire_error(request)

    def initiate(
        self, remote: Remote, local: Endpoint, peer: Endpoint, now: float
    ) -> Phase1 | None:
        """Start a phase 1 with ``peer`` (ACQUIRE, or racoonctl establish-sa isakmp)."""
        self.now = now
        exchange = int(remote.initiator_exchange)
        if exchange not in (MAIN, AGGRESSIVE):
            self.log(
                Level.ERROR,
                f"{display_name(ExchangeType, exchange)} mode is not supported: list main or "
                f"aggressive first in exchange_mode of remote {remote.describe()}",
                peer[0],
            )
            return None
        ph1 = Phase1(self.out, self.settings, remote, local, peer, Role.INITIATOR, exchange, now)
        self.ph1s[ph1.icky] = ph1
        self.log(Level.INFO, f"initiate new phase 1 negotiation: {ph1.describe()}", peer[0])
        try:
            self._call(ph1, lambda: ph1.start(now))
        except EngineError as exc:
            self.log(Level.ERROR, exc.log_text, peer[0])
            for line in exc.details:
                self.log(Level.ERROR, line, peer[0])
            self.phase1_failed(ph1, f"phase1 negotiation failed. {ph1.index()}", now)
            return None
        return ph1

    def phase1_for(self, peer: Endpoint) -> Phase1 | None:
        """The ISAKMP SA to use with ``peer`` (Phase1Table.best_for)."""
        return self.ph1s.best_for(peer[0])

    def _start_quick(self, ph1: Phase1, request: Request, now: float) -> None:
        q = Quick(self.out, self.settings, ph1, True, random_message_id(), request, now)
        sainfo = q.find_sainfo()
        if sainfo is None:
            self._acquire_error(request)
            return
        self.quicks[(ph1.icky, q.message_id)] = q
        send_ids = q.ids_needed()
        self._call(q, lambda: q.start(sainfo, send_ids))

    def _acquire_error(self, request: Request) -> None:
        """Tell the kernel the negotiation failed: ACQUIRE with errno EINVAL (docs/racoon.md
        ("Quirks kept"))."""
        if not request.acquire_seq or not request.offers:
            return
        proto = KERNEL_PROTO[request.offers[-1].protocol]
        self.kernel_request(ops.AcquireFailed(request.acquire_seq, proto, errno.EINVAL))

    def _expire(self, event: ops.SaEvent, now: float) -> None:
        if event.sa is None:
            return
        sa = event.sa.id
        hard = event.change is ops.SaChange.HARD_EXPIRE
        if hard:
            for q in list(self.quicks.values()):
                if q.negotiating_larval(sa):
                    # Linux drops a larval SA (GETSPI never followed by UPDATE): give up now.
                    self.phase2_failed(
                        q,
                        f"phase2 negotiation failed: the kernel expired the larval SA "
                        f"spi={sa.spi}(0x{sa.spi:x}). {q.index()}",
                        now,
                    )
                    return
        for q in list(self.established):
            found = q.installed_match(sa)
            if found is None:
                continue
            self.log(Level.INFO, f"IPsec-SA expired: {q.sa_text(*found)}", q.peer[0])
            if not hard and q.initiator and q in self.established:
                self.drop_phase2(q)
                # rekey under whichever ISAKMP SA is current (a new phase 1 if none)
                self._request_phase2(q.ph1.remote, q.local, q.peer, q.rekey_request(), now)
                return
            if hard and q in self.established:
                self.info.shortened_expired(q)
                self.drop_phase2(q)
            return

    # ================================================================== SA life
    def phase1_established(self, ph1: Phase1, now: float) -> None:
        """Announce the SA, send INITIAL-CONTACT once per peer, start queued phase 2s."""
        self.half_open.discard(ph1)
        self.out.emit(
            ev.Phase1Established(ph1.local, ph1.peer, ph1.cookies, ph1.role is Role.INITIATOR)
        )
        self.info.initial_contact(ph1, self.contacted)
        for w in [w for w in self.waiting if w.peer[0] == ph1.peer[0]]:
            self._unqueue(w)
            self._start_quick(ph1, w.request, now)

    def phase1_dead(self, ph1: Phase1, now: float) -> None:
        """DPD gave up (RFC 3706): purge the peer's SAs and its ISAKMP SAs."""
        self.log(
            Level.INFO, f"DPD: remote (ISAKMP-SA spi={ph1.index()}) seems to be dead.", ph1.peer[0]
        )
        self.out.emit(ev.PeerDead(ph1.local, ph1.peer, ph1.cookies))
        self.info.purge_peer(ph1.peer[0], keep=None)
        for other in self.ph1s.of_peer(ph1.peer[0]):
            self.log(Level.INFO, f"purging ISAKMP-SA spi={other.index()}.", other.peer[0])
            self.remove_phase1(other, announce=False)

    def phase1_dying(self, ph1: Phase1, now: float) -> None:
        """80 % of the lifetime: an initiator with phase-2 SAs with that peer renegotiates
        phase 1 (``rekey force``, or ``rekey on`` while DPD is active, racoon.conf(5): remote)."""
        remote = ph1.remote
        wanted = remote.rekey is Rekey.FORCE or (remote.rekey is Rekey.ON and ph1.dpd_active)
        if ph1.role is not Role.INITIATOR or not wanted:
            return
        if not any(q.peer[0] == ph1.peer[0] for q in self.established):
            return  # any phase 2 with the peer counts, whichever ISAKMP SA made it
        self.log(
            Level.INFO, f"renegotiating phase1 to {ph1.peer[0]} due to active phase2", ph1.peer[0]
        )
        self.initiate(remote, ph1.local, ph1.peer, now)

    def phase1_failed(self, ph1: Phase1, text: str, now: float) -> None:
        """End a phase-1 negotiation with a log line and a NegotiationFailed event."""
        self.log(Level.ERROR, text, ph1.peer[0])
        ph1.state = P1State.FAILED
        self._forget_phase1(ph1)
        self.out.emit(ev.NegotiationFailed(1, ph1.peer, text))

    def phase1_expired(self, ph1: Phase1, now: float) -> None:
        """Lifetime over: log racoon's line and delete the ISAKMP SA (with a Delete)."""
        self.log(
            Level.INFO,
            f"ISAKMP-SA expired {fmt_endpoint(ph1.local)}-"
            f"{fmt_endpoint(ph1.peer)} spi:{ph1.index()}",
            ph1.peer[0],
        )
        self.remove_phase1(ph1, announce=True)

    def _forget_phase1(self, ph1: Phase1) -> None:
        """``ph1`` leaves the tables, the timer heap and the half-open count: the one way out."""
        self.ph1s.pop(ph1.icky, None)
        self.timers.cancel(ph1)
        self.half_open.discard(ph1)

    def remove_phase1(self, ph1: Phase1, *, announce: bool) -> None:
        was_up = ph1.established
        if announce and was_up:
            self.info.send_delete_isakmp(ph1)
        if was_up:
            self.out.emit(ev.Phase1Deleted(ph1.local, ph1.peer, ph1.cookies))
        ph1.state = P1State.EXPIRED
        self._forget_phase1(ph1)
        for q in self.quicks.of_phase1(ph1.icky):
            self.quicks.pop((ph1.icky, q.message_id))
            self.timers.cancel(q)
            self.out.forget_pending(q)
        self.log(
            Level.INFO,
            f"ISAKMP-SA deleted {fmt_endpoint(ph1.local)}-"
            f"{fmt_endpoint(ph1.peer)} spi:{ph1.index()}",
            ph1.peer[0],
        )

    def phase2_established(self, q: Quick, now: float) -> None:
        # It stays in self.quicks too: a late QM2 retransmission must still find it and get
        # QM3 again (the lost-QM3 case of racoon's isakmp.c).
        """Every kernel SA of ``q`` is in: announce it."""
        self.established.append(q)
        self.out.emit(q.established_event())

    def drop_phase2(self, q: Quick) -> None:
        if q in self.established:
            self.established.remove(q)
            self.out.emit(ev.Phase2Deleted(q.local, q.peer, q.message_id))
        self.spdc.remove_generated(q.generated_policies)
        if self.quicks.get((q.ph1.icky, q.message_id)) is q:
            self.quicks.pop((q.ph1.icky, q.message_id))
            self.timers.cancel(q)

    def phase2_failed(self, q: Quick, text: str, now: float) -> None:
        """End a quick mode; an initiator tells the kernel with an errno ACQUIRE."""
        self.log(Level.ERROR, text, q.peer[0])
        q.state = QState.FAILED
        if self.quicks.get((q.ph1.icky, q.message_id)) is q:
            self.quicks.pop((q.ph1.icky, q.message_id))
            self.timers.cancel(q)
        self.spdc.remove_generated(q.generated_policies)
        self.out.forget_pending(q)
        if q.initiator:
            self._acquire_error(q.request)
        self.out.emit(ev.NegotiationFailed(2, q.peer, text))

    def phase2_expired(self, q: Quick, now: float) -> None:
        """Our own full-lifetime timer of an IPsec SA pair ran out."""
        self.log(
            Level.INFO,
            f"phase2 sa expired {fmt_endpoint(q.local)}-{fmt_endpoint(q.peer)}",
            q.peer[0],
        )
        if q in self.established:
            self.info.shortened_expired(q)
            self.drop_phase2(q)


def _timer_rank(sa: Any) -> int:
    """handle_timer's order among SAs due together: phase 1s, quick modes, waiting requests."""
    if isinstance(sa, Phase1):
        return 0
    return 1 if isinstance(sa, Quick) else 2


__all__ = ["Engine", "SpdEntry", "Waiting"]
