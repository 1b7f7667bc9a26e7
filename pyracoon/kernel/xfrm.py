"""The Linux XFRM backend: the kernel vocabulary, and PF_KEY messages, over XFRM netlink.

Linux's native key-management interface is XFRM over netlink (``xfrm_user``), which every Linux
has, while ``af_key`` is an optional, deprecated module many distributions leave out.
``XfrmSocket`` is a codec of the kernel vocabulary (:mod:`.ops`) of its own: ``submit``,
``recv_event`` and ``call`` turn requests into XFRM netlink messages and XFRM's answers and
announcements into events directly, with no PF_KEY message on the way. ``pysetkey`` speaks
PF_KEY, so ``send``/``recv`` keep the PF_KEY conversation and translate it, the way Linux's own
``af_key`` does inside the kernel. Both paths build their structures with the same builders,
which take neutral values (``sa_info``, ``sa_algorithms``, ``selector``, ``policy_info``), and
read the kernel's with the same readers (``state_algorithms``, ``policy_parts``, the
lifetimes), so the engine cannot tell them apart (``tests/kernel/test_xfrm_ops.py``):

========================  ==========================  =========================================
PF_KEY                    vocabulary                  XFRM netlink
========================  ==========================  =========================================
GETSPI (SPIRANGE)         GetSpi                      ALLOCSPI (``xfrm_userspi_info``)
ADD / UPDATE              InstallSa                   NEWSA / UPDSA (``xfrm_usersa_info`` + algs)
DELETE / GET              DeleteSa                    DELSA / GETSA (``xfrm_usersa_id``)
FLUSH, DUMP               FlushSa, DumpSa             FLUSHSA, GETSA with ``NLM_F_DUMP``
X_SPDADD / X_SPDUPDATE    UpdatePolicy                NEWPOLICY / UPDPOLICY (+ templates)
X_SPDDELETE(2) / SPDGET   DeletePolicy                DELPOLICY / GETPOLICY (``xfrm_userpolicy_id``)
X_SPDFLUSH, X_SPDDUMP     DumpPolicy                  FLUSHPOLICY, GETPOLICY with ``NLM_F_DUMP``
ACQUIRE, EXPIRE           Acquire, SaEvent            the ACQUIRE and EXPIRE multicast groups
X_SPDEXPIRE               PolicyEvent (expire)        POLEXPIRE (hard)
ADD/DELETE/... by others  SaEvent, PolicyEvent        the SA and POLICY multicast groups
REGISTER                  Register                    none: answered from the one algorithm table
ACQUIRE with errno        AcquireFailed               none: the larval SA expires by itself
========================  ==========================  =========================================

The rules are af_key's (``net/key/af_key.c``), so one SPD file means the same on both backends:
an SA's selector is left open with only its family set; lifetimes of 0 are "no limit"
(``XFRM_INF``); a policy's ``use`` level is an optional template, ``unique`` keeps (or is given,
from 0x4000 up) its reqid and ``require``/``default`` have none; the SPD id is the kernel's policy
index, whose low three bits are the direction; per-socket policies dump with direction 4-6.
Algorithms are named by the one table's ``xfrm_name`` column.

Replies keep PF_KEY's shape on both paths: the request's seq (and type and pid), errno set on
failure, one reply per entry for a dump with ``seq`` counting down to 0 on the last (an event
with ``last``; ENOENT when empty). What the kernel multicasts about our own requests is dropped,
since the reply already told the caller; what other processes cause (``ip xfrm``, another
daemon) arrives as PF_KEY broadcasts or as events that are not ``ours``.

The parts: :mod:`.xfrm_structs` holds the ``linux/xfrm.h`` structures, the neutral builders
and readers and the algorithm table's XFRM column; :mod:`.xfrm_pfkey` the PF_KEY path's
translation; :mod:`.xfrm_ops` XFRM to and from the vocabulary; this module the socket.
"""

from __future__ import annotations

