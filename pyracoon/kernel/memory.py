"""A userland model of a PF_KEY kernel: SAD, SPD, SPI allocation, lifetimes, ACQUIRE.

This is what tests and ``pyracoon-kernel`` run instead of a host kernel. It answers PF_KEY v2
messages the way Linux 6.1's af_key answers them -- same replies, same broadcasts, same errno
values, the same extensions in them -- so that ``pysetkey`` and the daemon cannot tell the
difference, and it adds the two things a real kernel gets from the network: ``output`` and
``input`` pass a packet through the SPD, which is how an ACQUIRE is provoked. The lab test
``tests/lab/test_lab_pfkey_diff.py`` holds it to a real Linux kernel; docs/kernel.md lists the
rules and the few places where it differs on purpose.

Theory of operation
-------------------
* Each client is an ``Endpoint`` with a queue of encoded messages, its registrations (REGISTER per
  SA type) and a promiscuous flag. ``handle(endpoint, bytes)`` processes one request and queues
  the replies and broadcasts; nothing blocks and nothing runs behind the caller's back.
* Who receives what is Linux's ``pfkey_broadcast``: GETSPI, GET, DUMP, SPDGET, SPDDUMP and errors
  go to the sender; UPDATE, ADD, DELETE, FLUSH and every SPD change go to all sockets, *with* the
  keys (``pfkey_xfrm_state2msg``); REGISTER, ACQUIRE and EXPIRE go to every socket registered
  for any SA type (and REGISTER to its sender). A promiscuous socket gets a copy of every request
  and of every message, on top of the copy it gets as a target.
* Time comes from an injectable ``clock`` (seconds since the epoch, as ``time.time``). Lifetimes
  are checked on every call and by ``tick``, in the order their deadlines fall; a soft limit
  makes the SA *dying* and sends a soft EXPIRE, a hard limit sends a hard EXPIRE and removes the
  SA. Larval states -- from GETSPI, and the ones an ACQUIRE leaves, with SPI 0 -- die after
  ``LARVAL_LIFETIME`` seconds with a hard EXPIRE. Policies that outlive their lifetime vanish
  without a word, since af_key's ``key_notify_policy_expire`` sends nothing.
* Errno values are Linux's: EEXIST for an SA, policy or registration that already exists, ESRCH
  for an SA that does not, ENOENT for a missing policy, for an SPI range with no free SPI and
  for an empty DUMP/SPDDUMP, EINVAL for a malformed or inconsistent request, EOPNOTSUPP for
  message types only a kernel sends.
* Policy ids are ``xfrm_gen_index``'s: a generator that grows by 8 per policy, or'ed with the
  direction (in 0, out 1, fwd 2), which is what lets setkey tell per-socket policies
  (id % 8 >= 3) from SPD entries.
* Policies are kept as Linux keeps them (``parse_ipsecrequest``): each ipsecrequest becomes a
  ``Template`` that remembers only "optional" (level use) or a reqid (level unique); default
  and require both mean "required". Dumps and broadcasts report what the kernel kept
  (``pfkey_xfrm_policy2msg``), so what went in is not always what comes out. SAs too: mode "any"
  is kept as transport, the replay window is at most 32, only Linux's SA flags survive.
"""

from __future__ import annotations

import errno as E
import ipaddress
import secrets
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from pyracoon.crypto.algorithms import IPCOMP_ALGORITHMS, kernel_auth_algorithms, kernel_ciphers

