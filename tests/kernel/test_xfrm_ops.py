"""The vocabulary's direct path to XFRM equals the PF_KEY path, request by request, event by event.

``XfrmSocket`` has two front doors: ``submit``/``recv_event``/``call`` go ops <-> netlink
directly, ``send``/``recv`` translate PF_KEY messages. The engine used to reach XFRM through
``pfkey_codec.message_of`` and ``event_of``; it must not be able to tell the difference. So
every request is carried out both ways against two identical fake kernels (a stand-in for the
netlink socket that keeps SAs and policies and can refuse with any errno): the netlink
messages each sends must be the same bytes, and the events the direct path gives must equal
``event_of`` of the PF_KEY path's replies. Netlink notifications are checked the same way:
``recv_event`` against ``event_of(recv())``. The real kernel is the lab's part
(tests/lab/test_lab_xfrm.py, test_lab_rekey.py, test_lab_charon_xfrm.py).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections import deque
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from pyracoon.crypto.algorithms import AUTH_ALGORITHMS, CIPHERS, IPCOMP_ALGORITHMS
from pyracoon.kernel import netlink as nl
from pyracoon.kernel import ops, pfkey_codec, xfrm, xfrm_ops, xfrm_pfkey, xfrm_structs
from pyracoon.kernel.base import KernelError, KernelSocket

ip = ipaddress.ip_address
V4 = [ip("10.0.0.1"), ip("10.0.0.2"), ip("192.0.2.7")]
V6 = [ip("fd00::1"), ip("fd00::2")]


class FakeKernel:
    """Just enough of XFRM for both paths: SAs and policies kept as the payloads the kernel
    would send back, newest first in dumps; ``fail`` makes a message type fail with an errno.
    Every transaction is logged, so the two paths' netlink traffic can be compared."""

    def __init__(self, fail: dict[int, int] | None = None, policies: tuple[bytes, ...] = ()):
        self.fail = dict(fail or {})
        self.log: list[tuple[int, bytes, int]] = []
        self.states: list[bytes] = []
        self.policies: list[bytes] = list(policies)
        self.next_index = 1

    def transact(self, mtype: int, payload: bytes, *, flags: int = 0, timeout: float = 5.0):
        self.log.append((mtype, payload, flags))
        if mtype in self.fail:
            raise OSError(self.fail[mtype], os.strerror(self.fail[mtype]))
        dump = bool(flags & nl.NLM_F_DUMP)
        if mtype == xfrm_structs.XFRM_MSG_ALLOCSPI:
            info = xfrm_structs.UsersaInfo.unpack(payload)
            info.spi = xfrm_structs.USERSPI_INFO.unpack(payload)[1] + 3
            self.states.insert(0, info.pack())
            return [nl.NlMsg(xfrm_structs.XFRM_MSG_NEWSA, 0, 1, 0, info.pack())]
        if mtype in (xfrm_structs.XFRM_MSG_NEWSA, xfrm_structs.XFRM_MSG_UPDSA):
            self.states.insert(0, payload)
            return []
        if mtype == xfrm_structs.XFRM_MSG_DELSA:
            daddr, spi, _, proto = xfrm_structs.unpack_usersa_id(payload)
            for p in self.states:
                info = xfrm_structs.UsersaInfo.unpack(p)
                if (info.daddr, info.spi, info.proto) == (daddr, spi, proto):
                    self.states.remove(p)
                    return []
            raise OSError(errno.ESRCH, "no such SA")
        if mtype == xfrm_structs.XFRM_MSG_FLUSHSA:
            proto = payload[0]
            self.states = [
                p
                for p in self.states
                if proto not in (255, xfrm_structs.UsersaInfo.unpack(p).proto)
            ]
            return []
        if mtype == xfrm_structs.XFRM_MSG_GETSA and dump:
            return [
                nl.NlMsg(xfrm_structs.XFRM_MSG_NEWSA, nl.NLM_F_MULTI, 1, 0, p) for p in self.states
            ]
        if mtype == xfrm_structs.XFRM_MSG_GETPOLICY and dump:
            return [nl.NlMsg(xfrm_structs.XFRM_MSG_NEWPOLICY, 2, 1, 0, p) for p in self.policies]
        if mtype in (xfrm_structs.XFRM_MSG_NEWPOLICY, xfrm_structs.XFRM_MSG_UPDPOLICY):
            info = xfrm_structs.UserpolicyInfo.unpack(payload)
            old = self._find(info.sel.pack(), 0, info.dir)
            if old is not None:
                if mtype == xfrm_structs.XFRM_MSG_NEWPOLICY:
                    raise OSError(errno.EEXIST, "exists")
                self.policies.remove(old)
            info.index = (self.next_index << 3) | info.dir
            self.next_index += 1
            self.policies.insert(0, info.pack() + payload[xfrm_structs.USERPOLICY_INFO.size :])
            return []
        if mtype in (xfrm_structs.XFRM_MSG_GETPOLICY, xfrm_structs.XFRM_MSG_DELPOLICY):
            sel, index, direction = xfrm_structs.USERPOLICY_ID.unpack_from(payload)
            found = self._find(sel, index, direction)
            if found is None:
                raise OSError(errno.ENOENT, "no such policy")
            if mtype == xfrm_structs.XFRM_MSG_DELPOLICY:
                self.policies.remove(found)
                return []
            return [nl.NlMsg(xfrm_structs.XFRM_MSG_NEWPOLICY, 0, 1, 0, found)]
        if mtype == xfrm_structs.XFRM_MSG_FLUSHPOLICY:
            self.policies.clear()
        return []

    def _find(self, sel: bytes, index: int, direction: int) -> bytes | None:
        for p in self.policies:
            info = xfrm_structs.UserpolicyInfo.unpack(p)
            if index and info.index == index:
                return p
            if not index and info.sel.pack() == sel and info.dir == direction:
                return p
        return None


