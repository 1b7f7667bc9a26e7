"""The simulated kernel's entries and tables: what its SAD and SPD hold, and what it answers with.

Split out of ``memory.py`` so that the kernel's request handlers (``memory.py``) and its state,
lifetimes and packet path (``memory_state.py``) read as behaviour, with the data they work on
here: the SAD's ``SAEntry`` and its ``Selector``, the SPD's ``SPEntry`` and ``Template``, a
socket's ``Endpoint``, the ``KernelRefusal`` a request is answered with, a packet's
``Verdict``, and the constants and algorithm rows -- all derived from the one algorithm table,
``pyracoon.crypto.algorithms`` -- that Linux's af_key and xfrm would use. The rules these
follow are in ``memory.py``'s docstring and docs/kernel.md.
"""

from __future__ import annotations

import errno as E
import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from pyracoon.crypto.algorithms import IPCOMP_ALGORITHMS, kernel_auth_algorithms, kernel_ciphers

from .pfkey import (
    Address,
    Alg,
    Extension,
    IPAddress,
    IpsecRequest,
    Key,
    Lifetime,
    SecCtx,
)
from .sadb import (
    ULPROTO_ANY,
    IpProto,
    Level,
    Mode,
    SaState,
    SaType,
)

LARVAL_LIFETIME = 30
"""Seconds a larval state lives -- GETSPI's that is never updated, an ACQUIRE's that no SA
replaces: Linux's ``xfrm_acq_expires`` sysctl default, reported as its hard addtime."""
SPI_MIN_DEFAULT = 0x100
SPI_MAX_DEFAULT = 0x0FFFFFFF
REPLAY_MAX = 32
"""``pfkey_msg2xfrm_state`` caps the replay window at the legacy bitmap's 32 bits."""
SA_FLAGS_KEPT = 0x80000000 | 0x40000000 | 0x20000000
"""``SADB_SAFLAGS_NOECN``, ``_DECAP_DSCP`` and ``_NOPMTUDISC``: the only ``sadb_sa_flags`` bits
Linux keeps (KAME's CYCSEQ and the rest are dropped, so setkey -D shows flags=0)."""
ACQUIRE_REPLAY = 32
"""The replay window ``pfkey_send_acquire`` puts in the PROPOSAL (with no combinations: af_key
never fills a template's algorithm masks, so ``dump_esp_combs`` finds nothing to offer)."""
SATYPE_MAX = 9
"""``SADB_SATYPE_MAX``: REGISTER takes any SA type up to it."""

Clock = Callable[[], float]
Flow = tuple[IPAddress, IPAddress, int, int, int]
"""A packet's flow as the packet path matches it: source, destination, protocol, ports."""

# What a REGISTER reply announces: (id, ivlen, minbits, maxbits), in the order and with the
# ivlens of Linux's xfrm_algo table (every pfkey-supported algorithm present, as in the lab),
# all of it from the one algorithm table's ``kernel`` column (pyracoon.crypto.algorithms).
# Deliberately more than Linux: KAME's keyed-md5, keyed-sha1 and tcp-md5, and null algorithms
# that accept a key (the old "simple" transform of the seed memo), so that the seed's
# manual-keying configurations load; docs/kernel.md lists this among the known differences.
SUPPORTED_AUTH: tuple[Alg, ...] = tuple(
    Alg(a.sadb_id or 0, a.kernel.ivlen, a.kernel.min_bits, a.kernel.max_bits)
    for a in kernel_auth_algorithms()
    if a.kernel is not None
)
SUPPORTED_ENCRYPT: tuple[Alg, ...] = tuple(
    Alg(c.sadb_id or 0, c.kernel.ivlen, c.kernel.min_bits, c.kernel.max_bits)
    for c in kernel_ciphers()
    if c.kernel is not None
)
KAME_AUTH = frozenset(a.sadb_id for a in kernel_auth_algorithms() if a.xfrm_name is None)
"""The authentication algorithms above that Linux does not have (no XFRM name)."""
SUPPORTED_COMP: tuple[Alg, ...] = tuple(Alg(c.sadb_id, 0, 0, 0) for c in IPCOMP_ALGORITHMS)
"""The compression algorithms an IPComp SA may name (a REGISTER never lists them on Linux)."""
_FIXED_KEY_SIZES = {
    c.sadb_id: c.kernel.key_sizes for c in kernel_ciphers() if c.kernel and c.kernel.key_sizes
}

