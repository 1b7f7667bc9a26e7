"""The kernel vocabulary and its PF_KEY codec: each request is the message racoon's pfkey.c
sends, each kernel message is the event it means, the simulated kernel answers the vocabulary,
and nothing above the kernel layer but setkey imports a PF_KEY structure."""

from __future__ import annotations

import ast
import errno
import ipaddress
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import pyracoon
from pyracoon.crypto.algorithms import IPCOMP_ALGORITHMS, auth_by_sadb_id, cipher_by_sadb_id
from pyracoon.kernel import ops
from pyracoon.kernel.memory import InMemoryKernel
from pyracoon.kernel.pfkey import SA, Address, Message, Policy, decode, encode
from pyracoon.kernel.pfkey_codec import event_of, install_of_numbers, message_of, sadb_numbers
from pyracoon.kernel.sadb import (
    AuthAlg,
    Direction,
    EncAlg,
    ExtType,
    Level,
    Mode,
    MsgType,
    SaFlags,
    SaType,
)

A = ipaddress.ip_address("10.0.0.1")
B = ipaddress.ip_address("10.0.0.2")
PID = 4242


def esp_sa(update: bool = False, spi: int = 0x1234, seq: int = 9) -> ops.InstallSa:
    return ops.InstallSa(
        seq, update, ops.SaId(ops.Proto.ESP, spi, A, B), ops.Mode.TRANSPORT, 7, 4,
        cipher_by_sadb_id(EncAlg.AESCBC), bytes(16), auth_by_sadb_id(AuthAlg.SHA1HMAC),
        bytes(range(20)), hard=ops.Lifetime(addtime=600), soft=ops.Lifetime(addtime=480),
    )  # fmt: skip


def test_install_is_racoons_update_and_add() -> None:
    for update, mtype in ((True, MsgType.UPDATE), (False, MsgType.ADD)):
        msg = message_of(esp_sa(update), PID)
        assert (msg.type, msg.satype, msg.seq, msg.pid) == (mtype, SaType.ESP, 9, PID)
        assert msg.sa is not None and msg.sa2 is not None
        assert (msg.sa.spi, msg.sa.replay, msg.sa.auth, msg.sa.encrypt, msg.sa.flags) == (
            0x1234, 4, AuthAlg.SHA1HMAC, EncAlg.AESCBC, 0,
        )  # fmt: skip
        assert (msg.sa2.mode, msg.sa2.reqid) == (Mode.TRANSPORT, 7)
        assert msg.src is not None and msg.dst is not None
        assert (msg.src.addr, msg.dst.addr) == (A, B)
        enc, auth = msg.key(ExtType.KEY_ENCRYPT), msg.key(ExtType.KEY_AUTH)
        assert enc is not None and auth is not None
        assert (enc.key, auth.key) == (bytes(16), bytes(range(20)))
        hard, soft = msg.lifetime(ExtType.LIFETIME_HARD), msg.lifetime(ExtType.LIFETIME_SOFT)
        assert hard is not None and soft is not None
        assert (hard.addtime, soft.addtime) == (600, 480)
        assert decode(encode(msg)).sa == msg.sa  # and it survives the wire


def test_esp_null_carries_an_empty_encryption_key_and_ipcomp_its_raw_cpi() -> None:
    null = ops.InstallSa(
        1, False, ops.SaId(ops.Proto.ESP, 0x99, A, B), ops.Mode.TRANSPORT, 0,
        cipher=cipher_by_sadb_id(EncAlg.NULL),
    )  # fmt: skip
    key = message_of(null, PID).key(ExtType.KEY_ENCRYPT)
    assert key is not None and key.key == b""  # Linux's af_key says EINVAL without it
    deflate = IPCOMP_ALGORITHMS.by("name", "deflate")
    comp = ops.InstallSa(
        1, True, ops.SaId(ops.Proto.IPCOMP, 0x4001, A, B), ops.Mode.TUNNEL, 0,
        compression=deflate, raw_cpi=True,
    )  # fmt: skip
    msg = message_of(comp, PID)
    assert msg.satype == SaType.IPCOMP and msg.sa is not None
    assert (msg.sa.encrypt, msg.sa.flags) == (deflate.sadb_id, int(SaFlags.RAWCPI))
    assert ExtType.KEY_ENCRYPT not in msg and ExtType.KEY_AUTH not in msg