class FakeNetlink:
    """The stand-in for ``netlink.NetlinkSocket``: transactions go to the fake kernel,
    notifications are what the test queues in ``batches``."""

    portid = 4242

    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel
        self.batches: deque[list[nl.NlMsg]] = deque()

    def transact(self, mtype: int, payload: bytes, *, flags: int = 0, timeout: float = 5.0):
        return self.kernel.transact(mtype, payload, flags=flags, timeout=timeout)

    def join(self, group: int) -> None:
        pass

    def recv_batch(self, timeout: float | None) -> list[nl.NlMsg] | None:
        return self.batches.popleft() if self.batches else None

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


def open_fake(kernel: FakeKernel) -> xfrm.XfrmSocket:
    with mock.patch.object(nl, "NetlinkSocket", lambda *a, **k: FakeNetlink(kernel)):
        return xfrm.XfrmSocket(notice=lambda text: None)


def pfkey_events(sock: xfrm.XfrmSocket) -> list[ops.Event]:
    out = []
    while (msg := sock.recv(0)) is not None:
        out.append(pfkey_codec.event_of(msg, sock.pid))
    return out


def direct_events(sock: xfrm.XfrmSocket) -> list[ops.Event]:
    out = []
    while (event := sock.recv_event(0)) is not None:
        out.append(event)
    return out


# ---------------------------------------------------------------------------------------------
# strategies


addresses = hs.sampled_from(V4 + V6)
protos = hs.sampled_from(list(ops.Proto))
modes = hs.sampled_from(list(ops.Mode))
seqs = hs.integers(1, 0xFFFF)
lifetimes = hs.builds(
    ops.Lifetime,
    hs.sampled_from([0, 10]),
    hs.sampled_from([0, 1 << 20]),
    hs.sampled_from([0, 30, 3600]),
    hs.sampled_from([0, 60]),
)


@hs.composite
def address_pairs(draw: hs.DrawFn, mixed: bool = True) -> tuple[ops.IPAddress, ops.IPAddress]:
    src = draw(addresses)
    if mixed and draw(hs.integers(0, 9)) == 0:  # now and then of two families: EINVAL
        return src, draw(addresses)
    return src, draw(hs.sampled_from(V4 if src.version == 4 else V6))