SATYPE_OF_PROTO: dict[int, SaType] = {
    IpProto.ESP: SaType.ESP,
    IpProto.AH: SaType.AH,
    IpProto.IPCOMP: SaType.IPCOMP,
}
TEMPLATE_PROTOS = frozenset(
    {IpProto.ESP, IpProto.AH, IpProto.IPCOMP, IpProto.ROUTING, IpProto.DSTOPTS}
)
"""What Linux's ``xfrm_id_proto_valid`` accepts in a template (with IPv6 built in)."""
REQID_MAX = 0xFFFFFFFF
XFRM_POLICY_MAX = 3
"""Directions of the SPD proper; an id whose low 3 bits are 3 or more is a socket policy's."""


class Deliver(Enum):
    """``pfkey_broadcast``'s flags: who gets a message besides the promiscuous sockets."""

    ONE = "the given socket only"
    ALL = "every socket"
    REGISTERED = "every socket registered for any SA type, and the given one"
    PROMISC_ONLY = "promiscuous sockets only"


class KernelRefusal(Exception):
    """A request the kernel answers with an errno."""

    def __init__(self, errno: int, why: str) -> None:
        super().__init__(why)
        self.errno = errno


@dataclass
class Endpoint:
    """One open PF_KEY socket as the kernel sees it."""

    id: int
    queue: deque[bytes] = field(default_factory=deque)
    registered: set[int] = field(default_factory=set)
    promisc: bool = False
    on_message: Callable[[], None] | None = None
    """Called after messages are queued, so an event loop can wake up."""

    def deliver(self, data: bytes) -> None:
        self.queue.append(data)
        if self.on_message is not None:
            self.on_message()


@dataclass(frozen=True)
class Selector:
    """The part of an SA's ``xfrm_selector`` that shows or matters: which flows it serves.

    An SA added by PF_KEY selects everything (all zero), or what its ADDRESS_PROXY said; a
    GETSPI larval state selects its own two addresses; the state an ACQUIRE leaves selects the
    packet's flow, ports included. ``pfkey_xfrm_state2msg`` reports an ADDRESS_PROXY whenever
    the selector's source is not the SA's source.
    """

    src: IPAddress
    dst: IPAddress
    src_plen: int = 0
    dst_plen: int = 0
    proto: int = 0
    """xfrm's protocol: 0 is any."""
    sport: int = 0
    dport: int = 0

    @classmethod
    def anything(cls, version: int) -> Selector:
        zero = ipaddress.ip_address("::" if version == 6 else "0.0.0.0")
        return cls(zero, zero)

    @classmethod
    def flow(
        cls, src: IPAddress, dst: IPAddress, proto: int = 0, sport: int = 0, dport: int = 0
    ) -> Selector:
        """``__xfrm_init_tempsel``: exactly one flow (full prefixes, the ports when known)."""
        return cls(src, dst, src.max_prefixlen, dst.max_prefixlen, proto, sport, dport)

    def matches(self, src: IPAddress, dst: IPAddress, proto: int, sport: int, dport: int) -> bool:
        """``xfrm_selector_match``: prefixes, the protocol if set, the ports if set."""
        if src.version != self.src.version or dst.version != self.dst.version:
            return False
        if src not in ipaddress.ip_network((self.src, self.src_plen), strict=False):
            return False
        if dst not in ipaddress.ip_network((self.dst, self.dst_plen), strict=False):
            return False
        if self.proto and self.proto != proto:
            return False
        if self.sport and self.sport != sport:
            return False
        return not (self.dport and self.dport != dport)


@dataclass(eq=False)
class SAEntry:
    """A security association -- or a larval state -- as the SAD holds it (compared by
    identity: two larval states may hold the same values)."""

    satype: int
    spi: int
    src: Address
    dst: Address
    state: int = SaState.MATURE
    mode: int = Mode.TRANSPORT
    """An IPSEC_MODE_* value; "any" never stays, Linux keeps it as transport."""
    reqid: int = 0
    replay: int = 0
    auth: int = 0
    encrypt: int = 0
    flags: int = 0
    key_auth: Key | None = None
    key_encrypt: Key | None = None
    hard: Lifetime | None = None
    soft: Lifetime | None = None
    addtime: int = 0
    usetime: int = 0
    bytes: int = 0
    allocations: int = 0
    """Packets through the SA: Linux's ``curlft.packets``, which PF_KEY reports, and limits,
    as allocations."""
    seq: int = 0
    pid: int = 0
    extras: list[Extension] = field(default_factory=list)
    """NAT-T and security-context extensions, stored and returned as given."""
    soft_expired: bool = False
    selector: Selector | None = None
    """None: it selects anything of its family (what PF_KEY gives an SA without a proxy)."""
    acquire_seq: int = 0
    """The seq of the ACQUIRE this larval state was made for (``km.seq``), 0 if none."""
    failed: bool = False
    """The key manager answered the ACQUIRE with an errno (``XFRM_STATE_ERROR``)."""
    born: int = 0
    """When it entered the SAD, as a counter: dumps list the newest first."""

    @property
    def key(self) -> tuple[int, IPAddress, int]:
        return (self.satype, self.dst.addr, self.spi)

    def sel(self) -> Selector:
        return self.selector or Selector.anything(self.src.addr.version)


