"""What the engine hands back: small dataclasses, drained with :meth:`Engine.events`.

The engine never performs I/O; each decision it takes becomes one of these values, in the order
it was taken.  The daemon turns :class:`DatagramOut` into ``sendto``, :class:`KernelRequest`
into a request to whichever kernel backend it opened and :class:`LogEvent` into a racoon-format
log line; tests read them directly.  Timers are not events: :meth:`Engine.next_timer` says
when to call :meth:`Engine.handle_timer` next (the aioquic shape: one timer per connection object).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum

from pyracoon.kernel import ops

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: A transport endpoint: (address, UDP port).
Endpoint = tuple[IPAddress, int]


def endpoint(address: str | IPAddress, port: int = 500) -> Endpoint:
    """Normalise ``("10.0.0.1", 500)``-style input to an :data:`Endpoint`."""
    return (ipaddress.ip_address(str(address).split("%")[0]), int(port))


def fmt_endpoint(ep: Endpoint) -> str:
    """racoon's ``ADDR[port]`` spelling."""
    return f"{ep[0]}[{ep[1]}]"


class Level(IntEnum):
    """racoon's log levels (racoon's plog.c): a line prints when its level <= the configured one."""

    ERROR = 1
    WARNING = 2
    NOTIFY = 3
    INFO = 4
    DEBUG = 5
    DEBUG2 = 6


@dataclass(frozen=True)
class DatagramOut:
    """One UDP datagram to send from ``local`` to ``remote``."""

    data: bytes
    local: Endpoint
    remote: Endpoint


@dataclass(frozen=True)
class KernelRequest:
    """One request for the kernel (:mod:`pyracoon.kernel.ops`: GetSpi, InstallSa, DeleteSa...)."""

    request: ops.Request


@dataclass(frozen=True)
class LogEvent:
    """One log line: ``text`` is racoon's wording where racoon has one (racoon's plog.c).

    ``peer`` is the remote address the line is about, if any; secrets never appear in ``text``.
    """

    level: Level
    text: str
    peer: IPAddress | None = None

    def render(self) -> str:
        """``[peer ]LEVEL: text`` -- racoon's line without the timestamp."""
        prefix = f"[{self.peer}] " if self.peer is not None else ""
        return f"{prefix}{self.level.name}: {self.text}"


@dataclass(frozen=True)
class Phase1Established:
    """An ISAKMP SA is up (for the daemon's scripts and racoonctl)."""

    local: Endpoint
    remote: Endpoint
    cookies: bytes
    initiator: bool


@dataclass(frozen=True)
class IkeKeys:
    """The phase-1 cipher key of one ISAKMP SA, for a Wireshark ``ikev1_decryption_table``.

    Emitted only when :attr:`Engine.export_ike_keys` is set (the daemon's ``--ike-keylog``):
    it is a secret, so it is its own event and never part of a log line.  Wireshark needs the
    initiator cookie to find the SA and the key after expansion (RFC 2409 appendix B "Ka"); it
    computes the IVs itself from the KE payloads it sees in the clear.
    """

    initiator_cookie: bytes
    encryption_key: bytes


@dataclass(frozen=True)
class Phase2Established:
    """Every kernel SA of one quick mode is installed."""

    local: Endpoint
    remote: Endpoint
    message_id: int
    protocols: tuple[str, ...]
    inbound_spis: tuple[int, ...]
    outbound_spis: tuple[int, ...]


@dataclass(frozen=True)
class Phase1Deleted:
    """An established ISAKMP SA is gone (deleted by us or the peer, expired, purged), so that
    ``racoonctl show-event`` watchers see SAs go as well as come (racoon's EVT_PHASE1_DOWN)."""

    local: Endpoint
    remote: Endpoint
    cookies: bytes


@dataclass(frozen=True)
class Phase2Deleted:
    """The kernel SAs of one established quick mode are gone or no longer ours to track
    (deleted, flushed, expired; racoon's EVT_PHASE2_DOWN)."""

    local: Endpoint
    remote: Endpoint
    message_id: int


@dataclass(frozen=True)
class PeerDead:
    """DPD declared the peer dead and its SAs were purged (racoon's phase1_dead script)."""

    local: Endpoint
    remote: Endpoint
    cookies: bytes


@dataclass(frozen=True)
class NegotiationFailed:
    """A phase-1 or phase-2 negotiation ended without an SA; ``reason`` is for people."""

    phase: int
    remote: Endpoint
    reason: str


@dataclass(frozen=True)
class IsakmpSaStatus:
    """One ISAKMP SA as ``racoonctl show-sa isakmp`` lists it."""

    local: Endpoint
    remote: Endpoint
    initiator_cookie: bytes
    responder_cookie: bytes
    created: float
    state: str
    exchange: str
    initiator: bool
    phase2_count: int


Event = (
    DatagramOut
    | KernelRequest
    | LogEvent
    | Phase1Established
    | IkeKeys
    | Phase2Established
    | Phase1Deleted
    | Phase2Deleted
    | NegotiationFailed
    | PeerDead
)
