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

Where it lives
--------------
This module holds ``InMemoryKernel``'s PF_KEY request handlers and ``MemoryKernelSocket``; its
base ``memory_state.KernelState`` holds the SAD, the SPD and the sockets, delivers messages,
applies lifetimes and runs the packet path; ``memory_tables`` holds the entry types and the
constant tables. The names other modules import from here stay importable from here.
"""

from __future__ import annotations

import errno as E
import secrets
import struct
from collections.abc import Callable

from .base import KernelSocket, decode_from_kernel
from .memory_state import KernelState
from .memory_tables import (
    ACQUIRE_REPLAY,
    KAME_AUTH,
    LARVAL_LIFETIME,
    REPLAY_MAX,
    REQID_MAX,
    SA_FLAGS_KEPT,
    SATYPE_MAX,
    SPI_MAX_DEFAULT,
    SPI_MIN_DEFAULT,
    SUPPORTED_AUTH,
    SUPPORTED_COMP,
    SUPPORTED_ENCRYPT,
    TEMPLATE_PROTOS,
    XFRM_POLICY_MAX,
    Deliver,
    Endpoint,
    KernelRefusal,
    PacketResult,
    SAEntry,
    Selector,
    SPEntry,
    Template,
    Verdict,
    check_key,
)
from .pfkey import (
    SA,
    SA2,
    Address,
    IPAddress,
    IpsecRequest,
    Lifetime,
    Message,
    PfkeyDecodeError,
    Policy,
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
    Level,
    Mode,
    MsgType,
    PolicyType,
    SaState,
    SaType,
)

__all__ = [
    "InMemoryKernel",
    "MemoryKernelSocket",
    # Moved to memory_tables; importable from here still (kernel/xfrm.py takes ACQUIRE_REPLAY).
    "ACQUIRE_REPLAY",
    "LARVAL_LIFETIME",
    "REQID_MAX",
    "Endpoint",
    "PacketResult",
    "Verdict",
]

_XFRM_DIR = {Direction.INBOUND: 0, Direction.OUTBOUND: 1, Direction.FWD: 2}


class InMemoryKernel(KernelState):
    """A PF_KEY kernel in memory. See the module docstring for its rules."""

    def open(self) -> MemoryKernelSocket:
        """A ``KernelSocket`` connected to this kernel in the same process."""
        return MemoryKernelSocket(self)

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
            check_key(SUPPORTED_ENCRYPT, sa.encrypt, ekey, "encryption")
        if sa.auth != AuthAlg.NONE:
            check_key(SUPPORTED_AUTH, sa.auth, akey, "authentication", ranges=sa.auth in KAME_AUTH)
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


def _seq_pid(data: bytes) -> tuple[int, int]:
    return struct.unpack_from("=II", data, 8)


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
