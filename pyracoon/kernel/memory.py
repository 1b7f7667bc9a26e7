"""A userland model of a PF_KEY kernel: SAD, SPD, SPI allocation, lifetimes, ACQUIRE.

This is what tests and ``pyracoon-kernel`` run instead of a host kernel. It answers PF_KEY v2
messages the way Linux's af_key and KAME answer them -- same replies, same broadcasts, same
errno values -- so that ``pysetkey`` and the daemon cannot tell the difference, and it adds the
two things a real kernel gets from the network: ``output`` and ``input`` pass a packet through
the SPD, which is how an ACQUIRE is provoked.

Theory of operation
-------------------
* Each client is an ``Endpoint`` with a queue of encoded messages, its registrations (REGISTER per
  SA type) and a promiscuous flag. ``handle(endpoint, bytes)`` processes one request and queues
  the replies and broadcasts; nothing blocks and nothing runs behind the caller's back.
* Who receives what (RFC 2367 section 3.1, Linux ``pfkey_broadcast``): GETSPI, GET, REGISTER,
  DUMP, SPDGET, SPDDUMP and errors go to the sender (REGISTER also to registered sockets);
  UPDATE, ADD, DELETE, FLUSH and every SPD change go to all sockets, without key material;
  ACQUIRE and EXPIRE go to the sockets registered for that SA type. A promiscuous socket gets a
  copy of every request and every message the kernel sends.
* Time comes from an injectable ``clock`` (seconds since the epoch, as ``time.time``). Lifetimes
  are checked on every call and by ``tick``; a soft limit makes the SA *dying* and sends a soft
  EXPIRE, a hard limit sends a hard EXPIRE and removes the SA. Larval SAs (from GETSPI) die after
  ``LARVAL_LIFETIME`` seconds with a hard EXPIRE, as Linux drops its acquire states.
* Errno values are Linux's, the kernel this project runs on: EEXIST for an SA or policy that
  already exists, ESRCH for an SA that does not, ENOENT for a missing policy and for an empty
  DUMP/SPDDUMP, EINVAL for a malformed or inconsistent request, EOPNOTSUPP for message types
  only a kernel sends.
* Policy ids are made as Linux makes them, ``(n << 3) | xfrm_dir`` (in 0, out 1, fwd 2), which is
  what lets setkey tell per-socket policies (id % 8 >= 3) from SPD entries.
* Policies are kept as Linux keeps them (``parse_ipsecrequest``): each ipsecrequest becomes a
  ``Template`` that remembers only "optional" (level use) or a reqid (level unique); default
  and require both mean "required". Dumps and broadcasts report what the kernel kept
  (``pfkey_xfrm_policy2msg``), so what went in is not always what comes out.
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

from .base import KernelSocket, decode_from_kernel
from .pfkey import (
    SA,
    SA2,
    Address,
    Alg,
    Comb,
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
    CompAlg,
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
"""Seconds a larval SA (GETSPI without UPDATE) lives: Linux's XFRM_ACQ_EXPIRES."""
ACQUIRE_BLOCK = 30
"""Seconds during which a second packet for the same policy does not send another ACQUIRE."""
SPI_MIN_DEFAULT = 0x100
SPI_MAX_DEFAULT = 0x0FFFFFFF

Clock = Callable[[], float]