import errno as errno_mod
import os
import select
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from . import netlink as nl
from . import ops
from .base import KernelError, KernelSocket, KernelUnavailable
from .pfkey import (
    Message,
    SpiRange,
)
from .sadb import (
    MANUAL_REQID_MAX,
    ExtType,
    Mode,
    MsgType,
    SaState,
    SaType,
)
from .xfrm_ops import (
    install_request,
    kernel_sa,
    no_policy,
    ops_selector,
    policy_event,
    refusal_event,
    sa_event,
    update_policy_request,
    vocabulary_event,
)
from .xfrm_pfkey import (
    event_message,
    mode_of_pfkey,
    msg_endpoints,
    msg_proto,
    policy_message,
    policy_request,
    register_reply,
    sa_request,
    selector_of,
    state_message,
    without_keys,
    xfrm_dir_of,
)
from .xfrm_structs import (
    IPSEC_PROTO_ANY,
    PROTO_OF_SATYPE_NUMBER,
    USERPOLICY_INFO,
    USERSA_FLUSH,
    USERSA_INFO,
    USERSPI_INFO,
    XFRM_DIR,
    XFRM_MSG_ALLOCSPI,
    XFRM_MSG_DELPOLICY,
    XFRM_MSG_DELSA,
    XFRM_MSG_FLUSHPOLICY,
    XFRM_MSG_FLUSHSA,
    XFRM_MSG_GETPOLICY,
    XFRM_MSG_GETSA,
    XFRM_MSG_NEWPOLICY,
    XFRM_MSG_NEWSA,
    XFRM_MSG_UPDPOLICY,
    XFRM_MSG_UPDSA,
    XFRM_POLICY_FWD,
    XFRMA_PROTO,
    XFRMA_TMPL,
    XFRMNLGRP_ACQUIRE,
    XFRMNLGRP_EXPIRE,
    XFRMNLGRP_POLICY,
    XFRMNLGRP_SA,
    Refusal,
    Selector,
    UserpolicyInfo,
    UsersaInfo,
    UserTmpl,
    XfrmDecodeError,
    missing_module_hint,
    pack_userpolicy_id,
    policy_parts,
    sa_id,
    sa_info,
    sadb_enum,
    spi_range,
)

# ---------------------------------------------------------------------------------------------
# the socket