@hs.composite
def sa_ids(draw: hs.DrawFn, proto: ops.Proto | None = None) -> ops.SaId:
    src, dst = draw(address_pairs())
    return ops.SaId(proto or draw(protos), draw(hs.integers(0x100, 0xFFFFFFFF)), src, dst)


@hs.composite
def installs(draw: hs.DrawFn) -> ops.InstallSa:
    proto = draw(protos)
    cipher = auth = compression = None
    if proto is ops.Proto.IPCOMP:
        compression = draw(hs.none() | hs.sampled_from(IPCOMP_ALGORITHMS.rows))
    else:
        auth = draw(hs.none() | hs.sampled_from(AUTH_ALGORITHMS.rows))
        if proto is ops.Proto.ESP:
            cipher = draw(hs.none() | hs.sampled_from(CIPHERS.rows))
    return ops.InstallSa(
        draw(seqs),
        draw(hs.booleans()),
        draw(sa_ids(proto)),
        draw(modes),
        draw(hs.sampled_from([0, 7, 0x4001])),
        draw(hs.sampled_from([0, 4, 32, 64])),
        cipher,
        draw(hs.binary(max_size=36)),
        auth,
        draw(hs.binary(max_size=64)),
        compression,
        draw(hs.booleans()),
        draw(lifetimes),
        draw(lifetimes),
    )


@hs.composite
def selectors(draw: hs.DrawFn, addr: ops.IPAddress) -> ops.Selector:
    plen = draw(hs.sampled_from([0, 8, addr.max_prefixlen]))
    network = ipaddress.ip_network(f"{addr}/{plen}", strict=False)
    return ops.Selector(
        network, draw(hs.sampled_from([255, 0, 6, 17])), draw(hs.sampled_from([0, 500]))
    )


@hs.composite
def requests_of(draw: hs.DrawFn) -> ops.IpsecRequest:
    mode = draw(modes)
    src = dst = None
    if mode is ops.Mode.TUNNEL or draw(hs.booleans()):
        src, dst = draw(address_pairs(mixed=False))
    return ops.IpsecRequest(
        draw(protos),
        mode,
        draw(hs.sampled_from(list(ops.Level))),
        draw(hs.sampled_from([0, 5, 0x3FFF, 0x4000, 0x10000])),
        src,
        dst,
    )


@hs.composite
def policies(draw: hs.DrawFn) -> ops.Policy:
    src, dst = draw(address_pairs())
    return ops.Policy(
        draw(hs.sampled_from(list(ops.Direction))),
        draw(selectors(src)),
        draw(selectors(dst)),
        draw(hs.sampled_from(list(ops.PolicyAction))),
        tuple(draw(hs.lists(requests_of(), max_size=3))),
        0,
        draw(lifetimes),
    )


@hs.composite
def deletes(draw: hs.DrawFn) -> ops.DeletePolicy:
    src, dst = draw(address_pairs())
    direction = draw(hs.sampled_from(list(ops.Direction)))
    return ops.DeletePolicy(draw(seqs), direction, draw(selectors(src)), draw(selectors(dst)))


kernel_requests = hs.one_of(
    hs.builds(
        ops.GetSpi,
        seqs,
        protos,
        addresses,
        addresses,
        modes,
        hs.sampled_from([0, 3, 0x4000]),
        hs.none() | hs.just((0x1000, 0x2000)),
    ),
    installs(),
    hs.builds(ops.DeleteSa, seqs, sa_ids()),
    hs.builds(ops.FlushSa, seqs, hs.none() | protos),
    hs.builds(ops.DumpSa, seqs),
    hs.builds(ops.Register, seqs, protos),
    hs.builds(ops.AcquireFailed, seqs, protos, hs.just(errno.ETIMEDOUT)),
    hs.builds(ops.UpdatePolicy, seqs, policies()),
    deletes(),
    hs.builds(ops.DumpPolicy, seqs),
)