# What a REGISTER reply announces: (id, ivlen, minbits, maxbits). The usual kernel ranges of
# racoon-facts.md section 7.4, with KAME's keyed-md5/keyed-sha1 and a null cipher that accepts a
# key (the old "simple" transform of the seed memo) so the memo's manual-keying examples load.
SUPPORTED_AUTH: tuple[Alg, ...] = (
    Alg(AuthAlg.MD5HMAC, 0, 128, 128),
    Alg(AuthAlg.SHA1HMAC, 0, 160, 160),
    Alg(AuthAlg.SHA2_256, 0, 256, 256),
    Alg(AuthAlg.SHA2_384, 0, 384, 384),
    Alg(AuthAlg.SHA2_512, 0, 512, 512),
    Alg(AuthAlg.RIPEMD160HMAC, 0, 160, 160),
    Alg(AuthAlg.AES_XCBC_MAC, 0, 128, 128),
    Alg(AuthAlg.MD5, 0, 128, 128),
    Alg(AuthAlg.SHA, 0, 160, 160),
    Alg(AuthAlg.NULL, 0, 0, 2048),
    Alg(AuthAlg.TCP_MD5, 0, 8, 640),
)
SUPPORTED_ENCRYPT: tuple[Alg, ...] = (
    Alg(EncAlg.DESCBC, 8, 64, 64),
    Alg(EncAlg.THREEDESCBC, 8, 192, 192),
    Alg(EncAlg.CAST128CBC, 8, 40, 128),
    Alg(EncAlg.BLOWFISHCBC, 8, 40, 448),
    Alg(EncAlg.NULL, 0, 0, 2048),
    Alg(EncAlg.AESCBC, 16, 128, 256),
    Alg(EncAlg.AESCTR, 8, 160, 288),
    Alg(EncAlg.CAMELLIACBC, 16, 128, 256),
    Alg(EncAlg.TWOFISHCBC, 16, 128, 256),
)
SUPPORTED_COMP: tuple[Alg, ...] = (
    Alg(CompAlg.OUI, 0, 0, 0),
    Alg(CompAlg.DEFLATE, 0, 0, 0),
    Alg(CompAlg.LZS, 0, 0, 0),
)
_FIXED_KEY_SIZES = {EncAlg.AESCBC: (128, 192, 256), EncAlg.CAMELLIACBC: (128, 192, 256)}

SATYPE_OF_PROTO = {IpProto.ESP: SaType.ESP, IpProto.AH: SaType.AH, IpProto.IPCOMP: SaType.IPCOMP}
TEMPLATE_PROTOS = frozenset(
    {IpProto.ESP, IpProto.AH, IpProto.IPCOMP, IpProto.ROUTING, IpProto.DSTOPTS}
)
"""What Linux's ``xfrm_id_proto_valid`` accepts in a template (with IPv6 built in)."""
REQID_MAX = 0xFFFFFFFF
_XFRM_DIR = {Direction.INBOUND: 0, Direction.OUTBOUND: 1, Direction.FWD: 2}


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