from .base import KernelSocket, decode_from_kernel
from .pfkey import (
    SA,
    SA2,
    Address,
    Alg,
    Extension,
    IPAddress,
    IpsecRequest,
    Key,
    Lifetime,
    Message,
    PfkeyDecodeError,
    Policy,
    Proposal,
    SecCtx,
    SpiRange,
    Supported,
    decode,
    encode,
)
from .sadb import (
    MANUAL_REQID_MAX,
    ULPROTO_ANY,
    XFRM_MAX_DEPTH,
    AuthAlg,
    Direction,
    EncAlg,
    ExtType,
    IpProto,
    Level,
    Mode,
    MsgType,
    PolicyType,
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
_XFRM_DIR = {Direction.INBOUND: 0, Direction.OUTBOUND: 1, Direction.FWD: 2}
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


class InMemoryKernel:
    """A PF_KEY kernel in memory. See the module docstring for its rules."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.sad: dict[tuple[int, IPAddress, int], SAEntry] = {}
        """The states with an SPI, by (SA type, destination, SPI)."""
        self.acquiring: list[SAEntry] = []
        """Larval states without an SPI yet: what an ACQUIRE (or a GETSPI that found no free
        SPI) leaves in the SAD until an SA replaces it or it expires."""
        self.spd: list[SPEntry] = []
        self.endpoints: dict[int, Endpoint] = {}
        self._next_endpoint = 1
        self._idx_generator = 0
        """``xfrm_gen_index``'s counter: +8 per policy, never reset (flushes keep it)."""
        self._born = 0
        self._acquire_seq = 0
        self._last_reqid = MANUAL_REQID_MAX
        """``gen_reqid``'s counter: it only grows (wrapping past 2**32), flushes do not reset it."""

    # -- clients ------------------------------------------------------------------------------

    def attach(self) -> Endpoint:
        ep = Endpoint(self._next_endpoint)
        self._next_endpoint += 1
        self.endpoints[ep.id] = ep
        return ep

    def detach(self, ep: Endpoint) -> None:
        self.endpoints.pop(ep.id, None)

    def open(self) -> MemoryKernelSocket:
        """A ``KernelSocket`` connected to this kernel in the same process."""
        return MemoryKernelSocket(self)

    def now(self) -> int:
        return int(self.clock())

    def _next_born(self) -> int:
        self._born += 1
        return self._born

    # -- delivery -----------------------------------------------------------------------------

    def _deliver(self, msg: Message | bytes, how: Deliver, one: Endpoint | None = None) -> None:
        """``pfkey_broadcast``: every promiscuous socket gets a copy of everything, even what it
        also gets as a target ("you receive it twice", says af_key); then the targets."""
        data = msg if isinstance(msg, bytes) else encode(msg)
        for ep in list(self.endpoints.values()):
            if ep.promisc:
                ep.deliver(data)
            if ep is one:
                continue
            if how is Deliver.ALL or (how is Deliver.REGISTERED and ep.registered):
                ep.deliver(data)
        if one is not None and one.id in self.endpoints:
            one.deliver(data)

    def _unicast(self, msg: Message, ep: Endpoint) -> None:
        self._deliver(msg, Deliver.ONE, ep)

    def _broadcast(self, msg: Message) -> None:
        self._deliver(msg, Deliver.ALL)

    def _to_registered(self, msg: Message, also: Endpoint | None = None) -> None:
        """REGISTER, ACQUIRE and EXPIRE: ``BROADCAST_REGISTERED`` asks only whether a socket is
        registered at all, not for which SA type, so an AH-only listener hears of ESP too."""
        self._deliver(msg, Deliver.REGISTERED, also)

    # -- requests -----------------------------------------------------------------------------

    def handle(self, ep: Endpoint, data: bytes) -> None:
        """Process one request from ``ep``; replies and broadcasts are queued on the endpoints."""
        self.tick()
        # pfkey_process: a copy of the request for every promiscuous socket, the sender too.
        self._deliver(bytes(data), Deliver.PROMISC_ONLY)
        try:
            msg = decode(data)
        except PfkeyDecodeError:
            if len(data) >= 16:
                head = Message(data[1], data[3], E.EINVAL, *_seq_pid(data))
                self._unicast(head, ep)
            return
        try:
            self._dispatch(ep, msg)
        except KernelRefusal as refusal:
            self._unicast(msg.reply(refusal.errno), ep)

    def _dispatch(self, ep: Endpoint, msg: Message) -> None:
        handlers: dict[int, Callable[[Endpoint, Message], None]] = {
            MsgType.GETSPI: self._getspi,
            MsgType.UPDATE: self._update,
            MsgType.ADD: self._add,
            MsgType.DELETE: self._delete,
            MsgType.GET: self._get,
            MsgType.ACQUIRE: self._acquire_reply,
            MsgType.REGISTER: self._register,
            MsgType.FLUSH: self._flush,
            MsgType.DUMP: self._dump,
            MsgType.X_PROMISC: self._promisc,
            MsgType.X_SPDADD: self._spdadd,
            MsgType.X_SPDUPDATE: self._spdadd,
            MsgType.X_SPDDELETE: self._spddelete,
            MsgType.X_SPDDELETE2: self._spddelete2,
            MsgType.X_SPDGET: self._spdget,
            MsgType.X_SPDFLUSH: self._spdflush,
            MsgType.X_SPDDUMP: self._spddump,
        }
        handler = handlers.get(msg.type)
        if handler is None:
            raise KernelRefusal(E.EOPNOTSUPP, f"message type {msg.type} is not a request")
        handler(ep, msg)

    # -- the SAD's states ---------------------------------------------------------------------

    def states(self) -> list[SAEntry]:
        """Every state of the SAD, larval ones without an SPI too, the newest first (the order
        of Linux's ``state_all`` list, which DUMP walks)."""
        return sorted([*self.sad.values(), *self.acquiring], key=lambda e: -e.born)

    def _insert(self, e: SAEntry) -> None:
        e.born = self._next_born()
        if e.spi:
            self.sad[e.key] = e
        else:
            self.acquiring.append(e)

    def _unlink(self, e: SAEntry) -> None:
        if e.spi and self.sad.get(e.key) is e:
            del self.sad[e.key]
        elif e in self.acquiring:
            self.acquiring.remove(e)

    def _find_acq(
        self, satype: int, src: IPAddress, dst: IPAddress, mode: int, reqid: int
    ) -> SAEntry | None:
        """``__find_acq_core``: a larval state without an SPI for exactly this SA."""
        for e in self.acquiring:
            if (
                e.state == SaState.LARVAL
                and not e.failed
                and (e.satype, e.src.addr, e.dst.addr, e.mode, e.reqid)
                == (satype, src, dst, mode, reqid)
            ):
                return e
        return None

    def _find_acq_byseq(self, seq: int) -> SAEntry | None:
        """``__xfrm_find_acq_byseq``: the larval state an ACQUIRE with this seq announced."""
        for e in self.states():
            if seq and e.acquire_seq == seq and e.state == SaState.LARVAL and not e.failed:
                return e
        return None

    def _lookup(self, satype: int, msg: Message) -> SAEntry | None:
        """``pfkey_xfrm_state_lookup``: by destination, SPI and protocol -- not the source."""
        sa = self._sa_of(msg)
        _, dst = self._addresses(msg)
        return self.sad.get((satype, dst.addr, sa.spi))

    # -- SAD requests -------------------------------------------------------------------------

    @staticmethod
    def _addresses(msg: Message) -> tuple[Address, Address]:
        src, dst = msg.src, msg.dst
        if src is None or dst is None:
            raise KernelRefusal(E.EINVAL, "source and destination addresses are required")
        if src.addr.version != dst.addr.version:
            raise KernelRefusal(E.EINVAL, "source and destination of different families")
        return src, dst

    @staticmethod
    def _ipsec_satype(msg: Message) -> int:
        if msg.satype not in (SaType.AH, SaType.ESP, SaType.IPCOMP):
            raise KernelRefusal(E.EINVAL, f"SA type {msg.satype} is not AH, ESP or IPCOMP")
        return msg.satype

    @staticmethod
    def _mode(sa2: SA2 | None) -> int:
        """``pfkey_mode_to_xfrm`` and back: "any" (or no X_SA2) is transport, 4+ is EINVAL."""
        mode = sa2.mode if sa2 is not None else Mode.ANY
        if mode not in (Mode.ANY, Mode.TRANSPORT, Mode.TUNNEL, Mode.BEET):
            raise KernelRefusal(E.EINVAL, f"SA mode {mode} is not one Linux has")
        return Mode.TRANSPORT if mode == Mode.ANY else mode

    def _getspi(self, ep: Endpoint, msg: Message) -> None:
        """``pfkey_getspi``: the larval state of an ACQUIRE if one matches, else a new one.

        The larval state is made before the SPI is looked for, so when the range has no free SPI
        (ENOENT) a larval state without an SPI stays behind, as on Linux.
        """
        satype = self._ipsec_satype(msg)
        src, dst = self._addresses(msg)
        mode, reqid = self._mode(msg.sa2), msg.sa2.reqid if msg.sa2 else 0
        entry = self._find_acq_byseq(msg.seq)
        if entry is not None and entry.dst.addr != dst.addr:
            entry = None
        if entry is None:
            entry = self._find_acq(satype, src.addr, dst.addr, mode, reqid)
        if entry is None:
            entry = SAEntry(
                satype,
                0,
                _host(src),
                _host(dst),
                state=SaState.LARVAL,
                mode=mode,
                reqid=reqid,
                addtime=self.now(),
                seq=msg.seq,
                pid=msg.pid,
                hard=Lifetime(ExtType.LIFETIME_HARD, addtime=LARVAL_LIFETIME),
                selector=Selector.flow(src.addr, dst.addr),
            )
            self._insert(entry)
        rng = msg.get(ExtType.SPIRANGE)
        lo, hi = SPI_MIN_DEFAULT, SPI_MAX_DEFAULT
        if isinstance(rng, SpiRange):
            lo, hi = rng.min, rng.max
        if lo > hi:
            raise KernelRefusal(E.EINVAL, f"empty SPI range {lo:#x}-{hi:#x}")
        if not entry.spi:
            spi = self._allocate_spi(satype, dst.addr, max(lo, 1), hi)
            self.acquiring.remove(entry)
            entry.spi = spi
            self.sad[entry.key] = entry
        self._unicast(self._sa_message(msg.reply(), entry), ep)

    def _allocate_spi(self, satype: int, dst: IPAddress, lo: int, hi: int) -> int:
        span = hi - lo + 1
        if span <= 0:
            raise KernelRefusal(E.ENOENT, f"no SPI in {lo:#x}-{hi:#x}")
        for _ in range(64):
            spi = lo + secrets.randbelow(span)
            if (satype, dst, spi) not in self.sad:
                return spi
        if span <= 1 << 16:
            for spi in range(lo, hi + 1):
                if (satype, dst, spi) not in self.sad:
                    return spi
        raise KernelRefusal(E.ENOENT, f"no free SPI in {lo:#x}-{hi:#x}")

    def _check_algorithms(self, satype: int, sa: SA, msg: Message) -> None:
        """What ``pfkey_msg2xfrm_state`` and the ciphers' ``setkey`` refuse.

        EINVAL: an ESP without KEY_ENCRYPT or an AH without KEY_AUTH (even for null), a hard
        limit without a soft one or the reverse, an algorithm number past Linux's last, a key
        of 0 bits for an algorithm that is not null, an encryption key of a length the cipher
        does not take. ENOSYS: an algorithm this kernel does not have. An HMAC key may be of
        any length, as HMAC takes any. KAME's keyed-md5/keyed-sha1/tcp-md5, which only the
        simulated kernel has, keep their REGISTER ranges.
        """
        ekey, akey = msg.key(ExtType.KEY_ENCRYPT), msg.key(ExtType.KEY_AUTH)
        if satype == SaType.ESP and ekey is None:
            raise KernelRefusal(E.EINVAL, "an ESP SA needs KEY_ENCRYPT, even for null")
        if satype == SaType.AH and akey is None:
            raise KernelRefusal(E.EINVAL, "an AH SA needs KEY_AUTH")
        hard, soft = msg.lifetime(ExtType.LIFETIME_HARD), msg.lifetime(ExtType.LIFETIME_SOFT)
        if (hard is None) != (soft is None):
            raise KernelRefusal(E.EINVAL, "a hard limit needs a soft one, and the reverse")
        if satype == SaType.IPCOMP:
            if sa.encrypt not in {a.id for a in SUPPORTED_COMP}:
                raise KernelRefusal(E.ENOSYS, f"unknown compression algorithm {sa.encrypt}")
            if ekey or akey:
                raise KernelRefusal(E.EINVAL, "IPComp takes no keys")
            return
        if sa.auth > AuthAlg.NULL and sa.auth not in KAME_AUTH:
            raise KernelRefusal(E.EINVAL, f"authentication algorithm {sa.auth} is past the last")
        if sa.encrypt > EncAlg.TWOFISHCBC:
            raise KernelRefusal(E.EINVAL, f"encryption algorithm {sa.encrypt} is past the last")
        if akey is not None and sa.auth != AuthAlg.NULL and akey.bits == 0:
            raise KernelRefusal(E.EINVAL, "an authentication key of 0 bits")
        if ekey is not None and sa.encrypt != EncAlg.NULL and ekey.bits == 0:
            raise KernelRefusal(E.EINVAL, "an encryption key of 0 bits")
        if satype == SaType.AH:
            if sa.encrypt != EncAlg.NONE or ekey:
                raise KernelRefusal(E.EINVAL, "AH has no encryption")
            if sa.auth == AuthAlg.NONE:
                raise KernelRefusal(E.EINVAL, "AH needs an authentication algorithm")
        if satype == SaType.ESP:
            if sa.encrypt == EncAlg.NONE:
                raise KernelRefusal(E.EINVAL, "ESP needs an encryption algorithm (null is 11)")
            _check_key(SUPPORTED_ENCRYPT, sa.encrypt, ekey, "encryption")
        if sa.auth != AuthAlg.NONE:
            _check_key(SUPPORTED_AUTH, sa.auth, akey, "authentication", ranges=sa.auth in KAME_AUTH)
        elif akey:
            raise KernelRefusal(E.EINVAL, "authentication key given without an algorithm")

    def _sa_of(self, msg: Message) -> SA:
        sa = msg.sa
        if sa is None:
            raise KernelRefusal(E.EINVAL, "an SA extension is required")
        return sa

    def _state_from(self, msg: Message) -> SAEntry:
        """``pfkey_msg2xfrm_state``: the SA an ADD or UPDATE describes, as Linux keeps it."""
        satype = self._ipsec_satype(msg)
        sa = self._sa_of(msg)
        src, dst = self._addresses(msg)
        self._check_algorithms(satype, sa, msg)
        proxy = msg.get(ExtType.ADDRESS_PROXY)
        selector = None
        if isinstance(proxy, Address):
            zero = Selector.anything(src.addr.version).dst
            selector = Selector(proxy.addr, zero, proxy.prefixlen or 0)
        return SAEntry(
            satype,
            sa.spi,
            _host(src),
            _host(dst),
            state=SaState.MATURE,
            mode=self._mode(msg.sa2),
            reqid=msg.sa2.reqid if msg.sa2 else 0,
            replay=min(sa.replay, REPLAY_MAX),
            auth=sa.auth,
            encrypt=sa.encrypt,
            flags=sa.flags & SA_FLAGS_KEPT,
            key_auth=msg.key(ExtType.KEY_AUTH),
            key_encrypt=msg.key(ExtType.KEY_ENCRYPT),
            hard=msg.lifetime(ExtType.LIFETIME_HARD),
            soft=msg.lifetime(ExtType.LIFETIME_SOFT),
            addtime=self.now(),
            seq=msg.seq,
            pid=msg.pid,
            extras=[x for t, x in msg.extensions.items() if t in _NATT_EXTS],
            selector=selector,
        )

    def _update(self, ep: Endpoint, msg: Message) -> None:
        """``xfrm_state_update``: a larval state is replaced by the new SA; a mature one keeps
        its keys, algorithms and SPI and takes only the new lifetimes -- while the broadcast,
        built from the message, shows the new keys and the state "dead" of the SA that was
        made from it and thrown away."""
        new = self._state_from(msg)
        old = self.sad.get(new.key)
        if old is None:
            raise KernelRefusal(E.ESRCH, f"no SA with SPI {new.spi:#x} to update")
        if old.state == SaState.LARVAL:
            self._unlink(old)
            self._insert(new)
        elif old.state in (SaState.MATURE, SaState.DYING):
            old.hard, old.soft = new.hard, new.soft
            old.state, old.soft_expired = SaState.MATURE, False
            new.state = SaState.DEAD
        else:
            raise KernelRefusal(E.EINVAL, f"the SA with SPI {new.spi:#x} is dead")
        self._broadcast(self._sa_message(msg.reply(), new))

    def _add(self, ep: Endpoint, msg: Message) -> None:
        """``xfrm_state_add``: a new SA, which takes the place of the larval state an ACQUIRE
        left for it (found by the ACQUIRE's seq, or else by addresses, mode and reqid)."""
        new = self._state_from(msg)
        if new.spi == 0:
            raise KernelRefusal(E.EINVAL, "SPI 0 is reserved")
        if new.key in self.sad:
            raise KernelRefusal(E.EEXIST, f"an SA with SPI {new.spi:#x} exists")
        larval = self._find_acq_byseq(msg.seq)
        if larval is not None and (larval.satype, larval.dst.addr) != (new.satype, new.dst.addr):
            larval = None
        if larval is None:
            larval = self._find_acq(new.satype, new.src.addr, new.dst.addr, new.mode, new.reqid)
        self._insert(new)
        if larval is not None:
            self._unlink(larval)
        self._broadcast(self._sa_message(msg.reply(), new))

    def _delete(self, ep: Endpoint, msg: Message) -> None:
        """``pfkey_delete``: one SA, named by its SPI (without an SA extension: EINVAL); the
        broadcast is the whole SA, keys and all, in state "dead"."""
        satype = self._ipsec_satype(msg)
        entry = self._lookup(satype, msg)
        if entry is None:
            raise KernelRefusal(E.ESRCH, f"no SA with SPI {self._sa_of(msg).spi:#x}")
        self._unlink(entry)
        entry.state = SaState.DEAD
        self._broadcast(self._sa_message(msg.reply(), entry))

    def _get(self, ep: Endpoint, msg: Message) -> None:
        satype = self._ipsec_satype(msg)
        entry = self._lookup(satype, msg)
        if entry is None:
            raise KernelRefusal(E.ESRCH, f"no SA with SPI {self._sa_of(msg).spi:#x}")
        self._unicast(self._sa_message(msg.reply(), entry), ep)

    def _flush(self, ep: Endpoint, msg: Message) -> None:
        """``pfkey_flush``: the sender's own answer, then -- only when something went -- the
        broadcast to every socket, so the sender hears it twice."""
        if msg.satype != SaType.UNSPEC:
            self._ipsec_satype(msg)
        doomed = [e for e in self.states() if msg.satype in (SaType.UNSPEC, e.satype)]
        for e in doomed:
            self._unlink(e)
        self._unicast(msg.reply(), ep)
        if doomed:
            self._broadcast(msg.reply())

    def _dump(self, ep: Endpoint, msg: Message) -> None:
        """``pfkey_dump``: newest first, seq 1, 2, ... and 0 on the last one."""
        if msg.satype != SaType.UNSPEC:
            self._ipsec_satype(msg)
        entries = [e for e in self.states() if msg.satype in (SaType.UNSPEC, e.satype)]
        if not entries:
            raise KernelRefusal(E.ENOENT, "the SAD is empty")
        for i, entry in enumerate(entries):
            seq = 0 if i == len(entries) - 1 else i + 1
            head = Message(MsgType.DUMP, entry.satype, 0, seq, msg.pid)
            self._unicast(self._sa_message(head, entry), ep)

    def _sa_message(
        self, head: Message, e: SAEntry, *, keys: bool = True, lifetimes: int = 3
    ) -> Message:
        """``pfkey_xfrm_state2msg``: what every SA message carries, in Linux's order.

        ``lifetimes`` is af_key's ``hsc``: 3 for both limits, 2 the hard one (a hard EXPIRE),
        1 the soft one. Keys go out whenever af_key's ``add_keys`` is set, which is every
        message but EXPIRE -- the broadcasts of ADD, UPDATE and DELETE to every socket too.
        """
        head.satype = e.satype
        head.add(SA(e.spi, e.replay, e.state, e.auth, e.encrypt, e.flags))
        if lifetimes & 2:
            head.add(_limit(ExtType.LIFETIME_HARD, e.hard))
        if lifetimes & 1:
            head.add(_limit(ExtType.LIFETIME_SOFT, e.soft))
        head.add(Lifetime(ExtType.LIFETIME_CURRENT, e.allocations, e.bytes, e.addtime, e.usetime))
        head.add(e.src).add(e.dst)
        sel = e.sel()
        if sel.src != e.src.addr:
            proto = sel.proto or ULPROTO_ANY
            head.add(Address(ExtType.ADDRESS_PROXY, sel.src, sel.sport, sel.src_plen, proto))
        if keys and e.key_auth is not None and e.key_auth.bits:
            head.add(e.key_auth)
        if keys and e.key_encrypt is not None and e.key_encrypt.bits:
            head.add(e.key_encrypt)
        head.add(SA2(e.mode, 0, e.reqid))
        for x in e.extras:
            if x.type != ExtType.X_NAT_T_OA:  # kept for the SA, never reported
                head.add(x)
        return head

    def _register(self, ep: Endpoint, msg: Message) -> None:
        """``pfkey_register``: once per SA type and socket (again: EEXIST); the answer lists
        authentication and encryption algorithms whatever the SA type, and goes to every
        registered socket."""
        if msg.satype > SATYPE_MAX:
            raise KernelRefusal(E.EINVAL, f"cannot register for SA type {msg.satype}")
        if msg.satype != SaType.UNSPEC:
            if msg.satype in ep.registered:
                raise KernelRefusal(E.EEXIST, f"already registered for SA type {msg.satype}")
            ep.registered.add(msg.satype)
        reply = msg.reply()
        reply.add(Supported(ExtType.SUPPORTED_AUTH, list(SUPPORTED_AUTH)))
        reply.add(Supported(ExtType.SUPPORTED_ENCRYPT, list(SUPPORTED_ENCRYPT)))
        self._to_registered(reply, also=ep)

    def _promisc(self, ep: Endpoint, msg: Message) -> None:
        """``pfkey_promisc``: a bare header sets the flag (satype 0 or 1) and is echoed, with
        errno 0, to every socket; with extensions it only passes the message on to all."""
        if not msg.extensions:
            if msg.satype not in (0, 1):
                raise KernelRefusal(E.EINVAL, f"X_PROMISC takes 0 or 1, not {msg.satype}")
            ep.promisc = bool(msg.satype)
            self._broadcast(msg.reply())
            return
        self._broadcast(msg)

    def _acquire_reply(self, ep: Endpoint, msg: Message) -> None:
        """``pfkey_acquire``: a key manager's bare ACQUIRE header with an errno means that
        negotiation failed; the larval state of that ACQUIRE turns into an error state, which
        stops the same flow from asking again until it expires. Anything else is ignored, and
        nothing is ever answered."""
        if msg.extensions or not msg.seq or not msg.errno:
            return
        larval = self._find_acq_byseq(msg.seq)
        if larval is not None:
            larval.failed = True
            larval.state = SaState.DEAD

    # -- SPD ----------------------------------------------------------------------------------

    def _policy_of(self, msg: Message) -> Policy:
        pol = msg.policy
        if pol is None:
            raise KernelRefusal(E.EINVAL, "an X_POLICY extension is required")
        return pol

    def _selectors(self, msg: Message) -> tuple[Address, Address]:
        """``pfkey_spdadd``'s selector: the destination's upper-layer protocol is the one kept
        ("we set this twice", says af_key), any (0 or 255) reported as 255; no scope ids."""
        src, dst = self._addresses(msg)
        proto = ULPROTO_ANY if dst.proto in (0, ULPROTO_ANY) else dst.proto
        return (
            Address(ExtType.ADDRESS_SRC, src.addr, src.port, src.prefixlen, proto),
            Address(ExtType.ADDRESS_DST, dst.addr, dst.port, dst.prefixlen, proto),
        )

    def _spdadd(self, ep: Endpoint, msg: Message) -> None:
        """SPDADD/SPDUPDATE as ``pfkey_spdadd`` takes them."""
        pol = self._policy_of(msg)
        src, dst = self._selectors(msg)
        if pol.policy_type > PolicyType.IPSEC:
            raise KernelRefusal(E.EINVAL, f"policy type {pol.policy_type} is not one Linux keeps")
        if pol.dir not in _XFRM_DIR:
            raise KernelRefusal(E.EINVAL, f"policy direction {pol.dir} is not in, out or fwd")
        templates: list[Template] = []
        if pol.policy_type == PolicyType.IPSEC:  # other types' requests are never read
            for req in pol.requests:
                templates.append(self._template(req, pol.dir, templates))
        if pol.policy_type == PolicyType.DISCARD:
            reported = PolicyType.DISCARD
        else:
            reported = PolicyType.IPSEC if templates else PolicyType.NONE
        ctx = msg.get(ExtType.X_SEC_CTX)
        entry = SPEntry(
            0,
            pol.dir,
            reported,
            pol.priority,
            templates,
            src,
            dst,
            created=self.now(),
            hard=msg.lifetime(ExtType.LIFETIME_HARD),
            soft=msg.lifetime(ExtType.LIFETIME_SOFT),
            ctx=ctx if isinstance(ctx, SecCtx) else None,
        )
        old = next((p for p in self.spd if p.selector == entry.selector), None)
        if old is not None and msg.type == MsgType.X_SPDADD:
            raise KernelRefusal(E.EEXIST, "a policy with these selectors exists")
        entry.born = self._next_born()
        if old is not None:
            entry.id = old.id
            self.spd[self.spd.index(old)] = entry
        else:
            entry.id = self._gen_index(_XFRM_DIR[Direction(pol.dir)])
            self.spd.append(entry)
        self._broadcast(self._sp_message(msg.reply(), entry))

    def _gen_index(self, xfrm_dir: int) -> int:
        """``xfrm_gen_index``: the generator or'ed with the direction, +8 each time; 0 is 8."""
        while True:
            idx = self._idx_generator | xfrm_dir
            self._idx_generator = (self._idx_generator + 8) & 0xFFFFFFFF
            if idx == 0:
                idx = 8
            if all(p.id != idx for p in self.spd):
                return idx

    def _template(self, req: IpsecRequest, direction: int, earlier: list[Template]) -> Template:
        """One ipsecrequest as Linux's ``parse_ipsecrequest`` turns it into a template."""
        if len(earlier) >= XFRM_MAX_DEPTH:
            raise KernelRefusal(E.ELOOP, f"more than {XFRM_MAX_DEPTH} ipsecrequests")
        if req.mode == Mode.ANY:
            raise KernelRefusal(E.EINVAL, "ipsecrequest mode 0")
        proto = req.proto & 0xFF  # xfrm_id_proto_valid() and xfrm_tmpl.id.proto are u8
        if proto not in TEMPLATE_PROTOS:
            raise KernelRefusal(E.EINVAL, f"ipsecrequest protocol {req.proto} is not esp/ah/ipcomp")
        if req.mode not in (Mode.TRANSPORT, Mode.TUNNEL, Mode.BEET):
            raise KernelRefusal(E.EINVAL, f"ipsecrequest mode {req.mode} is not one Linux has")
        t = Template(proto, req.mode)
        if req.level == Level.USE:
            if req.mode in (Mode.TUNNEL, Mode.BEET) and direction == Direction.OUTBOUND:
                # An optional outbound tunnel would let packets leave unprotected to a
                # gateway that expects them inside the tunnel; Linux refuses it.
                raise KernelRefusal(E.EINVAL, "level use on an outbound tunnel or beet request")
            t.optional = True
        elif req.level == Level.UNIQUE:
            t.reqid = req.reqid if 0 < req.reqid <= MANUAL_REQID_MAX else self._gen_reqid(earlier)
        if req.mode == Mode.TUNNEL:
            if req.src is None or req.dst is None:
                raise KernelRefusal(E.EINVAL, "tunnel mode needs both endpoints")
            t.src, t.dst = req.src, req.dst
        return t

    def _gen_reqid(self, pending: list[Template]) -> int:
        """Linux's ``gen_reqid``: the next reqid above IPSEC_MANUAL_REQID_MAX no policy uses."""
        in_use = {t.reqid for p in self.spd for t in p.requests}
        in_use.update(t.reqid for t in pending)
        start = self._last_reqid
        while True:
            self._last_reqid += 1
            if self._last_reqid > REQID_MAX:
                self._last_reqid = MANUAL_REQID_MAX + 1
            if self._last_reqid not in in_use:
                return self._last_reqid
            if self._last_reqid == start:
                raise KernelRefusal(E.ENOBUFS, "no reqid left to generate")

    def _sp_message(self, head: Message, p: SPEntry) -> Message:
        """``pfkey_xfrm_policy2msg``: what SPDGET, SPDDUMP and the SPD broadcasts carry, in
        Linux's order -- both limits always, zero when none was set."""
        head.add(p.src).add(p.dst)
        head.add(_limit(ExtType.LIFETIME_HARD, p.hard))
        head.add(_limit(ExtType.LIFETIME_SOFT, p.soft))
        head.add(Lifetime(ExtType.LIFETIME_CURRENT, 0, 0, p.created, p.lastused))
        requests = [t.request() for t in p.requests]
        head.add(Policy(p.policy_type, p.dir, p.id, p.priority, requests))
        if p.ctx is not None:
            head.add(p.ctx)
        return head

    def _spddelete(self, ep: Endpoint, msg: Message) -> None:
        pol = self._policy_of(msg)
        src, dst = self._selectors(msg)
        ctx = msg.get(ExtType.X_SEC_CTX)
        probe = SPEntry(
            0, pol.dir, 0, 0, [], src, dst, 0, ctx=ctx if isinstance(ctx, SecCtx) else None
        )
        old = next((p for p in self.spd if p.selector == probe.selector), None)
        if old is None:
            raise KernelRefusal(E.ENOENT, "no policy with these selectors")
        self.spd.remove(old)
        self._broadcast(self._sp_message(msg.reply(), old))

    def _find_policy_id(self, msg: Message) -> SPEntry:
        """``xfrm_policy_byid``: the id's low three bits are its direction, and one that is not
        in, out or fwd (a socket policy's) is EINVAL."""
        pol = self._policy_of(msg)
        if pol.id & 7 >= XFRM_POLICY_MAX:
            raise KernelRefusal(E.EINVAL, f"policy id {pol.id} is not an SPD entry's")
        found = next((p for p in self.spd if p.id == pol.id), None)
        if found is None:
            raise KernelRefusal(E.ENOENT, f"no policy with id {pol.id}")
        return found

    def _spddelete2(self, ep: Endpoint, msg: Message) -> None:
        old = self._find_policy_id(msg)
        self.spd.remove(old)
        self._broadcast(self._sp_message(msg.reply(), old))

    def _spdget(self, ep: Endpoint, msg: Message) -> None:
        self._unicast(self._sp_message(msg.reply(), self._find_policy_id(msg)), ep)

    def _spdflush(self, ep: Endpoint, msg: Message) -> None:
        """``pfkey_spdflush``: as FLUSH, the sender's answer and, if any policy went, the
        broadcast."""
        had = bool(self.spd)
        self.spd.clear()
        self._unicast(msg.reply(), ep)
        if had:
            self._broadcast(msg.reply())

    def _spddump(self, ep: Endpoint, msg: Message) -> None:
        """``pfkey_spddump``: newest first, seq 1, 2, ... and 0 on the last one."""
        if not self.spd:
            raise KernelRefusal(E.ENOENT, "the SPD is empty")
        entries = sorted(self.spd, key=lambda p: -p.born)
        for i, p in enumerate(entries):
            seq = 0 if i == len(entries) - 1 else i + 1
            self._unicast(self._sp_message(Message(MsgType.X_SPDDUMP, 0, 0, seq, msg.pid), p), ep)

    # -- lifetimes ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply every lifetime that has run out by now (soft: dying + EXPIRE; hard: remove)."""
        now = self.now()
        for entry in self.states():
            self._check_expiry(entry, now)
        for p in list(self.spd):
            if self._policy_expired(p, now):
                # xfrm_policy_timer deletes it; af_key's key_notify_policy_expire is empty.
                self.spd.remove(p)

    @staticmethod
    def _policy_expired(p: SPEntry, now: int) -> bool:
        if p.hard is None:
            return False
        if p.hard.addtime and now - p.created >= p.hard.addtime:
            return True
        return bool(p.hard.usetime and now - (p.lastused or p.created) >= p.hard.usetime)

    @staticmethod
    def _deadline(limit: Lifetime | None, e: SAEntry) -> int | None:
        """When ``limit``'s time part runs out (usetime counts from the first use only)."""
        if limit is None:
            return None
        times = []
        if limit.addtime:
            times.append(e.addtime + limit.addtime)
        if limit.usetime and e.usetime:
            times.append(e.usetime + limit.usetime)
        return min(times) if times else None

    @staticmethod
    def _count_hit(limit: Lifetime | None, e: SAEntry) -> bool:
        if limit is None:
            return False
        if limit.bytes and e.bytes >= limit.bytes:
            return True
        return bool(limit.allocations and e.allocations >= limit.allocations)

    def _check_expiry(self, e: SAEntry, now: int) -> None:
        """``xfrm_timer_handler`` and ``xfrm_state_check_expire``: each limit fires when its
        time comes, so a clock that jumps past both sends the soft EXPIRE before the hard one;
        a byte or packet count that passes both at once sends only the hard one."""
        if self.sad.get(e.key) is not e and e not in self.acquiring:
            return
        hard_at, soft_at = self._deadline(e.hard, e), self._deadline(e.soft, e)
        hard = (hard_at is not None and hard_at <= now) or self._count_hit(e.hard, e)
        may_warn = not e.soft_expired and e.state != SaState.LARVAL
        if may_warn and soft_at is not None and soft_at <= now:
            if not hard or hard_at is None or soft_at < hard_at:
                self._soft_expire(e)
        if hard:
            self._unlink(e)
            e.state = SaState.DEAD
            self._expire(e, hard=True)
        elif may_warn and not e.soft_expired and self._count_hit(e.soft, e):
            self._soft_expire(e)

    def _soft_expire(self, e: SAEntry) -> None:
        e.soft_expired = True
        e.state = SaState.DYING
        self._expire(e, hard=False)

    def _expire(self, e: SAEntry, *, hard: bool) -> None:
        """``key_notify_sa_expire``: the SA without keys, with the limit that ran out."""
        head = Message(MsgType.EXPIRE, e.satype, 0, 0, 0)
        self._to_registered(self._sa_message(head, e, keys=False, lifetimes=2 if hard else 1))

    # -- the packet path ----------------------------------------------------------------------

    def _lookup_policy(
        self, direction: int, src: IPAddress, dst: IPAddress, proto: int, sport: int, dport: int
    ) -> SPEntry | None:
        best: SPEntry | None = None
        for p in self.spd:
            if p.dir == direction and p.matches(src, dst, proto, sport, dport):
                if best is None or p.priority < best.priority:
                    best = p
        return best

    def _candidates(
        self, satype: int, src: IPAddress, dst: IPAddress, t: Template
    ) -> list[SAEntry]:
        """The states ``xfrm_state_find`` looks at for a template: same addresses, protocol,
        mode and reqid -- exactly the reqid, 0 only matching 0."""
        return [
            e
            for e in self.states()
            if e.satype == satype
            and e.src.addr == src
            and e.dst.addr == dst
            and e.mode == t.mode
            and e.reqid == t.reqid
        ]

    def _find_sa(
        self, satype: int, src: IPAddress, dst: IPAddress, t: Template, flow: Flow
    ) -> SAEntry | None:
        """A usable SA for the template: valid, selecting the flow, not dying if it can be
        helped, else the newest."""
        best: SAEntry | None = None
        for e in self._candidates(satype, src, dst, t):
            if e.state not in (SaState.MATURE, SaState.DYING) or not e.sel().matches(*flow):
                continue
            rank = (e.state == SaState.MATURE, e.addtime)
            if best is None or rank > (best.state == SaState.MATURE, best.addtime):
                best = e
        return best

    def output(
        self,
        src: str | IPAddress,
        dst: str | IPAddress,
        proto: int = 17,
        sport: int = 0,
        dport: int = 0,
        size: int = 64,
    ) -> PacketResult:
        """Send one packet of ``size`` bytes from this host: what does the SPD do with it?

        A policy that wants IPsec but finds no SA for a template sends an ACQUIRE to the
        registered key managers and leaves a larval state for it, unless one is there already
        (negotiation under way) or a failed one selects this very flow; templates are tried in
        order and the first required one that is missing stops the search. With level ``use``
        the packet leaves in the clear meanwhile -- the seed memo's "the first few packets go
        out unencrypted" -- with ``require`` or ``unique`` it is dropped.
        """
        self.tick()
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        policy = self._lookup_policy(Direction.OUTBOUND, s, d, proto, sport, dport)
        if policy is None:
            return PacketResult(Verdict.CLEAR, reason="no policy")
        policy.lastused = self.now()
        if policy.policy_type == PolicyType.DISCARD:
            return PacketResult(Verdict.DROPPED, policy.id, reason="policy discard")
        if policy.policy_type != PolicyType.IPSEC:
            return PacketResult(Verdict.CLEAR, policy.id, reason="policy bypasses IPsec")
        flow: Flow = (s, d, proto, sport, dport)
        found: list[SAEntry] = []
        missing: list[Template] = []
        acquired = False
        for t in policy.requests:
            a, b = (t.src, t.dst) if t.mode == Mode.TUNNEL else (s, d)
            assert a is not None and b is not None  # a tunnel template has both endpoints
            satype = SATYPE_OF_PROTO.get(t.proto)
            sa = None if satype is None else self._find_sa(satype, a, b, t, flow)
            if sa is not None:
                found.append(sa)
                continue
            if satype is not None:  # routing/dstopts templates have no SA type to ask for
                acquired = self._acquire(policy, t, satype, a, b, flow) or acquired
            missing.append(t)
            if not t.optional:
                break
        if missing:
            if all(t.optional for t in missing):
                verdict, why = Verdict.CLEAR, "no SA yet, level use"
            else:
                verdict, why = Verdict.DROPPED, "no SA yet, level require"
            return PacketResult(verdict, policy.id, acquired=acquired, reason=why)
        now = self.now()
        for sa in found:
            sa.bytes += size
            sa.allocations += 1
            if not sa.usetime:
                sa.usetime = now
            self._check_expiry(sa, now)
        return PacketResult(Verdict.PROTECTED, policy.id, [sa.spi for sa in found])

    def input(
        self,
        src: str | IPAddress,
        dst: str | IPAddress,
        proto: int = 17,
        sport: int = 0,
        dport: int = 0,
        spi: int | None = None,
        size: int = 64,
    ) -> PacketResult:
        """Receive one packet; ``spi`` set means it arrived inside ESP with that SPI.

        A clear packet that meets an inbound ipsec policy of level require is dropped, which is
        why the memo's traffic stops while only one side has its keys.
        """
        self.tick()
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        if spi is not None:
            sa = self.sad.get((SaType.ESP, d, spi))
            if sa is None or sa.state not in (SaState.MATURE, SaState.DYING):
                return PacketResult(Verdict.DROPPED, reason=f"no SA for SPI {spi:#x}")
            now = self.now()
            sa.bytes += size
            sa.allocations += 1
            if not sa.usetime:
                sa.usetime = now
            self._check_expiry(sa, now)
            return PacketResult(Verdict.PROTECTED, spis=[spi])
        policy = self._lookup_policy(Direction.INBOUND, s, d, proto, sport, dport)
        if policy is None or policy.policy_type in (PolicyType.NONE, PolicyType.BYPASS):
            return PacketResult(Verdict.CLEAR, policy.id if policy else None)
        if policy.policy_type == PolicyType.DISCARD:
            return PacketResult(Verdict.DROPPED, policy.id, reason="policy discard")
        if policy.policy_type == PolicyType.IPSEC and any(not r.optional for r in policy.requests):
            return PacketResult(Verdict.DROPPED, policy.id, reason="clear packet, level require")
        return PacketResult(Verdict.CLEAR, policy.id)

    def _acquire(
        self,
        policy: SPEntry,
        t: Template,
        satype: int,
        src: IPAddress,
        dst: IPAddress,
        flow: Flow,
    ) -> bool:
        """``xfrm_state_find`` for a missing SA: ask the key managers unless a larval state is
        there already or a failed one selects this flow; then leave a larval state, SPI 0, with
        the ACQUIRE's seq, selecting the flow. No registered socket, no ACQUIRE and no state
        (``km_is_alive``)."""
        for e in self._candidates(satype, src, dst, t):
            if e.state == SaState.LARVAL:
                return False
            if e.failed and e.sel().matches(*flow):
                return False
        if not any(ep.registered for ep in self.endpoints.values()):
            return False
        self._acquire_seq = (self._acquire_seq + 1) & 0xFFFFFFFF or 1
        larval = SAEntry(
            satype,
            0,
            Address(ExtType.ADDRESS_SRC, src, 0, None, 0),
            Address(ExtType.ADDRESS_DST, dst, 0, None, 0),
            state=SaState.LARVAL,
            mode=t.mode,
            reqid=t.reqid,
            addtime=self.now(),
            hard=Lifetime(ExtType.LIFETIME_HARD, addtime=LARVAL_LIFETIME),
            selector=Selector.flow(*flow),
            acquire_seq=self._acquire_seq,
        )
        self._insert(larval)
        self._send_acquire(policy, larval)
        return True

    def _send_acquire(self, policy: SPEntry, x: SAEntry) -> None:
        """``pfkey_send_acquire``: the SA's addresses (full prefix, protocol 0), the policy as
        a bare X_POLICY header (type ipsec, dir out, its id and priority, no requests) and a
        proposal without combinations."""
        msg = Message(MsgType.ACQUIRE, x.satype, 0, x.acquire_seq, 0)
        msg.add(x.src).add(x.dst)
        msg.add(Policy(PolicyType.IPSEC, Direction.OUTBOUND, policy.id, policy.priority, []))
        msg.add(Proposal(ACQUIRE_REPLAY, []))
        self._to_registered(msg)


def _plen(a: Address) -> int:
    """``a``'s prefix length; ``Address`` fills in the full length when given none."""
    return a.addr.max_prefixlen if a.prefixlen is None else a.prefixlen


_NATT_EXTS = {
    ExtType.X_NAT_T_TYPE,
    ExtType.X_NAT_T_SPORT,
    ExtType.X_NAT_T_DPORT,
    ExtType.X_NAT_T_OA,
    ExtType.X_SEC_CTX,
}


def _host(a: Address) -> Address:
    """An SA address as ``pfkey_xfrm_state2msg`` reports it: the full host prefix, protocol 0,
    port 0 (NAT-T ports travel in their own extensions), no scope id."""
    return Address(a.ext_type, a.addr, 0, a.addr.max_prefixlen, 0)


def _limit(ext_type: ExtType, lt: Lifetime | None) -> Lifetime:
    """A hard or soft limit as Linux reports it: zeros where nothing was set."""
    if lt is None:
        return Lifetime(ext_type)
    return Lifetime(ext_type, lt.allocations, lt.bytes, lt.addtime, lt.usetime)


def _seq_pid(data: bytes) -> tuple[int, int]:
    return struct.unpack_from("=II", data, 8)


def _check_key(
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


class MemoryKernelSocket(KernelSocket):
    """A ``KernelSocket`` wired straight to an ``InMemoryKernel`` in this process."""

    def __init__(self, kernel: InMemoryKernel) -> None:
        super().__init__()
        self.kernel = kernel
        self.endpoint = kernel.attach()

    def send(self, msg: Message) -> None:
        self.kernel.handle(self.endpoint, encode(msg))

    def _recv(self, timeout: float | None) -> Message | None:
        self.kernel.tick()
        if not self.endpoint.queue:
            return None
        return decode_from_kernel(self.endpoint.queue.popleft())

    def pending(self) -> list[Message]:
        """Every message waiting on this socket, in order (for tests)."""
        out = []
        while (m := self.recv(0)) is not None:
            out.append(m)
        return out

    def close(self) -> None:
        self.kernel.detach(self.endpoint)