@dataclass
class Template:
    """What Linux keeps of one ipsecrequest (an ``xfrm_tmpl``, from ``parse_ipsecrequest``).

    The request's level is not kept, only what it meant: ``optional`` for use, a ``reqid`` for
    unique; default, require and unknown levels leave neither. Tunnel endpoints are kept for
    tunnel mode only and without ports. So a dump cannot return what was sent, only what the
    kernel understood -- which is what setkey -DP shows on Linux.
    """

    proto: int
    mode: int
    reqid: int = 0
    optional: bool = False
    src: IPAddress | None = None
    dst: IPAddress | None = None

    @property
    def level(self) -> int:
        """``pfkey_xfrm_policy2msg``: require, unique when there is a reqid, use when optional."""
        if self.optional:
            return Level.USE
        return Level.UNIQUE if self.reqid else Level.REQUIRE

    def request(self) -> IpsecRequest:
        """The ipsecrequest a dump reports for this template (endpoint ports are 0)."""
        return IpsecRequest(self.proto, self.mode, self.level, self.reqid, self.src, self.dst)


@dataclass
class SPEntry:
    """A security policy: selectors, direction, action, bundle, lifetimes.

    ``policy_type`` is what the kernel reports, not what was asked: Linux keeps only allow or
    block, so an ipsec policy without templates (and an entry of type none) is "none".
    """

    id: int
    dir: int
    policy_type: int
    priority: int
    requests: list[Template]
    src: Address
    dst: Address
    created: int
    lastused: int = 0
    hard: Lifetime | None = None
    soft: Lifetime | None = None
    ctx: SecCtx | None = None
    born: int = 0
    """When it entered the SPD, as a counter: SPDDUMP lists the newest first, and a policy
    SPDUPDATE replaces is a new one (with the old id)."""

    @property
    def selector(self) -> tuple[object, ...]:
        """What makes two policies the same one (SPDUPDATE, SPDDELETE): compared, never read."""
        return (
            self.dir,
            self.src.addr,
            self.src.prefixlen,
            self.src.port,
            self.dst.addr,
            self.dst.prefixlen,
            self.dst.port,
            self.src.proto,
            self.ctx.ctx if self.ctx else None,
        )

    def matches(self, src: IPAddress, dst: IPAddress, proto: int, sport: int, dport: int) -> bool:
        """Does a packet fall under this policy's selectors?"""
        if src.version != self.src.addr.version or dst.version != self.dst.addr.version:
            return False
        if src not in ipaddress.ip_network((self.src.addr, _plen(self.src)), strict=False):
            return False
        if dst not in ipaddress.ip_network((self.dst.addr, _plen(self.dst)), strict=False):
            return False
        if self.src.proto != ULPROTO_ANY and self.src.proto != proto:
            return False
        if self.src.port and self.src.port != sport:
            return False
        return not (self.dst.port and self.dst.port != dport)


class Verdict(Enum):
    """What happens to a packet that meets the SPD."""

    CLEAR = "sent in the clear"
    PROTECTED = "protected by IPsec"
    DROPPED = "dropped"


@dataclass
class PacketResult:
    verdict: Verdict
    policy_id: int | None = None
    spis: list[int] = field(default_factory=list)
    acquired: bool = False
    reason: str = ""


def _plen(a: Address) -> int:
    """``a``'s prefix length; ``Address`` fills in the full length when given none."""
    return a.addr.max_prefixlen if a.prefixlen is None else a.prefixlen


def check_key(
    table: tuple[Alg, ...], alg_id: int, key: Key | None, what: str, *, ranges: bool = True
) -> None:
    """An algorithm this kernel lacks is ENOSYS; a key outside its range, when the range is
    checked, EINVAL."""
    alg = next((a for a in table if a.id == alg_id), None)
    if alg is None:
        raise KernelRefusal(E.ENOSYS, f"unsupported {what} algorithm {alg_id}")
    if not ranges:
        return
    bits = key.bits if key is not None and key.bits is not None else 0  # Key fills bits in
    if not alg.minbits <= bits <= alg.maxbits:
        raise KernelRefusal(
            E.EINVAL, f"{what} key of {bits} bits outside {alg.minbits}-{alg.maxbits}"
        )
    sizes = _FIXED_KEY_SIZES.get(alg_id) if what == "encryption" else None
    if sizes and bits not in sizes:
        raise KernelRefusal(E.EINVAL, f"{what} key of {bits} bits is not one of {sizes}")