@dataclass
class SAEntry:
    """A security association as the SAD holds it."""

    satype: int
    spi: int
    src: Address
    dst: Address
    state: int = SaState.MATURE
    mode: int = Mode.ANY
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
    seq: int = 0
    pid: int = 0
    extras: list = field(default_factory=list)
    """NAT-T and security-context extensions, stored and returned as given."""
    soft_expired: bool = False

    @property
    def key(self) -> tuple[int, IPAddress, int]:
        return (self.satype, self.dst.addr, self.spi)


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

    @property
    def selector(self) -> tuple:
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
        if src not in ipaddress.ip_network((self.src.addr, self.src.prefixlen), strict=False):
            return False
        if dst not in ipaddress.ip_network((self.dst.addr, self.dst.prefixlen), strict=False):
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
        self.spd: list[SPEntry] = []
        self.endpoints: dict[int, Endpoint] = {}
        self._next_endpoint = 1
        self._policy_gen = 0
        self._acquire_seq = 0
        self._last_reqid = MANUAL_REQID_MAX
        """``gen_reqid``'s counter: it only grows (wrapping past 2**32), flushes do not reset it."""
        self._acquires: dict[tuple, tuple[int, int]] = {}
        """(policy id, src, dst) -> (when, ACQUIRE seq): ACQUIREs not to repeat yet."""

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

    # -- delivery -----------------------------------------------------------------------------

    def _send(self, msg: Message, targets: list[Endpoint]) -> None:
        data = encode(msg)
        seen = set()
        for ep in targets:
            if ep.id not in seen and ep.id in self.endpoints:
                seen.add(ep.id)
                ep.deliver(data)
        for ep in list(self.endpoints.values()):
            if ep.promisc and ep.id not in seen:
                ep.deliver(data)

    def _unicast(self, msg: Message, ep: Endpoint) -> None:
        self._send(msg, [ep])

    def _broadcast(self, msg: Message) -> None:
        self._send(msg, list(self.endpoints.values()))

    def _to_registered(self, msg: Message, satype: int, also: Endpoint | None = None) -> None:
        targets = [e for e in self.endpoints.values() if satype in e.registered]
        if also is not None:
            targets.insert(0, also)
        self._send(msg, targets)

    # -- requests -----------------------------------------------------------------------------

    def handle(self, ep: Endpoint, data: bytes) -> None:
        """Process one request from ``ep``; replies and broadcasts are queued on the endpoints."""
        self.tick()
        for other in list(self.endpoints.values()):
            if other.promisc and other.id != ep.id:
                other.deliver(bytes(data))
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
        handler = {
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
        }.get(msg.type)
        if handler is None:
            raise KernelRefusal(E.EOPNOTSUPP, f"message type {msg.type} is not a request")
        handler(ep, msg)

    # -- SAD ----------------------------------------------------------------------------------

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

    def _getspi(self, ep: Endpoint, msg: Message) -> None:
        satype = self._ipsec_satype(msg)
        src, dst = self._addresses(msg)
        rng = msg.get(ExtType.SPIRANGE)
        lo, hi = SPI_MIN_DEFAULT, SPI_MAX_DEFAULT
        if isinstance(rng, SpiRange):
            lo, hi = rng.min, rng.max
        if lo > hi or hi == 0:
            raise KernelRefusal(E.EINVAL, f"empty SPI range {lo:#x}-{hi:#x}")
        spi = self._allocate_spi(satype, dst.addr, max(lo, 1), hi)
        sa2 = msg.sa2
        now = self.now()
        entry = SAEntry(
            satype,
            spi,
            _host(src),
            _host(dst),
            state=SaState.LARVAL,
            mode=sa2.mode if sa2 else Mode.ANY,
            reqid=sa2.reqid if sa2 else 0,
            addtime=now,
            seq=msg.seq,
            pid=msg.pid,
            hard=Lifetime(ExtType.LIFETIME_HARD, addtime=LARVAL_LIFETIME),
            extras=[x for t, x in msg.extensions.items() if t in _NATT_EXTS],
        )
        self.sad[entry.key] = entry
        reply = msg.reply().add(SA(spi=spi)).add(entry.src).add(entry.dst)
        self._unicast(reply, ep)

    def _allocate_spi(self, satype: int, dst: IPAddress, lo: int, hi: int) -> int:
        span = hi - lo + 1
        for _ in range(64):
            spi = lo + secrets.randbelow(span)
            if (satype, dst, spi) not in self.sad:
                return spi
        if span <= 1 << 16:
            for spi in range(lo, hi + 1):
                if (satype, dst, spi) not in self.sad:
                    return spi
        raise KernelRefusal(E.EEXIST, f"no free SPI in {lo:#x}-{hi:#x}")

    def _check_algorithms(self, satype: int, sa: SA, msg: Message) -> None:
        """Refuse algorithms and key lengths the REGISTER reply does not allow (EINVAL)."""
        ekey, akey = msg.key(ExtType.KEY_ENCRYPT), msg.key(ExtType.KEY_AUTH)
        if satype == SaType.IPCOMP:
            if sa.encrypt not in {a.id for a in SUPPORTED_COMP}:
                raise KernelRefusal(E.EINVAL, f"unknown compression algorithm {sa.encrypt}")
            if ekey or akey:
                raise KernelRefusal(E.EINVAL, "IPComp takes no keys")
            return
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
            _check_key(SUPPORTED_AUTH, sa.auth, akey, "authentication")
        elif akey:
            raise KernelRefusal(E.EINVAL, "authentication key given without an algorithm")

    def _fill(self, entry: SAEntry, sa: SA, msg: Message) -> None:
        entry.replay = sa.replay
        entry.auth = sa.auth
        entry.encrypt = sa.encrypt
        entry.flags = sa.flags
        entry.key_auth = msg.key(ExtType.KEY_AUTH)
        entry.key_encrypt = msg.key(ExtType.KEY_ENCRYPT)
        entry.hard = msg.lifetime(ExtType.LIFETIME_HARD)
        entry.soft = msg.lifetime(ExtType.LIFETIME_SOFT)
        if msg.sa2 is not None:
            entry.mode, entry.reqid = msg.sa2.mode, msg.sa2.reqid
        entry.extras = [x for t, x in msg.extensions.items() if t in _NATT_EXTS]
        entry.pid = msg.pid
        entry.seq = msg.seq
        entry.state = SaState.MATURE
        entry.soft_expired = False

    def _sa_of(self, msg: Message) -> SA:
        sa = msg.sa
        if sa is None:
            raise KernelRefusal(E.EINVAL, "an SA extension is required")
        return sa

    def _update(self, ep: Endpoint, msg: Message) -> None:
        satype = self._ipsec_satype(msg)
        sa = self._sa_of(msg)
        src, dst = self._addresses(msg)
        entry = self.sad.get((satype, dst.addr, sa.spi))
        if entry is None or entry.src.addr != src.addr:
            raise KernelRefusal(E.ESRCH, f"no SA with SPI {sa.spi:#x} to update")
        self._check_algorithms(satype, sa, msg)
        if entry.state == SaState.LARVAL:
            entry.addtime = self.now()
        self._fill(entry, sa, msg)
        self._broadcast(self._sa_message(msg.reply(), entry, keys=False, current=False))

    def _add(self, ep: Endpoint, msg: Message) -> None:
        satype = self._ipsec_satype(msg)
        sa = self._sa_of(msg)
        src, dst = self._addresses(msg)
        if sa.spi == 0:
            raise KernelRefusal(E.EINVAL, "SPI 0 is reserved")
        if (satype, dst.addr, sa.spi) in self.sad:
            raise KernelRefusal(E.EEXIST, f"an SA with SPI {sa.spi:#x} exists")
        self._check_algorithms(satype, sa, msg)
        entry = SAEntry(satype, sa.spi, _host(src), _host(dst), addtime=self.now())
        self._fill(entry, sa, msg)
        self.sad[entry.key] = entry
        self._broadcast(self._sa_message(msg.reply(), entry, keys=False, current=False))

    def _delete(self, ep: Endpoint, msg: Message) -> None:
        satype = self._ipsec_satype(msg)
        src, dst = self._addresses(msg)
        if msg.sa is None:
            # KAME: DELETE without an SA extension removes every SA between the two addresses.
            doomed = [
                e
                for e in self.sad.values()
                if e.satype == satype and e.src.addr == src.addr and e.dst.addr == dst.addr
            ]
            if not doomed:
                raise KernelRefusal(E.ESRCH, "no SA between these addresses")
            for e in doomed:
                del self.sad[e.key]
            self._broadcast(msg.reply().add(_host(src)).add(_host(dst)))
            return
        entry = self.sad.get((satype, dst.addr, msg.sa.spi))
        if entry is None or entry.src.addr != src.addr:
            raise KernelRefusal(E.ESRCH, f"no SA with SPI {msg.sa.spi:#x}")
        del self.sad[entry.key]
        self._broadcast(msg.reply().add(SA(spi=entry.spi)).add(entry.src).add(entry.dst))

    def _get(self, ep: Endpoint, msg: Message) -> None:
        satype = self._ipsec_satype(msg)
        sa = self._sa_of(msg)
        src, dst = self._addresses(msg)
        entry = self.sad.get((satype, dst.addr, sa.spi))
        if entry is None or entry.src.addr != src.addr:
            raise KernelRefusal(E.ESRCH, f"no SA with SPI {sa.spi:#x}")
        self._unicast(self._sa_message(msg.reply(), entry, keys=True, current=True), ep)

    def _flush(self, ep: Endpoint, msg: Message) -> None:
        if msg.satype == SaType.UNSPEC:
            self.sad.clear()
        else:
            self._ipsec_satype(msg)
            for key in [k for k, e in self.sad.items() if e.satype == msg.satype]:
                del self.sad[key]
        self._broadcast(msg.reply())

    def _dump(self, ep: Endpoint, msg: Message) -> None:
        entries = [e for e in self.sad.values() if msg.satype in (SaType.UNSPEC, e.satype)]
        if not entries:
            raise KernelRefusal(E.ENOENT, "the SAD is empty")
        for left, entry in zip(range(len(entries) - 1, -1, -1), entries, strict=True):
            head = Message(MsgType.DUMP, entry.satype, 0, left, msg.pid)
            self._unicast(self._sa_message(head, entry, keys=True, current=True), ep)

    def _sa_message(self, head: Message, e: SAEntry, *, keys: bool, current: bool) -> Message:
        head.satype = e.satype
        head.add(SA(e.spi, e.replay, e.state, e.auth, e.encrypt, e.flags))
        head.add(SA2(e.mode, 0, e.reqid))
        if current:
            head.add(
                Lifetime(ExtType.LIFETIME_CURRENT, e.allocations, e.bytes, e.addtime, e.usetime)
            )
        if e.hard is not None:
            head.add(e.hard)
        if e.soft is not None:
            head.add(e.soft)
        head.add(e.src).add(e.dst)
        if keys and e.key_auth is not None:
            head.add(e.key_auth)
        if keys and e.key_encrypt is not None:
            head.add(e.key_encrypt)
        for x in e.extras:
            head.add(x)
        return head

    def _register(self, ep: Endpoint, msg: Message) -> None:
        if msg.satype not in (SaType.UNSPEC, SaType.AH, SaType.ESP, SaType.IPCOMP):
            raise KernelRefusal(E.EINVAL, f"cannot register for SA type {msg.satype}")
        if msg.satype != SaType.UNSPEC:
            ep.registered.add(msg.satype)
        reply = msg.reply()
        if msg.satype == SaType.IPCOMP:
            reply.add(Supported(ExtType.SUPPORTED_ENCRYPT, list(SUPPORTED_COMP)))
        else:
            reply.add(Supported(ExtType.SUPPORTED_AUTH, list(SUPPORTED_AUTH)))
            if msg.satype != SaType.AH:
                reply.add(Supported(ExtType.SUPPORTED_ENCRYPT, list(SUPPORTED_ENCRYPT)))
        self._to_registered(reply, msg.satype, also=ep)

    def _promisc(self, ep: Endpoint, msg: Message) -> None:
        ep.promisc = bool(msg.satype)
        self._unicast(msg.reply(), ep)

    def _acquire_reply(self, ep: Endpoint, msg: Message) -> None:
        """A key manager's ACQUIRE with errno set: negotiation for that ACQUIRE failed."""
        if not msg.errno:
            raise KernelRefusal(E.EINVAL, "only the kernel sends ACQUIRE without an errno")
        for key in [k for k, (_, seq) in self._acquires.items() if seq == msg.seq]:
            del self._acquires[key]

    # -- SPD ----------------------------------------------------------------------------------

    def _policy_of(self, msg: Message) -> Policy:
        pol = msg.policy
        if pol is None:
            raise KernelRefusal(E.EINVAL, "an X_POLICY extension is required")
        return pol

    def _spdadd(self, ep: Endpoint, msg: Message) -> None:
        """SPDADD/SPDUPDATE as ``pfkey_spdadd`` takes them."""
        pol = self._policy_of(msg)
        src, dst = self._addresses(msg)
        if pol.policy_type > PolicyType.IPSEC:
            raise KernelRefusal(E.EINVAL, f"policy type {pol.policy_type} is not one Linux keeps")
        if pol.dir not in _XFRM_DIR:
            raise KernelRefusal(E.EINVAL, f"policy direction {pol.dir} is not in, out or fwd")
        if src.proto != dst.proto:
            raise KernelRefusal(E.EINVAL, "source and destination upper-layer protocols differ")
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
        if old is not None:
            entry.id = old.id
            self.spd[self.spd.index(old)] = entry
        else:
            self._policy_gen += 1
            entry.id = (self._policy_gen << 3) | _XFRM_DIR[Direction(pol.dir)]
            self.spd.append(entry)
        self._broadcast(self._sp_message(msg.reply(), entry))

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
        """``pfkey_xfrm_policy2msg``: what SPDGET, SPDDUMP and the SPD broadcasts carry."""
        requests = [t.request() for t in p.requests]
        head.add(Policy(p.policy_type, p.dir, p.id, p.priority, requests))
        head.add(p.src).add(p.dst)
        head.add(Lifetime(ExtType.LIFETIME_CURRENT, 0, 0, p.created, p.lastused))
        if p.hard is not None:
            head.add(p.hard)
        if p.soft is not None:
            head.add(p.soft)
        if p.ctx is not None:
            head.add(p.ctx)
        return head

    def _spddelete(self, ep: Endpoint, msg: Message) -> None:
        pol = self._policy_of(msg)
        src, dst = self._addresses(msg)
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
        pol = self._policy_of(msg)
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
        self.spd.clear()
        self._broadcast(msg.reply())

    def _spddump(self, ep: Endpoint, msg: Message) -> None:
        if not self.spd:
            raise KernelRefusal(E.ENOENT, "the SPD is empty")
        n = len(self.spd)
        for i, p in enumerate(self.spd):
            self._unicast(
                self._sp_message(Message(MsgType.X_SPDDUMP, 0, 0, n - 1 - i, msg.pid), p), ep
            )

    # -- lifetimes ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply every lifetime that has run out by now (soft: dying + EXPIRE; hard: remove)."""
        now = self.now()
        for entry in list(self.sad.values()):
            self._check_expiry(entry, now)
        for p in list(self.spd):
            if p.hard is not None and p.hard.addtime and now - p.created >= p.hard.addtime:
                self.spd.remove(p)
                head = Message(MsgType.X_SPDEXPIRE, 0, 0, 0, 0)
                self._broadcast(self._sp_message(head, p))
        for key, (when, _) in list(self._acquires.items()):
            if now - when >= ACQUIRE_BLOCK:
                del self._acquires[key]

    @staticmethod
    def _limit_hit(limit: Lifetime | None, e: SAEntry, now: int) -> bool:
        if limit is None:
            return False
        if limit.addtime and now - e.addtime >= limit.addtime:
            return True
        if limit.usetime and e.usetime and now - e.usetime >= limit.usetime:
            return True
        if limit.bytes and e.bytes >= limit.bytes:
            return True
        return bool(limit.allocations and e.allocations >= limit.allocations)

    def _check_expiry(self, e: SAEntry, now: int) -> None:
        if e.key not in self.sad:
            return
        if self._limit_hit(e.hard, e, now):
            del self.sad[e.key]
            e.state = SaState.DEAD
            self._expire(e, ExtType.LIFETIME_HARD)
        elif not e.soft_expired and self._limit_hit(e.soft, e, now):
            e.soft_expired = True
            e.state = SaState.DYING
            self._expire(e, ExtType.LIFETIME_SOFT)

    def _expire(self, e: SAEntry, which: ExtType) -> None:
        msg = Message(MsgType.EXPIRE, e.satype, 0, 0, 0)
        msg.add(SA(e.spi, e.replay, e.state, e.auth, e.encrypt, e.flags))
        msg.add(SA2(e.mode, 0, e.reqid))
        msg.add(Lifetime(ExtType.LIFETIME_CURRENT, e.allocations, e.bytes, e.addtime, e.usetime))
        limit = e.hard if which == ExtType.LIFETIME_HARD else e.soft
        assert limit is not None
        msg.add(Lifetime(which, limit.allocations, limit.bytes, limit.addtime, limit.usetime))
        msg.add(e.src).add(e.dst)
        self._to_registered(msg, e.satype)

    # -- the packet path ----------------------------------------------------------------------

    def _lookup_policy(self, direction: int, src, dst, proto, sport, dport) -> SPEntry | None:
        best: SPEntry | None = None
        for p in self.spd:
            if p.dir == direction and p.matches(src, dst, proto, sport, dport):
                if best is None or p.priority < best.priority:
                    best = p
        return best

    def _find_sa(
        self, satype: int, src: IPAddress, dst: IPAddress, req: Template
    ) -> SAEntry | None:
        best: SAEntry | None = None
        for e in self.sad.values():
            if e.satype != satype or e.src.addr != src or e.dst.addr != dst:
                continue
            if e.state not in (SaState.MATURE, SaState.DYING):
                continue
            if e.mode not in (Mode.ANY, req.mode):
                continue
            if req.level == Level.UNIQUE and e.reqid != req.reqid:
                continue
            if req.reqid and e.reqid not in (0, req.reqid):
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

        A policy that wants IPsec but finds no SA sends ACQUIRE to the registered key managers
        (once per ``ACQUIRE_BLOCK`` seconds per policy and peer). With level ``use`` the packet
        leaves in the clear meanwhile -- the seed memo's "the first few packets go out
        unencrypted" -- with ``require`` or ``unique`` it is dropped.
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
        found: list[SAEntry] = []
        missing = []
        for req in policy.requests:
            a, b = (req.src, req.dst) if req.mode == Mode.TUNNEL else (s, d)
            assert a is not None and b is not None  # a tunnel template has both endpoints
            satype = SATYPE_OF_PROTO.get(req.proto)  # type: ignore[call-overload]
            sa = None if satype is None else self._find_sa(satype, a, b, req)
            if sa is None:
                missing.append((req, a, b))
            else:
                found.append(sa)
        if missing:
            acquired = False
            # The first template PF_KEY can name asks for SAs (routing/dstopts have no SA type).
            for req, a, b in missing:
                if req.proto in SATYPE_OF_PROTO:
                    acquired = self._send_acquire(policy, req, a, b)
                    break
            if all(r.optional for r, _, _ in missing):
                verdict, why = Verdict.CLEAR, "no SA yet, level use"
            else:
                verdict, why = Verdict.DROPPED, "no SA yet, level require"
            return PacketResult(verdict, policy.id, acquired=acquired, reason=why)
        now = self.now()
        for sa in found:
            sa.bytes += size
            if not sa.usetime:
                sa.usetime = now
                sa.allocations += 1
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

    def _send_acquire(
        self, policy: SPEntry, req: Template, src: IPAddress, dst: IPAddress
    ) -> bool:
        """``pfkey_send_acquire``: the SA's addresses (full prefix, protocol 0), the policy as
        a bare X_POLICY header (type ipsec, dir out, its id and priority, no requests) and the
        proposal."""
        key = (policy.id, src, dst)
        if key in self._acquires:
            return False
        self._acquire_seq += 1
        self._acquires[key] = (self.now(), self._acquire_seq)
        satype = SATYPE_OF_PROTO[req.proto]  # type: ignore[index]
        msg = Message(MsgType.ACQUIRE, satype, 0, self._acquire_seq, 0)
        msg.add(Address(ExtType.ADDRESS_SRC, src, 0, None, 0))
        msg.add(Address(ExtType.ADDRESS_DST, dst, 0, None, 0))
        msg.add(Policy(PolicyType.IPSEC, Direction.OUTBOUND, policy.id, policy.priority, []))
        msg.add(Proposal(0, _combs(satype)))
        self._to_registered(msg, satype)
        return True