def test_sadb_numbers_and_back_are_the_same_request() -> None:
    """backupsa writes an SA in SADB numbers and restores it from them."""
    req = esp_sa()
    n = sadb_numbers(req)
    back = install_of_numbers(
        n, req.seq, (req.sa.spi, A, B), req.reqid, req.replay, (req.enc_key, req.auth_key),
        req.hard, req.soft,
    )  # fmt: skip
    assert back == req


def test_other_requests() -> None:
    spi = message_of(ops.GetSpi(5, ops.Proto.IPCOMP, B, A, ops.Mode.TUNNEL, 3, (0x100, 0xFFFF)), 1)
    assert (spi.type, spi.satype, spi.seq) == (MsgType.GETSPI, SaType.IPCOMP, 5)
    assert spi.src is not None and spi.src.addr == B
    assert message_of(ops.FlushSa(0), 1).satype == SaType.UNSPEC
    assert message_of(ops.FlushSa(0, ops.Proto.AH), 1).satype == SaType.AH
    failed = message_of(ops.AcquireFailed(77, ops.Proto.ESP, errno.EINVAL), 1)
    assert (failed.type, failed.seq, failed.errno) == (MsgType.ACQUIRE, 77, errno.EINVAL)
    sel = ops.Selector(ipaddress.ip_network("10.1.0.0/16"), 6, 80)
    pol = ops.Policy(
        ops.Direction.FWD, sel, ops.Selector(ipaddress.ip_network("10.2.0.0/16")),
        requests=(ops.IpsecRequest(ops.Proto.ESP, ops.Mode.TUNNEL, ops.Level.UNIQUE, 3, A, B),),
        lifetime=ops.Lifetime(addtime=60),
    )  # fmt: skip
    msg = message_of(ops.UpdatePolicy(3, pol), 1)
    assert msg.type == MsgType.X_SPDUPDATE and msg.policy is not None
    assert msg.policy.dir == Direction.FWD
    (r,) = msg.policy.requests
    assert (r.proto, r.mode, r.level, r.reqid, r.src, r.dst) == (
        50, Mode.TUNNEL, Level.UNIQUE, 3, A, B,
    )  # fmt: skip
    assert msg.src is not None and (msg.src.prefixlen, msg.src.proto, msg.src.port) == (16, 6, 80)
    delete = message_of(ops.DeletePolicy(4, ops.Direction.IN, sel, sel), 1)
    assert delete.type == MsgType.X_SPDDELETE and delete.policy is not None
    assert delete.policy.dir == Direction.INBOUND


