"""The kernel vocabulary the engine and the daemon speak: requests and events, no backend's structs.

Why a vocabulary of its own: the key manager's conversation with the kernel is the same few
things whatever carries it -- allocate an SPI, install, delete or flush SAs, add or delete a
policy, dump both databases; and from the kernel, replies to those, ACQUIREs, soft and hard
EXPIREs and other key managers' changes (RFC 2367 sections 2.3 and 3.1 list them for PF_KEY;
Linux's XFRM netlink has the same set under other names).  With the engine written against
these values, PF_KEY (``pfkey_codec``) and XFRM are codecs behind one interface, the simulated
kernel answers the same requests, and nothing above :mod:`pyracoon.kernel` builds a PF_KEY
extension or knows an SADB number.

Every request carries a ``seq``: the engine correlates each reply with the request by it, and a
GETSPI made for an ACQUIRE carries the ACQUIRE's own ``seq`` so the kernel can tie the larval SA
to the packet that waits (racoon's pfkey.c does the same).  Replies and broadcasts arrive as
:class:`SaEvent` / :class:`PolicyEvent` / :class:`Acquire`, each saying whether this socket
asked for it (``ours``), so the engine never needs a process id.

Algorithms are rows of the one algorithm table (:mod:`pyracoon.crypto.algorithms`), not
numbers: each codec takes the column it needs (``sadb_id`` for PF_KEY, ``xfrm_name`` for XFRM).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

from pyracoon.crypto.algorithms import AuthAlgorithm, Cipher, CompressionAlgorithm

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MANUAL_REQID_MAX = 0x3FFF
"""racoon's ``IPSEC_MANUAL_REQID_MAX``: reqids up to it are people's (setkey's ``unique:N``),
above it the kernel's own (Linux ``gen_reqid``); ``generate_policy unique`` counts up to it."""


class Proto(enum.Enum):
    """An IPsec protocol as the kernel keys SAs by it (RFC 4301 section 4.1)."""

    ESP = "esp"
    AH = "ah"
    IPCOMP = "ipcomp"

    @property
    def ip_number(self) -> int:
        """The IP protocol number (RFC 4303, RFC 4302, RFC 3173), as policies name it."""
        return _IP_NUMBER[self]

    @classmethod
    def of_ip_number(cls, number: int) -> Proto | None:
        """The protocol of IP protocol ``number``, or None when it is not an IPsec one."""
        return _OF_IP_NUMBER.get(number)


_IP_NUMBER = {Proto.ESP: 50, Proto.AH: 51, Proto.IPCOMP: 108}
_OF_IP_NUMBER = {v: k for k, v in _IP_NUMBER.items()}


class Mode(enum.Enum):
    """An SA's or an ipsecrequest's mode; ANY is a policy's "either" (setkey's ``any``)."""

    ANY = "any"
    TRANSPORT = "transport"
    TUNNEL = "tunnel"


class Direction(enum.Enum):
    """A policy's direction (RFC 4301 section 4.4.1); FWD is Linux's forwarded traffic."""

    IN = "in"
    OUT = "out"
    FWD = "fwd"


class PolicyAction(enum.Enum):
    """What a policy does with the traffic it selects (setkey's ``-P`` types)."""

    DISCARD = "discard"
    NONE = "none"
    IPSEC = "ipsec"
    ENTRUST = "entrust"
    BYPASS = "bypass"


class Level(enum.Enum):
    """How strictly an ipsecrequest is applied (KAME's levels: setkey's ``/use``...)."""

    DEFAULT = "default"
    USE = "use"
    REQUIRE = "require"
    UNIQUE = "unique"


class SaState(enum.Enum):
    """An SA's life (RFC 2367 section 3.1.1): larval until keyed, dying after its soft limit."""

    LARVAL = "larval"
    MATURE = "mature"
    DYING = "dying"
    DEAD = "dead"


@dataclass(frozen=True)
class Lifetime:
    """One set of limits (RFC 2367 ``sadb_lifetime``): 0 means none."""

    allocations: int = 0
    bytes: int = 0
    addtime: int = 0
    usetime: int = 0


@dataclass(frozen=True)
class SaId:
    """What names one kernel SA: protocol, SPI and the two addresses (RFC 4301 4.1)."""

    proto: Proto
    spi: int
    src: IPAddress
    dst: IPAddress


@dataclass(frozen=True)
class Selector:
    """One side of a policy's selector: a network, an upper-layer protocol (255: any), a port."""

    network: IPNetwork
    proto: int = 255
    port: int = 0


@dataclass(frozen=True)
class IpsecRequest:
    """One transform a policy asks for; ``src``/``dst`` are the tunnel's ends in tunnel mode."""

    proto: Proto
    mode: Mode
    level: Level
    reqid: int = 0
    src: IPAddress | None = None
    dst: IPAddress | None = None


@dataclass(frozen=True)
class Policy:
    """One SPD entry as the kernel holds it (``id`` is the kernel's index, 0 when not known)."""

    direction: Direction
    src: Selector
    dst: Selector
    action: PolicyAction = PolicyAction.IPSEC
    requests: tuple[IpsecRequest, ...] = ()
    id: int = 0
    lifetime: Lifetime = field(default_factory=Lifetime)


@dataclass(frozen=True)
class KernelSa:
    """One SA as the kernel reports it (a reply, a dump entry, a broadcast, an EXPIRE)."""

    id: SaId
    state: SaState = SaState.MATURE
    mode: Mode = Mode.ANY
    reqid: int = 0


# ---------------------------------------------------------------------- requests


@dataclass(frozen=True)
class GetSpi:
    """Allocate an SPI for an inbound SA: the kernel makes a larval SA ``src -> dst``."""

    seq: int
    proto: Proto
    src: IPAddress
    dst: IPAddress
    mode: Mode
    reqid: int
    spi_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class InstallSa:
    """Key one SA: ``update`` keys the larval SA GetSpi made (inbound), else adds a new one.

    ``cipher``/``auth``/``compression`` are rows of the algorithm table; an ESP SA with a cipher
    carries ``enc_key`` even when it is empty (null), which some kernels insist on.
    """

    seq: int
    update: bool
    sa: SaId
    mode: Mode
    reqid: int
    replay: int = 0
    cipher: Cipher | None = None
    enc_key: bytes = b""
    auth: AuthAlgorithm | None = None
    auth_key: bytes = b""
    compression: CompressionAlgorithm | None = None
    #: IPComp: the CPI is the SA's whole identity, sent as is (KAME's SADB_X_EXT_RAWCPI).
    raw_cpi: bool = False
    hard: Lifetime = field(default_factory=Lifetime)
    soft: Lifetime = field(default_factory=Lifetime)

    def __repr__(self) -> str:
        """Never the keys: a request may end up in a log line or a test failure."""
        return (
            f"InstallSa(seq={self.seq}, update={self.update}, sa={self.sa}, mode={self.mode}, "
            f"reqid={self.reqid}, cipher={getattr(self.cipher, 'name', None)}, "
            f"auth={getattr(self.auth, 'name', None)}, keys=<{len(self.enc_key)}+"
            f"{len(self.auth_key)} bytes>)"
        )


@dataclass(frozen=True)
class DeleteSa:
    """Remove one SA."""

    seq: int
    sa: SaId


@dataclass(frozen=True)
class FlushSa:
    """Remove every SA of ``proto`` (None: of every protocol)."""

    seq: int
    proto: Proto | None = None


@dataclass(frozen=True)
class DumpSa:
    """List every SA: answered by one :class:`SaEvent` per SA, the last one ``last``."""

    seq: int


@dataclass(frozen=True)
class Register:
    """Ask to be told of ACQUIREs for ``proto`` (and learn the kernel's algorithms)."""

    seq: int
    proto: Proto


@dataclass(frozen=True)
class AcquireFailed:
    """Tell the kernel that the negotiation an ACQUIRE asked for failed (RFC 2367 3.1.6)."""

    seq: int
    proto: Proto
    errno: int


@dataclass(frozen=True)
class UpdatePolicy:
    """Add a policy, or replace the one with the same selectors and direction."""

    seq: int
    policy: Policy


@dataclass(frozen=True)
class DeletePolicy:
    """Remove the policy with these selectors and direction."""

    seq: int
    direction: Direction
    src: Selector
    dst: Selector


@dataclass(frozen=True)
class DumpPolicy:
    """List every policy: answered by one :class:`PolicyEvent` per policy, the last ``last``."""

    seq: int


Request = (
    GetSpi | InstallSa | DeleteSa | FlushSa | DumpSa | Register | AcquireFailed | UpdatePolicy
    | DeletePolicy | DumpPolicy
)  # fmt: skip


# ---------------------------------------------------------------------- events


class SaChange(enum.Enum):
    """What an :class:`SaEvent` reports; for ``ours`` events, which request it answers."""

    GETSPI = "getspi"
    UPDATE = "update"
    ADD = "add"
    DELETE = "delete"
    FLUSH = "flush"
    DUMP = "dump"
    SOFT_EXPIRE = "soft expire"
    HARD_EXPIRE = "hard expire"
    REGISTER = "register"


class PolicyChange(enum.Enum):
    """What a :class:`PolicyEvent` reports."""

    ADD = "add"
    UPDATE = "update"
    DELETE = "delete"
    EXPIRE = "expire"
    FLUSH = "flush"
    DUMP = "dump"


@dataclass(frozen=True)
class SaEvent:
    """A reply to one of our SA requests (``ours``) or another's change the kernel announces.

    ``errno`` is the kernel's refusal (0: done).  ``sa`` is None where the message names no SA
    (a flush, a refusal, an empty dump).  ``proto`` is None for a flush of every protocol.
    ``last`` marks the end of a dump.
    """

    change: SaChange
    seq: int
    ours: bool
    proto: Proto | None = None
    sa: KernelSa | None = None
    errno: int = 0
    last: bool = True


@dataclass(frozen=True)
class PolicyEvent:
    """A reply to one of our policy requests or another's SPD change; ``policy`` as for SAs."""

    change: PolicyChange
    seq: int
    ours: bool
    policy: Policy | None = None
    errno: int = 0
    last: bool = True


@dataclass(frozen=True)
class Acquire:
    """The kernel has traffic for policy ``policy_id`` and no SA: negotiate one (RFC 2367 3.1.6).

    ``src``/``dst`` are the packet's addresses; ``proto`` is what the policy's first request
    asks for, when the kernel says.
    """

    seq: int
    policy_id: int
    src: IPAddress
    dst: IPAddress
    proto: Proto | None = None


@dataclass(frozen=True)
class Unsupported:
    """A message of the kernel's this vocabulary has no word for, or one it knows that lacks
    what it must carry (``malformed``: an ACQUIRE without its policy).  The first kind is logged
    at DEBUG, the second at ERROR: a kernel message the daemon cannot act on is not silent."""

    what: str
    malformed: bool = False


Event = SaEvent | PolicyEvent | Acquire | Unsupported


__all__ = [
    "MANUAL_REQID_MAX", "Acquire", "AcquireFailed", "DeletePolicy", "DeleteSa", "Direction",
    "DumpPolicy", "DumpSa", "Event", "FlushSa", "GetSpi", "InstallSa", "IpsecRequest", "KernelSa",
    "Level", "Lifetime", "Mode", "Policy", "PolicyAction", "PolicyChange", "PolicyEvent", "Proto",
    "Register", "Request", "SaChange", "SaEvent", "SaId", "SaState", "Selector", "Unsupported",
    "UpdatePolicy",
]  # fmt: skip
