"""What phase 1 and quick mode are handed instead of the dispatcher: an output sink and settings.

The per-SA modules (:mod:`.phase1`, :mod:`.quick`) never import :mod:`.engine`.  Everything they
emit goes into one :class:`Output` -- datagrams, kernel requests in the backend-neutral
vocabulary of :mod:`pyracoon.kernel.ops` (with the SA that waits for the reply), log lines --
and what happened to them that concerns other SAs (established, failed,
dying, expired, dead) is an :class:`Outcome` the dispatcher drains after each call into an SA
and acts upon (INITIAL-CONTACT, queued phase 2s, kernel ACQUIRE errors...).  The order of the
events is the order of the decisions, as when the SAs called the dispatcher directly.

:class:`Settings` is the part of the configuration they read while negotiating: the ``timer``
block, the ``padding`` policy, the commit-bit test switch and the wall clock for certificate
validity.  The dispatcher replaces its fields on reload; the SAs see the new values.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyracoon.config.model import Config, Timer
from pyracoon.crypto.padding import PaddingPolicy
from pyracoon.kernel import ops

from . import events as ev
from .credentials import Credentials
from .events import Endpoint, Level


def padding_policy(config: Config) -> PaddingPolicy:
    """racoon.conf's ``padding {}`` block as the CBC layer applies it (racoon.conf(5): padding)."""
    pad = config.padding
    return PaddingPolicy(
        pad.randomize, pad.randomize_length, pad.maximum_length, pad.strict_check,
        pad.exclusive_tail,
    )  # fmt: skip


class OutcomeKind(enum.Enum):
    """What an SA reports to the dispatcher (racoon's isakmp.c/isakmp_quick.c bookkeeping)."""

    PHASE1_ESTABLISHED = "phase1 established"
    PHASE1_FAILED = "phase1 failed"
    PHASE1_DYING = "phase1 dying"
    PHASE1_EXPIRED = "phase1 expired"
    PHASE1_DEAD = "phase1 dead"
    PHASE2_ESTABLISHED = "phase2 established"
    PHASE2_FAILED = "phase2 failed"
    PHASE2_EXPIRED = "phase2 expired"
    PHASE2_REPLACED = "phase2 replaced"  # a rekey's new SAs are in: delete the old ones


@dataclass(frozen=True)
class Outcome:
    """One report: ``kind`` happened to ``sa`` at ``now``; ``text`` is the log line, if any."""

    kind: OutcomeKind
    sa: Any
    now: float
    text: str = ""


class PendingReplies(dict[tuple[int, "ops.SaChange", "ops.Proto"], Any]):
    """``reply key -> the SA waiting for it``, and the keys of each SA, so that forgetting one
    SA's requests does not scan every request in flight."""

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[int, set[tuple[int, ops.SaChange, ops.Proto]]] = {}

    def __setitem__(self, key: tuple[int, ops.SaChange, ops.Proto], owner: Any) -> None:
        self.pop(key, None)
        super().__setitem__(key, owner)
        self._keys.setdefault(id(owner), set()).add(key)

    def __delitem__(self, key: tuple[int, ops.SaChange, ops.Proto]) -> None:
        self.pop(key)

    def pop(self, key: tuple[int, ops.SaChange, ops.Proto], *default: Any) -> Any:
        if key in self:
            keys = self._keys.get(id(self[key]))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys[id(self[key])]
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self._keys.clear()

    def forget(self, owner: Any) -> None:
        """Drop every request ``owner`` waits for."""
        for key in self._keys.pop(id(owner), set()):
            super().pop(key, None)


class Output:
    """The sink every module of the engine writes to; the dispatcher drains it."""

    def __init__(self, *, export_ike_keys: bool = False) -> None:
        self.export_ike_keys = export_ike_keys
        self.events: list[ev.Event] = []
        #: Kernel requests whose replies someone waits for: (seq, kind, protocol) -> that SA.
        self.pending = PendingReplies()
        self.outcomes: deque[Outcome] = deque()
        self._seq = 0

    def log(self, level: Level, text: str, peer: Any = None) -> None:
        """Queue a log line (racoon's wording where racoon has one)."""
        self.events.append(ev.LogEvent(level, text, peer))

    def send(self, data: bytes, local: Endpoint, remote: Endpoint) -> None:
        """Queue a datagram for the daemon to send."""
        self.events.append(ev.DatagramOut(data, local, remote))

    def emit(self, event: ev.Event) -> None:
        """Queue any other event (Phase1Established, NegotiationFailed, ...)."""
        self.events.append(event)

    def next_seq(self) -> int:
        """A fresh kernel sequence number for requests not tied to an ACQUIRE."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def kernel_request(self, request: ops.Request, owner: Any = None) -> None:
        """Queue a kernel request; replies come back to ``owner`` by :func:`reply_key`."""
        if owner is not None:
            key = reply_key(request)
            if key is None:
                raise TypeError(f"no reply of {type(request).__name__} goes back to an SA")
            self.pending[key] = owner
        self.events.append(ev.KernelRequest(request))

    def forget_pending(self, owner: Any) -> None:
        """``owner`` no longer waits for kernel replies."""
        self.pending.forget(owner)

    def ike_keys(self, initiator_cookie: bytes, encryption_key: bytes) -> None:
        """Hand the phase-1 cipher key out, only when a key log was asked for."""
        if self.export_ike_keys:
            self.events.append(ev.IkeKeys(initiator_cookie, encryption_key))

    def report(self, kind: OutcomeKind, sa: Any, now: float, text: str = "") -> None:
        """Tell the dispatcher something that concerns other SAs happened to ``sa``."""
        self.outcomes.append(Outcome(kind, sa, now, text))


#: What a reply is routed by: the request's seq, what it answers, the protocol.
ReplyKey = tuple[int, ops.SaChange, ops.Proto]


def reply_key(request: ops.Request) -> ReplyKey | None:
    """The key the kernel's answer to ``request`` will have (GETSPI, UPDATE, ADD only)."""
    if isinstance(request, ops.GetSpi):
        return (request.seq, ops.SaChange.GETSPI, request.proto)
    if isinstance(request, ops.InstallSa):
        change = ops.SaChange.UPDATE if request.update else ops.SaChange.ADD
        return (request.seq, change, request.sa.proto)
    return None


def event_key(event: ops.SaEvent) -> ReplyKey | None:
    """The key of an answer, to find who waits for it (None: nobody could)."""
    if event.proto is None:
        return None
    return (event.seq, event.change, event.proto)


def _unix_date(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


@dataclass
class Settings:
    """The configuration as the SAs read it while negotiating (replaced on reload)."""

    config: Config
    credentials: Credentials
    timer: Timer
    padding: PaddingPolicy
    #: Set the commit bit in QM1 (racoon never does; for testing the other side).
    commit_bit: bool = False
    #: Engine time -> a date, for certificate validity (people's time, not the timers').
    wall_date: Callable[[float], datetime] = field(default=_unix_date)


__all__ = [
    "Outcome", "OutcomeKind", "Output", "PendingReplies", "ReplyKey", "Settings", "event_key",
    "padding_policy", "reply_key",
]  # fmt: skip