@hs.composite
def conversations(draw: hs.DrawFn) -> list[ops.Request]:
    """Requests in a row, some of them deleting what an earlier one made, so that the replies
    of successful deletes (not only ESRCH/ENOENT) are compared too."""
    out: list[ops.Request] = []
    for _ in range(draw(hs.integers(1, 5))):
        req = draw(kernel_requests)
        out.append(req)
        if isinstance(req, ops.InstallSa) and draw(hs.booleans()):
            out.append(ops.DeleteSa(req.seq + 1, req.sa))
        elif isinstance(req, ops.UpdatePolicy) and draw(hs.booleans()):
            p = req.policy
            out.append(ops.DeletePolicy(req.seq + 1, p.direction, p.src, p.dst))
    return out


FAILING = [
    xfrm_structs.XFRM_MSG_ALLOCSPI,
    xfrm_structs.XFRM_MSG_NEWSA,
    xfrm_structs.XFRM_MSG_UPDSA,
    xfrm_structs.XFRM_MSG_DELSA,
    xfrm_structs.XFRM_MSG_FLUSHSA,
    xfrm_structs.XFRM_MSG_GETSA,
    xfrm_structs.XFRM_MSG_UPDPOLICY,
    xfrm_structs.XFRM_MSG_GETPOLICY,
    xfrm_structs.XFRM_MSG_DELPOLICY,
]
failures = hs.dictionaries(
    hs.sampled_from(FAILING),
    hs.sampled_from([errno.EINVAL, errno.ESRCH, errno.ENOENT, errno.ENOSYS, errno.EPROTONOSUPPORT]),
    max_size=2,
)


def _odd_policy(direction: int, family: int = socket.AF_INET, sub: bool = False) -> bytes:
    """A policy neither path can name: per-socket (direction 4-6), no family, a sub-policy."""
    sel = xfrm_structs.Selector(family, ip("10.9.0.1"), ip("10.9.0.2"), 32, 32)
    info = xfrm_structs.UserpolicyInfo(sel=sel, index=(77 << 3) | direction, dir=direction & 3)
    tail = (
        nl.attr(xfrm_structs.XFRMA_POLICY_TYPE, xfrm_structs.USERPOLICY_TYPE.pack(1, 0, 0))
        if sub
        else b""
    )
    return info.pack() + tail


ODD_POLICIES = [_odd_policy(5), _odd_policy(1, family=0), _odd_policy(1, sub=True)]


def both(fail: dict[int, int], odd: tuple[bytes, ...]) -> tuple[xfrm.XfrmSocket, ...]:
    return open_fake(FakeKernel(fail, odd)), open_fake(FakeKernel(fail, odd))


def kernel_of(sock: xfrm.XfrmSocket) -> FakeKernel:
    return sock.nl.kernel  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# requests