def test_events_say_what_a_message_means_and_whose_it_is() -> None:
    reply = message_of(esp_sa(True), PID)
    ev = event_of(reply, PID)
    assert isinstance(ev, ops.SaEvent) and ev.ours and ev.change is ops.SaChange.UPDATE
    assert ev.sa is not None and ev.sa.id == ops.SaId(ops.Proto.ESP, 0x1234, A, B)
    assert event_of(reply, PID + 1).ours is False  # type: ignore[union-attr]
    expire = Message(MsgType.EXPIRE, SaType.AH).add(SA(spi=5))
    expire.add(Address(ExtType.ADDRESS_SRC, A)).add(Address(ExtType.ADDRESS_DST, B))
    soft = event_of(expire, PID)
    assert isinstance(soft, ops.SaEvent) and soft.change is ops.SaChange.SOFT_EXPIRE
    acquire = Message(MsgType.ACQUIRE, SaType.ESP, seq=8).add(Policy(2, 2, 42, 0, []))
    acquire.add(Address(ExtType.ADDRESS_SRC, A)).add(Address(ExtType.ADDRESS_DST, B))
    assert event_of(acquire, PID) == ops.Acquire(8, 42, A, B, ops.Proto.ESP)
    lost = Message(MsgType.ACQUIRE, SaType.ESP, seq=8)
    assert event_of(lost, PID) == ops.Unsupported("ACQUIRE without X_POLICY or addresses", True)
    empty = Message(MsgType.X_SPDDUMP, 0, errno=errno.ENOENT, seq=1, pid=PID)
    end = event_of(empty, PID)
    assert isinstance(end, ops.PolicyEvent) and end.last and end.policy is None
    assert event_of(Message(MsgType.X_PROMISC, 0), PID) == ops.Unsupported("SADB_X_PROMISC")
    # Linux's SPD dump lists per-socket policies (the IKE sockets' bypass) with directions 4, 5
    socket_policy = Message(MsgType.X_SPDADD, 0, seq=0, pid=PID).add(Policy(1, 5, 9, 0, []))
    socket_policy.add(Address(ExtType.ADDRESS_SRC, A)).add(Address(ExtType.ADDRESS_DST, B))
    assert event_of(socket_policy, PID) == ops.Unsupported(
        "SADB_X_SPDADD with policy direction 5 / type 1"
    )
    # ... and as the last entry of our dump it still ends the dump, with nothing to cache
    socket_policy.type = MsgType.X_SPDDUMP
    assert event_of(socket_policy, PID) == ops.PolicyEvent(
        ops.PolicyChange.DUMP, 0, True, None, 0, True
    )
    no_policy = Message(MsgType.X_SPDADD, 0)
    assert event_of(no_policy, PID) == ops.Unsupported(
        "SADB_X_SPDADD with no X_POLICY or address extension", True
    )
    assert isinstance(event_of(Message(MsgType.ADD, SaType.RSVP), PID), ops.Unsupported)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=16, max_size=200))
def test_event_of_is_total_over_whatever_decodes(data: bytes) -> None:
    """A message the codec decodes always becomes an event: the daemon never sees a traceback
    for a kernel message it has no word for."""
    try:
        msg = decode(data)
    except ValueError:
        return
    event = event_of(msg, PID)
    assert isinstance(event, ops.SaEvent | ops.PolicyEvent | ops.Acquire | ops.Unsupported)


def test_the_simulated_kernel_answers_the_vocabulary() -> None:
    kernel = InMemoryKernel(lambda: 1000.0)
    sock = kernel.open()
    got = sock.call(ops.GetSpi(0, ops.Proto.ESP, B, A, ops.Mode.TRANSPORT, 0))
    assert isinstance(got, ops.SaEvent) and got.errno == 0 and got.sa is not None
    assert got.sa.state is ops.SaState.LARVAL
    spi = got.sa.id.spi
    req = esp_sa(True, spi=spi)
    done = sock.call(ops.InstallSa(**{**req.__dict__, "sa": ops.SaId(ops.Proto.ESP, spi, B, A)}))
    assert isinstance(done, ops.SaEvent) and done.errno == 0
    again = sock.call(ops.DeleteSa(0, ops.SaId(ops.Proto.ESP, spi, B, A)))
    assert isinstance(again, ops.SaEvent) and again.errno == 0
    gone = sock.call(ops.DeleteSa(0, ops.SaId(ops.Proto.ESP, spi, B, A)))
    assert isinstance(gone, ops.SaEvent) and gone.errno == errno.ESRCH


PACKAGE = Path(pyracoon.__file__).parent
#: The modules that are PF_KEY, XFRM or the simulator's insides.
BACKEND_INSIDES = {
    "pfkey",
    "sadb",
    "xfrm",
    "xfrm_structs",
    "xfrm_pfkey",
    "xfrm_ops",
    "netlink",
    "memory",
    "memory_state",
    "memory_tables",
    "server",
}


def _kernel_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["pyracoon", "kernel"] and len(parts) > 2:
                found.add(parts[2])
    return found


def test_nothing_above_the_kernel_layer_but_setkey_imports_a_backends_structures() -> None:
    """The engine, the daemon, the admin socket and the lab tools speak ``ops`` (or run the
    programs); pysetkey is a PF_KEY program by definition (its input is setkey's, its ``-x``
    prints PF_KEY messages), so it is the one exception, named here."""
    allowed_dirs = {"kernel", "setkey"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in allowed_dirs:
            continue
        bad = _kernel_imports(path) & BACKEND_INSIDES
        if bad:
            offenders.append(f"{rel}: {sorted(bad)}")
    assert offenders == []