class XfrmSocket(KernelSocket):
    """A ``KernelSocket`` backed by Linux XFRM netlink, with two front doors.

    The vocabulary (``submit``, ``recv_event``, ``call``) goes to XFRM netlink and back
    directly; the PF_KEY conversation (``send``, ``recv``, ``request``, ``dump``: pysetkey's)
    is translated as af_key would. Both build their netlink messages with the same builders
    and read the kernel's with the same readers, so the engine cannot tell the paths apart
    (``tests/kernel/test_xfrm_ops.py`` holds them to it, request by request and event by event).

    Two netlink sockets: one for requests, which only ever carries answers to them, and one
    subscribed to the multicast groups (once someone listens: REGISTER, X_PROMISC, ``fileno``
    or ``recv``), so that a 10 000-entry ``pysetkey -f`` never has to read events it ignores.
    Requests are answered synchronously inside ``send``/``submit``; the answers wait in a
    queue (PF_KEY messages and events in one each), and ``fileno`` is an epoll descriptor that
    is readable when a queue holds something or an event arrived, so an event loop sees both.
    """

    backend = "xfrm"

    def __init__(self, notice: Callable[[str], None] | None = None) -> None:
        super().__init__()
        if notice is not None:
            self.notice = notice
        try:
            self.nl = nl.NetlinkSocket(nl.NETLINK_XFRM)
        except OSError as e:
            if e.errno in (errno_mod.EPROTONOSUPPORT, errno_mod.EAFNOSUPPORT):
                raise KernelUnavailable(
                    "this kernel has no XFRM netlink interface: modprobe xfrm_user "
                    "(or use '--kernel pfkey' where AF_KEY exists)"
                ) from e
            if e.errno in (errno_mod.EPERM, errno_mod.EACCES):
                raise KernelUnavailable(
                    "XFRM netlink needs root (or CAP_NET_ADMIN): run as root"
                ) from e
            raise KernelUnavailable(f"cannot open an XFRM netlink socket: {e.strerror}") from e
        self.events = nl.NetlinkSocket(nl.NETLINK_XFRM)
        self._joined = False
        self._registered: set[ops.Proto] = set()
        self._promisc = False
        self._queue: deque[Message] = deque()
        self._events: deque[ops.Event] = deque()
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        self._signalled = False
        self._epoll: select.epoll | None = None
        self._next_reqid = 0
        self._hinted: set[str] = set()
        self._lost_events = False

    # -- plumbing -----------------------------------------------------------------------------

    def _join(self) -> None:
        if not self._joined:
            for g in (XFRMNLGRP_ACQUIRE, XFRMNLGRP_EXPIRE, XFRMNLGRP_SA, XFRMNLGRP_POLICY):
                self.events.join(g)
            self._joined = True

    def _signal(self) -> None:
        if not self._signalled:
            os.write(self._pipe_w, b"!")
            self._signalled = True

    def _settle(self) -> None:
        """Drain the pipe once both queues are empty, so epoll stops saying readable."""
        if not self._queue and not self._events and self._signalled:
            try:
                os.read(self._pipe_r, 64)
            except BlockingIOError:
                pass
            self._signalled = False

    def _put(self, msg: Message) -> None:
        self._queue.append(msg)
        self._signal()

    def _put_event(self, event: ops.Event) -> None:
        self._events.append(event)
        self._signal()

    def _take(self) -> Message:
        msg = self._queue.popleft()
        self._settle()
        return msg

    def _take_event(self) -> ops.Event:
        event = self._events.popleft()
        self._settle()
        return event

    def fileno(self) -> int:
        self._join()
        if self._epoll is None:
            self._epoll = select.epoll()
            self._epoll.register(self.events.fileno(), select.EPOLLIN)
            self._epoll.register(self._pipe_r, select.EPOLLIN)
        return self._epoll.fileno()

    def close(self) -> None:
        for closer in (self.nl.close, self.events.close):
            closer()
        if self._epoll is not None:
            self._epoll.close()
        for fd in (self._pipe_r, self._pipe_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _transact(self, mtype: int, payload: bytes, flags: int = 0) -> list[nl.NlMsg]:
        try:
            return self.nl.transact(mtype, payload, flags=flags)
        except TimeoutError as e:
            raise KernelError(f"the kernel did not answer XFRM message type {mtype}") from e
        except OSError as e:
            if e.errno is None:
                raise KernelError(f"XFRM netlink failed: {e}") from e
            raise

    def _hint(self, text: str) -> None:
        if text not in self._hinted:
            self._hinted.add(text)
            self.notice(text)

    # -- the netlink side of each request, shared by both front doors -------------------------

    def _sa_failed(
        self, e: OSError, proto: int, family: int, attrs: list[tuple[int, bytes]]
    ) -> None:
        if e.errno in (errno_mod.EPROTONOSUPPORT, errno_mod.ENOSYS):
            self._hint(missing_module_hint(proto, family, e.errno, attrs))

    def _allocspi(self, info: UsersaInfo, lo: int, hi: int) -> tuple[UsersaInfo, nl.Attributes]:
        """ALLOCSPI, with the request's seq (so the larval SA of an ACQUIRE gets the SPI)."""
        try:
            answer = self._transact(XFRM_MSG_ALLOCSPI, USERSPI_INFO.pack(info.pack(), lo, hi))
        except OSError as e:
            self._sa_failed(e, info.proto, info.family, [])
            raise
        if not answer:
            raise Refusal(errno_mod.EIO, "ALLOCSPI answered nothing")
        p = answer[0].payload
        return UsersaInfo.unpack(p), nl.parse_attrs(p, USERSA_INFO.size)

    def _newsa(self, update: bool, info: UsersaInfo, extra: list[tuple[int, bytes]]) -> None:
        mtype = XFRM_MSG_UPDSA if update else XFRM_MSG_NEWSA
        try:
            self._transact(mtype, info.pack() + nl.attrs(extra), nl.NLM_F_ACK)
        except OSError as e:
            self._sa_failed(e, info.proto, info.family, extra)
            raise

    def _flushsa(self, proto: int) -> None:
        try:
            self._transact(XFRM_MSG_FLUSHSA, USERSA_FLUSH.pack(proto), nl.NLM_F_ACK)
        except OSError as e:
            if e.errno != errno_mod.ESRCH:  # older kernels: "nothing to flush"
                raise

    def _states(self, proto: int | None) -> list[tuple[UsersaInfo, nl.Attributes]]:
        """Every SA (of ``proto``), by a GETSA dump."""
        payload = b"" if proto is None else nl.attr(XFRMA_PROTO, bytes([proto]))
        out = []
        for m in self._transact(XFRM_MSG_GETSA, payload, nl.NLM_F_DUMP):
            if m.type == XFRM_MSG_NEWSA:
                out.append(
                    (UsersaInfo.unpack(m.payload), nl.parse_attrs(m.payload, USERSA_INFO.size))
                )
        return out

    def _new_reqid(self) -> int:
        """af_key's ``gen_reqid``: a reqid above the manual range nobody's policy uses."""
        if not self._next_reqid:
            used = {0}
            for m in self._transact(XFRM_MSG_GETPOLICY, b"", nl.NLM_F_DUMP):
                raw = nl.parse_attrs(m.payload, USERPOLICY_INFO.size).get(XFRMA_TMPL)
                used.update(t.reqid for t in UserTmpl.unpack_all(raw or b""))
            self._next_reqid = max(max(used) + 1, MANUAL_REQID_MAX + 1)
        reqid = self._next_reqid
        self._next_reqid = reqid + 1 if reqid < 0xFFFFFFFF else MANUAL_REQID_MAX + 1
        return reqid

    def _policy_by(
        self, sel: Selector, index: int, direction: int
    ) -> tuple[UserpolicyInfo, nl.Attributes]:
        answer = self._transact(XFRM_MSG_GETPOLICY, pack_userpolicy_id(sel, index, direction))
        if not answer:
            raise Refusal(errno_mod.ENOENT, "no such policy")
        p = answer[0].payload
        return UserpolicyInfo.unpack(p), nl.parse_attrs(p, USERPOLICY_INFO.size)

    def _newpolicy(
        self, update: bool, info: UserpolicyInfo, extra: list[tuple[int, bytes]]
    ) -> tuple[UserpolicyInfo, nl.Attributes] | None:
        """NEWPOLICY/UPDPOLICY, then the policy as the kernel keeps it (None if it cannot be
        read back): the acknowledgement carries no index, and the index is the SPD id."""
        mtype = XFRM_MSG_UPDPOLICY if update else XFRM_MSG_NEWPOLICY
        self._transact(mtype, info.pack() + nl.attrs(extra), nl.NLM_F_ACK)
        try:
            return self._policy_by(info.sel, 0, info.dir)
        except (OSError, Refusal):
            return None

    def _delpolicy(
        self, sel: Selector, index: int, direction: int
    ) -> tuple[UserpolicyInfo, nl.Attributes]:
        """The policy (by selector and direction, or by index), then DELPOLICY."""
        got = self._policy_by(sel, index, direction)
        self._transact(XFRM_MSG_DELPOLICY, pack_userpolicy_id(sel, index, direction), nl.NLM_F_ACK)
        return got

    def _policies(self) -> list[tuple[UserpolicyInfo, nl.Attributes]]:
        """Every policy PF_KEY and the vocabulary can show (no sub-policies), by a dump."""
        out = []
        for m in self._transact(XFRM_MSG_GETPOLICY, b"", nl.NLM_F_DUMP):
            if m.type != XFRM_MSG_NEWPOLICY:
                continue
            info = UserpolicyInfo.unpack(m.payload)
            a = nl.parse_attrs(m.payload, USERPOLICY_INFO.size)
            if policy_parts(info, a) is not None:
                out.append((info, a))
        return out

    # -- send: one PF_KEY request --------------------------------------------------------------

    def send(self, msg: Message) -> None:
        handlers: dict[MsgType, Callable[[Message], None]] = {
            MsgType.GETSPI: self._getspi,
            MsgType.UPDATE: self._add,
            MsgType.ADD: self._add,
            MsgType.DELETE: self._delete,
            MsgType.GET: self._get,
            MsgType.FLUSH: self._flush,
            MsgType.DUMP: self._dump,
            MsgType.REGISTER: self._register,
            MsgType.X_PROMISC: self._promisc_on,
            MsgType.X_SPDADD: self._spdadd,
            MsgType.X_SPDUPDATE: self._spdadd,
            MsgType.X_SPDDELETE: self._spddelete,
            MsgType.X_SPDDELETE2: self._spdget,
            MsgType.X_SPDGET: self._spdget,
            MsgType.X_SPDFLUSH: self._spdflush,
            MsgType.X_SPDDUMP: self._spddump,
        }
        known = sadb_enum(MsgType, msg.type)
        handler = None if known is None else handlers.get(known)
        if msg.type == MsgType.ACQUIRE and msg.errno:
            # A key manager saying "negotiation failed": af_key marks the larval SA, XFRM has
            # no message for it; the larval SA times out by itself.
            return
        if handler is None:
            self._put(msg.reply(errno_mod.EOPNOTSUPP))
            return
        try:
            handler(msg)
        except Refusal as r:
            self._put(msg.reply(r.errno))
        except OSError as e:
            self._put(msg.reply(e.errno or errno_mod.EIO))

    def _getspi(self, msg: Message) -> None:
        proto = msg_proto(msg)
        src, dst = msg_endpoints(msg)
        rng = msg.get(ExtType.SPIRANGE)
        sa2 = msg.sa2
        info = sa_info(
            proto,
            src.addr,
            dst.addr,
            seq=msg.seq,
            reqid=sa2.reqid if sa2 else 0,
            mode=mode_of_pfkey(sa2.mode if sa2 else Mode.ANY),
        )
        lo, hi = spi_range(proto, (rng.min, rng.max) if isinstance(rng, SpiRange) else None)
        state, a = self._allocspi(info, lo, hi)
        reply = state_message(
            MsgType.GETSPI, state, a, keys=False, seq=msg.seq, pid=msg.pid, state=SaState.LARVAL
        )
        if reply is None:
            raise Refusal(errno_mod.EIO, "ALLOCSPI answered with no IPsec SA")
        self._put(reply)

    def _add(self, msg: Message) -> None:
        info, extra = sa_request(msg)
        self._newsa(msg.type == MsgType.UPDATE, info, extra)
        self._put(without_keys(msg))

    def _sa_named(self, msg: Message) -> bytes:
        """DELETE's and GET's SA: by destination, SPI and protocol (and source, which the
        kernel does not compare)."""
        proto = msg_proto(msg)
        src, dst = msg_endpoints(msg)
        if msg.sa is None:
            raise Refusal(errno_mod.EINVAL, "an SA extension is required")
        return sa_id(src.addr, dst.addr, msg.sa.spi, proto)

    def _delete(self, msg: Message) -> None:
        self._transact(XFRM_MSG_DELSA, self._sa_named(msg), nl.NLM_F_ACK)
        self._put(without_keys(msg))

    def _get(self, msg: Message) -> None:
        answer = self._transact(XFRM_MSG_GETSA, self._sa_named(msg))
        if not answer:
            raise Refusal(errno_mod.ESRCH, "no such SA")
        p = answer[0].payload
        reply = state_message(
            MsgType.GET,
            UsersaInfo.unpack(p),
            nl.parse_attrs(p, USERSA_INFO.size),
            keys=True,
            seq=msg.seq,
            pid=msg.pid,
        )
        if reply is None:
            raise Refusal(errno_mod.ESRCH, "not an IPsec SA")
        self._put(reply)

    def _flush(self, msg: Message) -> None:
        self._flushsa(IPSEC_PROTO_ANY if msg.satype == SaType.UNSPEC else msg_proto(msg))
        self._put(msg.reply())

    def _emit_dump(self, msg: Message, entries: list[Message]) -> None:
        if not entries:
            self._put(msg.reply(errno_mod.ENOENT))
            return
        n = len(entries)
        for i, m in enumerate(entries):
            m.type, m.seq, m.pid = msg.type, n - 1 - i, msg.pid
            self._put(m)

    def _dump(self, msg: Message) -> None:
        proto = None if msg.satype == SaType.UNSPEC else msg_proto(msg)
        out = []
        for info, a in self._states(proto):
            entry = state_message(MsgType.DUMP, info, a, keys=True)
            if entry is not None and (msg.satype == SaType.UNSPEC or entry.satype == msg.satype):
                out.append(entry)
        self._emit_dump(msg, out)

    def _register(self, msg: Message) -> None:
        if msg.satype not in (SaType.UNSPEC, SaType.AH, SaType.ESP, SaType.IPCOMP):
            raise Refusal(errno_mod.EINVAL, f"cannot register for SA type {msg.satype}")
        proto = PROTO_OF_SATYPE_NUMBER.get(msg.satype)
        if proto is not None:
            self._registered.add(proto)
            self._join()
        self._put(register_reply(msg))

    def _promisc_on(self, msg: Message) -> None:
        self._promisc = bool(msg.satype)
        self._join()
        self._put(msg.reply())

    def _pfkey_policy(self, msg: Message, got: tuple[UserpolicyInfo, nl.Attributes]) -> None:
        reply = policy_message(msg.type, *got, seq=msg.seq, pid=msg.pid)
        self._put(reply if reply is not None else msg.reply())

    def _spdadd(self, msg: Message) -> None:
        info, extra = policy_request(msg, self._new_reqid)
        got = self._newpolicy(msg.type == MsgType.X_SPDUPDATE, info, extra)
        if got is None:
            self._put(msg.reply())
        else:
            self._pfkey_policy(msg, got)

    def _spddelete(self, msg: Message) -> None:
        pol = msg.policy
        if pol is None:
            raise Refusal(errno_mod.EINVAL, "an X_POLICY extension is required")
        self._pfkey_policy(msg, self._delpolicy(selector_of(msg), 0, xfrm_dir_of(pol)))

    def _spdget(self, msg: Message) -> None:
        """X_SPDGET, and X_SPDDELETE2 (the same lookup by id, then the delete)."""
        pol = msg.policy
        if pol is None or not pol.id:
            raise Refusal(errno_mod.EINVAL, "an X_POLICY extension with an id is required")
        direction = pol.id & 7
        if direction > XFRM_POLICY_FWD:
            raise Refusal(errno_mod.EINVAL, "per-socket policies are not in the SPD")
        if msg.type == MsgType.X_SPDDELETE2:
            got = self._delpolicy(Selector(), pol.id, direction)
        else:
            got = self._policy_by(Selector(), pol.id, direction)
        self._pfkey_policy(msg, got)

    def _spdflush(self, msg: Message) -> None:
        self._transact(XFRM_MSG_FLUSHPOLICY, b"", nl.NLM_F_ACK)
        self._put(msg.reply())

    def _spddump(self, msg: Message) -> None:
        out = []
        for info, a in self._policies():
            entry = policy_message(MsgType.X_SPDDUMP, info, a)
            if entry is not None:
                out.append(entry)
        self._emit_dump(msg, out)

    # -- the vocabulary: one request straight to XFRM ------------------------------------------

    def submit(self, request: ops.Request) -> None:
        """Carry out ``request`` on XFRM netlink; its answers come from ``recv_event``."""
        for _, event in self._answer(request):
            self._put_event(event)

    def call(self, request: ops.Request, timeout: float = 1.0) -> ops.Event:
        """``submit`` and return the answer to ``request``: as ``KernelSocket.call`` matches the
        PF_KEY reply by its seq, the answer is the first whose seq is the request's; the rest
        (a dump's other entries) wait for ``recv_event``. XFRM answers at once, so a request
        without answer (AcquireFailed) is a ``KernelError`` at once, not after ``timeout``."""
        if not request.seq:
            request = replace(request, seq=self.next_seq())
        answers = self._answer(request)
        found = next((i for i, (seq, _) in enumerate(answers) if seq == request.seq), None)
        for i, (_, event) in enumerate(answers):
            if i != found:
                self._put_event(event)
        if found is None:
            raise KernelError(
                f"the kernel did not answer {type(request).__name__} within {timeout:g} s"
            )
        return answers[found][1]

    def _answer(self, req: ops.Request) -> list[tuple[int, ops.Event]]:
        """The events answering ``req``, each with the seq its PF_KEY reply would carry (a
        dump's entries count down to 0), errno set when the kernel refused."""
        try:
            return self._carry_out(req)
        except Refusal as r:
            err = r.errno
        except OSError as e:
            err = e.errno or errno_mod.EIO
        return [(req.seq, refusal_event(req, err))]

    def _carry_out(self, req: ops.Request) -> list[tuple[int, ops.Event]]:
        seq = req.seq
        if isinstance(req, ops.GetSpi):
            proto = req.proto.ip_number
            info = sa_info(proto, req.src, req.dst, seq=seq, reqid=req.reqid, mode=req.mode)
            state, a = self._allocspi(info, *spi_range(proto, req.spi_range))
            got = sa_event(ops.SaChange.GETSPI, state, a, seq, True, ops.SaState.LARVAL)
            if got is None:
                raise Refusal(errno_mod.EIO, "ALLOCSPI answered with no IPsec SA")
            return [(seq, got)]
        if isinstance(req, ops.InstallSa):
            info, extra = install_request(req)
            self._newsa(req.update, info, extra)
            change = ops.SaChange.UPDATE if req.update else ops.SaChange.ADD
            # the reply echoes the request, as the PF_KEY path's does (its SA extension's
            # state field is 0: larval)
            sa = ops.KernelSa(req.sa, ops.SaState.LARVAL, req.mode, req.reqid)
            return [(seq, ops.SaEvent(change, seq, True, req.sa.proto, sa))]
        if isinstance(req, ops.DeleteSa):
            s = req.sa
            self._transact(
                XFRM_MSG_DELSA, sa_id(s.src, s.dst, s.spi, s.proto.ip_number), nl.NLM_F_ACK
            )
            sa = ops.KernelSa(s, ops.SaState.LARVAL)
            return [(seq, ops.SaEvent(ops.SaChange.DELETE, seq, True, s.proto, sa))]
        if isinstance(req, ops.FlushSa):
            self._flushsa(IPSEC_PROTO_ANY if req.proto is None else req.proto.ip_number)
            return [(seq, ops.SaEvent(ops.SaChange.FLUSH, seq, True, req.proto))]
        if isinstance(req, ops.DumpSa):
            sas = [k for st, a in self._states(None) if (k := kernel_sa(st, a)) is not None]
            if not sas:
                return [
                    (seq, ops.SaEvent(ops.SaChange.DUMP, seq, True, None, None, errno_mod.ENOENT))
                ]
            n = len(sas)
            return [
                (
                    n - 1 - i,
                    ops.SaEvent(ops.SaChange.DUMP, n - 1 - i, True, sa.id.proto, sa, 0, i == n - 1),
                )
                for i, sa in enumerate(sas)
            ]
        if isinstance(req, ops.Register):
            self._registered.add(req.proto)
            self._join()
            return [(seq, ops.SaEvent(ops.SaChange.REGISTER, seq, True, req.proto))]
        if isinstance(req, ops.AcquireFailed):
            # "negotiation failed": XFRM has no message for it; the larval SA times out
            return []
        return self._carry_out_policy(req)

    def _carry_out_policy(
        self, req: ops.UpdatePolicy | ops.DeletePolicy | ops.DumpPolicy
    ) -> list[tuple[int, ops.Event]]:
        seq = req.seq
        if isinstance(req, ops.UpdatePolicy):
            pinfo, pextra = update_policy_request(req, self._new_reqid)
            got = self._newpolicy(True, pinfo, pextra)
            change = ops.PolicyChange.UPDATE
            event = (
                None if got is None else policy_event(change, MsgType.X_SPDUPDATE, *got, seq, True)
            )
            return [(seq, event if event is not None else no_policy(MsgType.X_SPDUPDATE))]
        if isinstance(req, ops.DeletePolicy):
            got = self._delpolicy(ops_selector(req.src, req.dst), 0, XFRM_DIR[req.direction])
            change = ops.PolicyChange.DELETE
            event = policy_event(change, MsgType.X_SPDDELETE, *got, seq, True)
            return [(seq, event if event is not None else no_policy(MsgType.X_SPDDELETE))]
        if not isinstance(req, ops.DumpPolicy):
            raise TypeError(f"not a kernel request: {req!r}")
        entries = self._policies()
        if not entries:
            return [
                (seq, ops.PolicyEvent(ops.PolicyChange.DUMP, seq, True, None, errno_mod.ENOENT))
            ]
        n, out = len(entries), []
        for i, (entry, a) in enumerate(entries):
            left = n - 1 - i
            event = policy_event(
                ops.PolicyChange.DUMP, MsgType.X_SPDDUMP, entry, a, left, True, left == 0
            )
            assert event is not None  # _policies keeps only what policy_parts reads
            out.append((left, event))
        return out

    # -- recv: replies, then events ------------------------------------------------------------

    def _pull(self, timeout: float | None, deliver: Callable[[nl.NlMsg], None]) -> None:
        """Read one batch of XFRM notifications and ``deliver`` each (translate and queue)."""
        self._join()
        try:
            batch = self.events.recv_batch(timeout)
        except OSError as e:
            if e.errno == errno_mod.ENOBUFS:
                # PF_KEY loses messages the same way when a reader falls behind; say so once.
                if not self._lost_events:
                    self._lost_events = True
                    self.notice("XFRM events were lost: the netlink socket's buffer overflowed")
                return
            raise KernelError(f"cannot read XFRM events: {e.strerror}") from e
        except nl.NetlinkDecodeError as e:
            # as with PF_KEY: a message we cannot read costs that message, not the socket
            self.notice(f"an XFRM event could not be read, skipped: {e}")
            return
        for m in batch or ():
            try:
                deliver(m)
            except (XfrmDecodeError, nl.NetlinkDecodeError) as e:
                self.notice(f"an XFRM event could not be read: {e}")

    def _recv(self, timeout: float | None) -> Message | None:
        if self._queue:
            return self._take()
        self._pull(timeout, self._deliver_message)
        return self._take() if self._queue else None

    def recv_event(self, timeout: float | None = None) -> ops.Event | None:
        """The next answer or notification as an event, read from XFRM netlink directly.

        PF_KEY messages still waiting (a ``send`` or ``request`` made on this socket) come
        first, through the PF_KEY codec, as ``KernelSocket.recv_event`` reads them."""
        if self._events:
            return self._take_event()
        if self._backlog or self._queue:
            return super().recv_event(0)
        self._pull(timeout, self._deliver_event)
        return self._take_event() if self._events else None

    def _deliver_message(self, m: nl.NlMsg) -> None:
        msg = self.translate_event(m)
        if msg is not None:
            self._put(msg)

    def _deliver_event(self, m: nl.NlMsg) -> None:
        event = self.translate_vocabulary_event(m)
        if event is not None:
            self._put_event(event)

    def _delivered(self, m: nl.NlMsg) -> bool:
        """Not what our own requests caused (the reply said it)."""
        return not (m.pid and m.pid == self.nl.portid)

    def _listening(self, proto: ops.Proto | None) -> bool:
        """ACQUIRE and EXPIRE reach a socket registered for the SA type (or promiscuous)."""
        return self._promisc or proto in self._registered

    def translate_event(self, m: nl.NlMsg) -> Message | None:
        """One multicast XFRM message as the PF_KEY message this socket would have got: none
        for what our own requests caused (the reply said it), ACQUIRE and EXPIRE only when
        registered for the SA type (or promiscuous), as af_key delivers them."""
        if not self._delivered(m):
            return None
        ev = event_message(m)
        if ev is None:
            return None
        if ev.type in (MsgType.ACQUIRE, MsgType.EXPIRE) and not self._listening(
            PROTO_OF_SATYPE_NUMBER.get(ev.satype)
        ):
            return None
        return ev

    def translate_vocabulary_event(self, m: nl.NlMsg) -> ops.Event | None:
        """``translate_event`` for the vocabulary: the same deliveries, as events."""
        if not self._delivered(m):
            return None
        ev = vocabulary_event(m, self.pid)
        expire = (ops.SaChange.SOFT_EXPIRE, ops.SaChange.HARD_EXPIRE)
        if isinstance(ev, ops.Acquire) or (isinstance(ev, ops.SaEvent) and ev.change in expire):
            if not self._listening(ev.proto):
                return None
        return ev


def xfrm_available() -> bool:
    """Whether an XFRM netlink socket opens here (for ``auto``)."""
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_XFRM)
    except (OSError, AttributeError):
        return False
    s.close()
    return True