_NATT_EXTS = {
    ExtType.X_NAT_T_TYPE,
    ExtType.X_NAT_T_SPORT,
    ExtType.X_NAT_T_DPORT,
    ExtType.X_NAT_T_OA,
    ExtType.X_SEC_CTX,
}


def _host(a: Address) -> Address:
    """An SA address as the SAD stores it: the full host prefix and any protocol."""
    return Address(a.ext_type, a.addr, a.port, a.addr.max_prefixlen, ULPROTO_ANY, 0, a.scope_id)


def _seq_pid(data: bytes) -> tuple[int, int]:
    return struct.unpack_from("=II", data, 8)


def _check_key(table: tuple[Alg, ...], alg_id: int, key: Key | None, what: str) -> None:
    alg = next((a for a in table if a.id == alg_id), None)
    if alg is None:
        raise KernelRefusal(E.EINVAL, f"unsupported {what} algorithm {alg_id}")
    bits = key.bits if key is not None else 0
    if not alg.minbits <= bits <= alg.maxbits:
        raise KernelRefusal(
            E.EINVAL, f"{what} key of {bits} bits outside {alg.minbits}-{alg.maxbits}"
        )
    sizes = _FIXED_KEY_SIZES.get(alg_id) if what == "encryption" else None
    if sizes and bits not in sizes:
        raise KernelRefusal(E.EINVAL, f"{what} key of {bits} bits is not one of {sizes}")


def _combs(satype: int) -> list[Comb]:
    """The proposal an ACQUIRE carries: every combination this kernel supports."""
    if satype == SaType.IPCOMP:
        return [Comb(encrypt=a.id) for a in SUPPORTED_COMP]
    auths = [a for a in SUPPORTED_AUTH if a.id not in (AuthAlg.NULL, AuthAlg.TCP_MD5)]
    if satype == SaType.AH:
        return [Comb(auth=a.id, auth_minbits=a.minbits, auth_maxbits=a.maxbits) for a in auths]
    return [
        Comb(
            auth=a.id,
            encrypt=e.id,
            auth_minbits=a.minbits,
            auth_maxbits=a.maxbits,
            encrypt_minbits=e.minbits,
            encrypt_maxbits=e.maxbits,
            hard_addtime=28800,
            soft_addtime=28800 * 8 // 10,
        )
        for e in SUPPORTED_ENCRYPT
        for a in auths
    ]


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