@given(
    conversations(),
    failures,
    hs.lists(hs.sampled_from(ODD_POLICIES), max_size=2, unique=True),
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_request_sends_the_same_netlink_and_gets_the_same_events(reqs, fail, odd):
    pf, direct = both(fail, tuple(odd))
    try:
        for req in reqs:
            pf.send(pfkey_codec.message_of(req, pf.pid))
            direct.submit(req)
            assert kernel_of(direct).log == kernel_of(pf).log, req
            assert direct_events(direct) == pfkey_events(pf), req
            assert direct._registered == pf._registered
    finally:
        pf.close()
        direct.close()


@given(kernel_requests, failures, hs.lists(hs.sampled_from(ODD_POLICIES), max_size=2))
@settings(max_examples=200, deadline=None)
def test_call_answers_as_the_pfkey_request_does(req, fail, odd):
    pf, direct = both(fail, tuple(odd))
    try:
        for prepare in (ops.InstallSa(90, False, ops.SaId(ops.Proto.AH, 0x999, V4[0], V4[1]),
                                      ops.Mode.TRANSPORT, 0, auth=AUTH_ALGORITHMS.rows[1],
                                      auth_key=bytes(20)),):  # fmt: skip
            pf.send(pfkey_codec.message_of(prepare, pf.pid))
            direct.submit(prepare)
        pfkey_events(pf), direct_events(direct)
        try:
            want: ops.Event | KernelError = KernelSocket.call(pf, req, timeout=0)
        except KernelError as e:
            want = e
        try:
            got: ops.Event | KernelError = direct.call(req, timeout=0)
        except KernelError as e:
            got = e
        assert type(got) is type(want)
        if not isinstance(want, KernelError):
            assert got == want
        assert kernel_of(direct).log == kernel_of(pf).log
        assert direct_events(direct) == pfkey_events(pf)  # what call left for later
    finally:
        pf.close()
        direct.close()


def test_a_getspi_reply_is_a_larval_sa_and_an_empty_dump_is_enoent():
    sock = open_fake(FakeKernel())
    try:
        req = ops.GetSpi(7, ops.Proto.ESP, V4[0], V4[1], ops.Mode.TUNNEL, 3)
        reply = sock.call(req)
        sa = ops.KernelSa(
            ops.SaId(ops.Proto.ESP, 0x103, V4[0], V4[1]), ops.SaState.LARVAL, ops.Mode.TUNNEL, 3
        )
        assert reply == ops.SaEvent(ops.SaChange.GETSPI, 7, True, ops.Proto.ESP, sa)
        assert sock.call(ops.FlushSa(8)) == ops.SaEvent(ops.SaChange.FLUSH, 8, True)
        sock.submit(ops.DumpSa(9))
        assert direct_events(sock) == [
            ops.SaEvent(ops.SaChange.DUMP, 9, True, None, None, errno.ENOENT, True)
        ]
        sock.submit(ops.DumpPolicy(10))
        assert direct_events(sock) == [
            ops.PolicyEvent(ops.PolicyChange.DUMP, 10, True, None, errno.ENOENT, True)
        ]
        # the answers went through no PF_KEY message
        assert not sock._queue
    finally:
        sock.close()


def test_a_dump_counts_down_and_ends_with_last():
    sock = open_fake(FakeKernel())
    try:
        for spi in (0x201, 0x202, 0x203):
            sa = ops.SaId(ops.Proto.ESP, spi, V4[0], V4[1])
            sock.call(
                ops.InstallSa(spi, False, sa, ops.Mode.TRANSPORT, 0, cipher=CIPHERS.rows[4],
                              enc_key=bytes(16), auth=AUTH_ALGORITHMS.rows[1], auth_key=bytes(20))
            )  # fmt: skip
        sock.submit(ops.DumpSa(5))
        events = direct_events(sock)
        assert [(e.seq, e.last, e.sa.id.spi, e.sa.state) for e in events] == [
            (2, False, 0x203, ops.SaState.MATURE),
            (1, False, 0x202, ops.SaState.MATURE),
            (0, True, 0x201, ops.SaState.MATURE),
        ]
    finally:
        sock.close()


def test_the_one_table_names_the_algorithms():
    """Rows the kernel knows by another row's number are sent as that row; ``non_auth`` is no
    algorithm, as PF_KEY's SADB number 0 is."""
    des_iv64 = CIPHERS.by("name", "des_iv64")
    assert xfrm_ops.kernel_row(des_iv64, CIPHERS) == CIPHERS.by("name", "des")
    assert xfrm_ops.kernel_row(AUTH_ALGORITHMS.by("name", "non_auth"), AUTH_ALGORITHMS) is None
    gcm12 = CIPHERS.by("name", "aes-gcm-12")
    sa = ops.SaId(ops.Proto.ESP, 0x300, V4[0], V4[1])
    _, attrs = xfrm_ops.install_request(
        ops.InstallSa(1, False, sa, ops.Mode.TRANSPORT, 0, cipher=gcm12, enc_key=bytes(20))
    )
    assert dict(attrs)[xfrm_structs.XFRMA_ALG_AEAD][:64].rstrip(b"\0") == b"rfc4106(gcm(aes))"
    assert xfrm_structs.unpack_algo(dict(attrs)[xfrm_structs.XFRMA_ALG_AEAD], True)[1:3] == (
        160,
        96,
    )


# ---------------------------------------------------------------------------------------------
# events


def _acquire(proto: int, seq: int, family: int = socket.AF_INET) -> nl.NlMsg:
    a, b = (V4[0], V4[1]) if family == socket.AF_INET else (V6[0], V6[1])
    pol = xfrm_structs.UserpolicyInfo(
        sel=xfrm_structs.Selector(family, a, b, 32, 32), index=0x19, dir=1
    )
    body = xfrm_structs.USER_ACQUIRE.pack(
        xfrm_structs.pack_addr(b), bytes(4), proto, xfrm_structs.pack_addr(a),
        pol.sel.pack(), pol.pack(), 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, seq,
    )  # fmt: skip
    return nl.NlMsg(xfrm_structs.XFRM_MSG_ACQUIRE, 0, 0, 0, body)


@hs.composite
def notifications(draw: hs.DrawFn) -> nl.NlMsg:
    """What the kernel multicasts, built from what both paths send (and now and then cut)."""
    inst = draw(installs())
    try:
        info, attrs = xfrm_ops.install_request(inst)
    except xfrm_structs.Refusal:
        info, attrs = xfrm_structs.sa_info(50, V4[0], V4[1], seq=1, reqid=0, mode=ops.Mode.ANY), []
    info.proto = draw(hs.sampled_from([info.proto, 4]))  # 4: IPComp's IP-in-IP state
    state = info.pack() + nl.attrs(attrs)
    upd = draw(policies())
    try:
        pinfo, pattrs = xfrm_ops.update_policy_request(ops.UpdatePolicy(1, upd), lambda: 0x4000)
    except xfrm_structs.Refusal:
        pinfo, pattrs = xfrm_structs.UserpolicyInfo(), []
    pinfo.index = draw(hs.sampled_from([0, 0x21, 0x22, 0x25]))
    pol = pinfo.pack() + nl.attrs(pattrs)
    seq, pid = draw(seqs), draw(hs.sampled_from([0, 77, os.getpid(), FakeNetlink.portid]))
    kind = draw(hs.sampled_from(range(12)))
    if kind == 0:
        m = _acquire(draw(hs.sampled_from([50, 51, 108, 4])), seq)
    elif kind == 1:
        m = nl.NlMsg(
            xfrm_structs.XFRM_MSG_EXPIRE,
            0,
            seq,
            0,
            xfrm_structs.USER_EXPIRE.pack(info.pack(), draw(hs.booleans())),
        )
    elif kind == 2:
        body = xfrm_structs.USER_POLEXPIRE.pack(pinfo.pack(), draw(hs.booleans())) + nl.attrs(
            pattrs
        )
        m = nl.NlMsg(xfrm_structs.XFRM_MSG_POLEXPIRE, 0, seq, 0, body)
    elif kind in (3, 4):
        m = nl.NlMsg(
            (xfrm_structs.XFRM_MSG_NEWSA, xfrm_structs.XFRM_MSG_UPDSA)[kind - 3], 0, seq, pid, state
        )
    elif kind == 5:
        body = xfrm_structs.pack_usersa_id(info.daddr, info.spi, info.proto)
        if draw(hs.booleans()):
            body += nl.attr(xfrm_structs.XFRMA_SA, info.pack()) + nl.attrs(attrs)
        m = nl.NlMsg(xfrm_structs.XFRM_MSG_DELSA, 0, seq, pid, body)
    elif kind == 6:
        flushed = draw(hs.sampled_from([b"", b"\xff", b"\x32", b"\x33", b"\x6c", b"\x04"]))
        m = nl.NlMsg(xfrm_structs.XFRM_MSG_FLUSHSA, 0, seq, pid, flushed)
    elif kind in (7, 8):
        m = nl.NlMsg(
            (xfrm_structs.XFRM_MSG_NEWPOLICY, xfrm_structs.XFRM_MSG_UPDPOLICY)[kind - 7],
            0,
            seq,
            pid,
            pol,
        )
    elif kind == 9:
        body = xfrm_structs.pack_userpolicy_id(pinfo.sel, pinfo.index, pinfo.dir)
        if draw(hs.booleans()):
            body += nl.attr(xfrm_structs.XFRMA_POLICY, pinfo.pack()) + nl.attrs(pattrs)
        m = nl.NlMsg(xfrm_structs.XFRM_MSG_DELPOLICY, 0, seq, pid, body)
    elif kind == 10:
        m = nl.NlMsg(xfrm_structs.XFRM_MSG_FLUSHPOLICY, 0, seq, pid, b"")
    else:
        m = nl.NlMsg(draw(hs.integers(0, 0x30)), 0, seq, pid, draw(hs.binary(max_size=300)))
    if draw(hs.integers(0, 5)) == 0:
        m.payload = m.payload[: draw(hs.integers(0, len(m.payload)))]
    return m


def _read(f):
    try:
        return f()
    except (xfrm_structs.XfrmDecodeError, nl.NetlinkDecodeError) as e:
        return type(e)
    except ValueError as e:  # an impossible prefix length: both paths fail alike
        return ValueError, str(e)


@given(notifications())
@settings(max_examples=1500, deadline=None)
def test_every_notification_reads_as_the_pfkey_path_reads_it(m):
    pid = os.getpid()

    def via_pfkey():
        msg = xfrm_pfkey.event_message(m)
        return None if msg is None else pfkey_codec.event_of(msg, pid)

    assert _read(lambda: xfrm_ops.vocabulary_event(m, pid)) == _read(via_pfkey)


@given(
    hs.lists(notifications(), max_size=6),
    hs.lists(protos, max_size=2),
    hs.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_the_socket_delivers_the_same_notifications_both_ways(batch, registered, promisc):
    """Ours are dropped, ACQUIRE and EXPIRE only reach a registered (or promiscuous) socket,
    and what cannot be decoded costs that message only -- on both front doors."""
    pf, direct = both({}, ())
    try:
        for sock in (pf, direct):
            sock._registered.update(registered)
            sock._promisc = promisc
            sock.events.batches.append(list(batch))  # type: ignore[attr-defined]
        want = _read(lambda: pfkey_events(pf))
        assert _read(lambda: direct_events(direct)) == want
    finally:
        pf.close()
        direct.close()


def test_an_acquire_is_the_policy_index_addresses_and_protocol():
    sock = open_fake(FakeKernel())
    try:
        sock.submit(ops.Register(1, ops.Proto.ESP))
        assert direct_events(sock)[0].change is ops.SaChange.REGISTER
        sock.events.batches.append([_acquire(51, 5), _acquire(50, 6, socket.AF_INET6)])
        assert direct_events(sock) == [ops.Acquire(6, 0x19, V6[0], V6[1], ops.Proto.ESP)]
    finally:
        sock.close()


@pytest.mark.parametrize("hard", [False, True])
def test_expire_events_say_soft_or_hard(hard):
    info = xfrm_structs.sa_info(51, V4[0], V4[1], spi=0x55, seq=0, reqid=2, mode=ops.Mode.TUNNEL)
    m = nl.NlMsg(
        xfrm_structs.XFRM_MSG_EXPIRE, 0, 0, 0, xfrm_structs.USER_EXPIRE.pack(info.pack(), hard)
    )
    ev = xfrm_ops.vocabulary_event(m, os.getpid())
    change = ops.SaChange.HARD_EXPIRE if hard else ops.SaChange.SOFT_EXPIRE
    state = ops.SaState.DEAD if hard else ops.SaState.DYING
    sa = ops.KernelSa(ops.SaId(ops.Proto.AH, 0x55, V4[0], V4[1]), state, ops.Mode.TUNNEL, 2)
    assert ev == ops.SaEvent(change, 0, False, ops.Proto.AH, sa)
