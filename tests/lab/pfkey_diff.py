"""One PF_KEY conversation, played against a kernel; what came back, as comparable JSON.

Run inside the kernel lab, once against Linux's own ``af_key`` (``real``) and once against a
``pyracoon-kernel`` (``sim PATH``); ``test_lab_pfkey_diff.py`` compares the two transcripts
field by field. The requests are built with our codec, but every message that comes *back* is
checked to re-encode to exactly the bytes the kernel sent (so the decoder saw every byte), and
the comparison is of the decoded fields, with only what is random or time-dependent masked:
SPIs the kernel chose are named in order of appearance, add/use times become ``"t"``, pids are
named by socket, an ACQUIRE's kernel sequence number is masked; what arrives is grouped by
socket, each socket's messages in their order.

    python pfkey_diff.py real OUT.json
    python pfkey_diff.py sim /path/k.sock OUT.json
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import select
import socket
import sys
import time
from typing import Any

from pyracoon.kernel import pfkey
from pyracoon.kernel.base import AF_KEY
from pyracoon.kernel.pfkey import (
    SA,
    SA2,
    Address,
    IpsecRequest,
    Key,
    Lifetime,
    Message,
    Policy,
    SpiRange,
)
from pyracoon.kernel.sadb import (
    AuthAlg,
    Direction,
    EncAlg,
    ExtType,
    Level,
    Mode,
    MsgType,
    PolicyType,
    SaType,
    name_of,
)

A, B = "10.9.0.1", "10.9.0.2"
A6, B6 = "fd09::1", "fd09::2"
KEY_E = b"This is a Secret Key !!!"
KEY_A = b"This is a Secret Key"
KEY_A2 = b"Another secret key!!"


class Kernel:
    """Two sockets on one kernel: ``s`` sends requests, ``l`` listens (registered for ESP)."""

    def __init__(self, mode: str, path: str | None) -> None:
        self.mode = mode
        self.path = path
        self.socks = {"s": self._open(), "l": self._open()}
        self.pids = {"s": 1000, "l": 2000}
        self.seq = 0

    def add_socket(self, who: str, pid: int) -> None:
        """A further socket, opened late so that it changes nothing before it."""
        self.socks[who] = self._open()
        self.pids[who] = pid

    def _open(self) -> socket.socket:
        if self.mode == "real":
            return socket.socket(AF_KEY, socket.SOCK_RAW, 2)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(self.path)
        return s

    def send(self, who: str, msg: Message) -> None:
        """Send with the next seq, unless ``msg.seq`` is set (an answer to the kernel's seq)."""
        self.seq += 1
        msg.seq = msg.seq or self.seq
        msg.pid = self.pids[who]
        self.socks[who].send(pfkey.encode(msg))

    def collect(self, quiet: float = 0.25, limit: float = 5.0) -> list[tuple[str, bytes]]:
        """Everything the sockets receive until they are quiet, grouped by socket.

        Each socket's messages keep their order; how the sockets interleave is only the order in
        which this loop found them ready, which no reader of one socket can see, and which
        differs between a kernel that queues during ``send`` and a server that answers a moment
        later.
        """
        out: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            ready, _, _ = select.select(list(self.socks.values()), [], [], quiet)
            if not ready:
                break
            for who, s in self.socks.items():
                if s in ready:
                    out.append((who, s.recv(1 << 19)))
        order = list(self.socks)
        return sorted(out, key=lambda m: order.index(m[0]))

    def packet(self, src: str, dst: str, sport: int, dport: int) -> None:
        """A UDP packet from ``src`` to ``dst``: the real thing, or the simulator's control op.

        The source port is fixed, not the socket's random one: a state the kernel made for an
        ACQUIRE selects the flow that caused it, ports included, so they must be known.
        """
        if self.mode == "real":
            fam = socket.AF_INET6 if ":" in src else socket.AF_INET
            with socket.socket(fam, socket.SOCK_DGRAM) as u:
                u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                u.bind((src, sport))
                try:
                    u.sendto(b"x", (dst, dport))
                except OSError:
                    pass  # the policy may drop it; the ACQUIRE is what counts
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as c:
            c.connect(self.path)
            req = {"op": "output", "src": src, "dst": dst, "proto": 17, "sport": sport,
                   "dport": dport}  # fmt: skip
            c.send(json.dumps(req).encode())
            c.recv(65536)

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass: really, or on the simulator's manual clock."""
        if self.mode == "real":
            time.sleep(seconds)
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as c:
            c.connect(self.path)
            c.send(json.dumps({"op": "advance", "seconds": seconds}).encode())
            c.recv(65536)


# ---------------------------------------------------------------------------------------------
# normalising what came back


class Names:
    def __init__(self) -> None:
        self.spis: dict[int, str] = {}

    def spi(self, value: int) -> str:
        return self.spis.setdefault(value, f"spi#{len(self.spis) + 1}")


def fields(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: fields(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [fields(x) for x in obj]
    if isinstance(obj, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


def normalise(who: str, raw: bytes, k: Kernel, names: Names, chosen: set[int]) -> dict:
    try:
        msg = pfkey.decode(raw)
    except pfkey.PfkeyDecodeError as e:
        return {"sock": who, "undecodable": str(e), "raw": raw.hex()}
    roundtrip = pfkey.encode(msg) == raw
    pid_name = {v: n for n, v in k.pids.items()}
    head = {
        "sock": who,
        "type": name_of(MsgType, msg.type),
        "satype": name_of(SaType, msg.satype),
        "errno": msg.errno,
        "seq": "kernel" if msg.type in (MsgType.ACQUIRE, MsgType.X_SPDEXPIRE) else msg.seq,
        "pid": pid_name.get(msg.pid, msg.pid),
        "roundtrip": roundtrip,
    }
    exts: dict[str, Any] = {}
    for ext in msg:
        f = fields(ext)
        if isinstance(ext, SA) and ext.spi not in chosen:
            f["spi"] = names.spi(ext.spi)
        if isinstance(ext, Lifetime) and ext.type == ExtType.LIFETIME_CURRENT:
            f["addtime"] = "t" if ext.addtime else 0
            f["usetime"] = "t" if ext.usetime else 0
        exts[name_of(ExtType, ext.type)] = f
    head["exts"] = exts
    if not roundtrip:
        head["raw"] = raw.hex()
    return head


# ---------------------------------------------------------------------------------------------
# the conversation


def addr(t: ExtType, a: str, plen: int | None = None, proto: int = 255) -> Address:
    ip = ipaddress.ip_address(a)
    return Address(t, ip, 0, ip.max_prefixlen if plen is None else plen, proto)


def sa_msg(mtype: int, spi: int, src: str, dst: str, **kw: Any) -> Message:
    """An SA with HMAC-SHA1 and 3DES; ``sa2=False`` leaves X_SA2 out, ``proxy`` adds one."""
    m = Message(mtype, SaType.ESP)
    m.add(SA(spi=spi, replay=kw.get("replay", 0), state=0, auth=AuthAlg.SHA1HMAC,
             encrypt=EncAlg.THREEDESCBC))  # fmt: skip
    if kw.get("sa2", True):
        m.add(SA2(mode=kw.get("mode", Mode.TRANSPORT), reqid=kw.get("reqid", 0)))
    m.add(addr(ExtType.ADDRESS_SRC, src))
    m.add(addr(ExtType.ADDRESS_DST, dst))
    if kw.get("proxy"):
        m.add(addr(ExtType.ADDRESS_PROXY, *kw["proxy"]))
    if kw.get("lifetimes"):
        soft, hard = kw["lifetimes"]
        m.add(Lifetime(ExtType.LIFETIME_HARD, addtime=hard))
        m.add(Lifetime(ExtType.LIFETIME_SOFT, addtime=soft))
    m.add(Key(ExtType.KEY_AUTH, kw.get("key_a", KEY_A)))
    m.add(Key(ExtType.KEY_ENCRYPT, kw.get("key_e", KEY_E)))
    return m


def sa_id(mtype: int, spi: int, src: str, dst: str) -> Message:
    m = Message(mtype, SaType.ESP)
    m.add(SA(spi=spi))
    m.add(addr(ExtType.ADDRESS_SRC, src))
    m.add(addr(ExtType.ADDRESS_DST, dst))
    return m


def spd_msg(
    mtype: int,
    src: str,
    dst: str,
    direction: int,
    reqs: list[IpsecRequest],
    *,
    ptype: int = PolicyType.IPSEC,
    priority: int = 0,
    proto: int = 255,
    dst_proto: int | None = None,
    plen: int | None = None,
    pid: int = 0,
    lifetime: int = 0,
) -> Message:
    m = Message(mtype, SaType.UNSPEC)
    m.add(addr(ExtType.ADDRESS_SRC, src, plen, proto))
    m.add(addr(ExtType.ADDRESS_DST, dst, plen, proto if dst_proto is None else dst_proto))
    if lifetime:
        m.add(Lifetime(ExtType.LIFETIME_HARD, addtime=lifetime))
    m.add(Policy(ptype, direction, pid, priority, reqs))
    return m


def req(level: int, reqid: int = 0, mode: int = Mode.TRANSPORT, proto: int = 50,
        src: str | None = None, dst: str | None = None) -> IpsecRequest:  # fmt: skip
    r = IpsecRequest(proto=proto, mode=mode, level=level, reqid=reqid)
    if src is not None and dst is not None:
        r.src, r.dst = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    return r


def conversation(k: Kernel) -> list[dict]:
    names = Names()
    chosen = {0x1001, 0x1002, 0x1003, 0x1004, 0x1005, 0x1006, 0x1007, 0x1008, 0x1009, 0x100A,
              0x100B, 0x100C, 0x100D, 0x2001}  # fmt: skip
    steps: list[dict] = []

    def step(label: str, who: str, msg: Message | None, after: Any = None) -> list[bytes]:
        if msg is not None:
            k.send(who, msg)
        if after is not None:
            after()
        got = k.collect()
        steps.append({"step": label, "got": [normalise(w, r, k, names, chosen) for w, r in got]})
        return [r for _, r in got]

    def acquire_seq(raw: list[bytes]) -> int:
        """The kernel's seq of the ACQUIRE among ``raw`` (0 if there is none)."""
        msgs = [pfkey.decode(r) for r in raw]
        return next((m.seq for m in msgs if m.type == MsgType.ACQUIRE), 0)

    step("REGISTER ESP (s)", "s", Message(MsgType.REGISTER, SaType.ESP))
    step("REGISTER ESP (l)", "l", Message(MsgType.REGISTER, SaType.ESP))
    step("REGISTER ESP again (s)", "s", Message(MsgType.REGISTER, SaType.ESP))
    g = Message(MsgType.GETSPI, SaType.ESP)
    g.add(SA2(mode=Mode.TRANSPORT, reqid=0))
    g.add(addr(ExtType.ADDRESS_SRC, B)).add(addr(ExtType.ADDRESS_DST, A))
    g.add(SpiRange(0x3000, 0x3000))
    step("GETSPI in a one-SPI range", "s", g)
    step("UPDATE the larval SA", "s", sa_msg(MsgType.UPDATE, 0x3000, B, A))
    step("ADD", "s", sa_msg(MsgType.ADD, 0x1001, A, B, reqid=7))
    step("ADD the same again (EEXIST)", "s", sa_msg(MsgType.ADD, 0x1001, A, B))
    step("ADD IPv6 tunnel", "s", sa_msg(MsgType.ADD, 0x1002, A6, B6, mode=Mode.TUNNEL))
    step("ADD without X_SA2, replay 64", "s",
         sa_msg(MsgType.ADD, 0x1004, A, B, sa2=False, replay=64))  # fmt: skip
    step("ADD mode any, replay 4", "s",
         sa_msg(MsgType.ADD, 0x1005, B, A, mode=Mode.ANY, replay=4))  # fmt: skip
    step("ADD with a proxy address", "s",
         sa_msg(MsgType.ADD, 0x1006, A, B, proxy=("10.9.0.0", 24)))  # fmt: skip
    flagged = sa_msg(MsgType.ADD, 0x1008, B, A)
    assert flagged.sa is not None
    flagged.sa.flags = 0x80000040  # NOECN, and KAME's CYCSEQ
    step("ADD with SA flags noecn and cyclic-seq", "s", flagged)
    step("GET", "s", sa_id(MsgType.GET, 0x1001, A, B))
    step("GET a missing SA (ESRCH)", "s", sa_id(MsgType.GET, 0x9999, A, B))
    step("GET with another source address", "s", sa_id(MsgType.GET, 0x1001, "10.9.0.9", B))
    rekeyed = sa_msg(MsgType.UPDATE, 0x1001, A, B, reqid=7, lifetimes=(100, 200), key_a=KEY_A2)
    step("UPDATE a mature SA: other keys and lifetimes", "s", rekeyed)
    step("GET after the mature UPDATE", "s", sa_id(MsgType.GET, 0x1001, A, B))
    taken = Message(MsgType.GETSPI, SaType.ESP)
    taken.add(addr(ExtType.ADDRESS_SRC, A)).add(addr(ExtType.ADDRESS_DST, B))
    taken.add(SpiRange(0x1001, 0x1001))
    step("GETSPI for an SPI in use", "s", taken)
    step("DUMP", "s", Message(MsgType.DUMP, SaType.ESP))
    step("DELETE", "s", sa_id(MsgType.DELETE, 0x1001, A, B))
    step("DELETE again (ESRCH)", "s", sa_id(MsgType.DELETE, 0x1001, A, B))
    no_sa = sa_id(MsgType.DELETE, 0, A, B)
    del no_sa.extensions[ExtType.SA]
    step("DELETE without an SA extension", "s", no_sa)
    hard_only = sa_msg(MsgType.ADD, 0x1009, A, B)
    hard_only.add(Lifetime(ExtType.LIFETIME_HARD, addtime=100))
    step("ADD with a hard lifetime only", "s", hard_only)
    keyless = sa_msg(MsgType.ADD, 0x100A, A, B)
    assert keyless.sa is not None
    keyless.sa.encrypt = EncAlg.NULL
    del keyless.extensions[ExtType.KEY_ENCRYPT]
    step("ADD ESP null without KEY_ENCRYPT", "s", keyless)
    step("ADD with a 64-bit HMAC-SHA1 key", "s",
         sa_msg(MsgType.ADD, 0x100B, A, B, key_a=b"8 bytes!"))  # fmt: skip
    step("ADD with a 128-bit 3DES key", "s",
         sa_msg(MsgType.ADD, 0x100C, A, B, key_e=b"sixteen bytes!!!"))  # fmt: skip
    keyed_md5 = sa_msg(MsgType.ADD, 0x100D, A, B, key_a=b"sixteen bytes!!!")
    assert keyed_md5.sa is not None
    keyed_md5.sa.auth = AuthAlg.MD5  # KAME's keyed-md5, 249
    step("ADD with keyed-md5", "s", keyed_md5)
    step("FLUSH", "s", Message(MsgType.FLUSH, SaType.ESP))
    step("DUMP an empty SAD", "s", Message(MsgType.DUMP, SaType.ESP))
    step("FLUSH an empty SAD", "s", Message(MsgType.FLUSH, SaType.ESP))

    step("ADD with soft 1 s / hard 2 s", "s", sa_msg(MsgType.ADD, 0x1003, A, B, lifetimes=(1, 2)))
    step("soft and hard EXPIRE", "s", None, after=lambda: k.wait(3))

    out, inb, fwd = Direction.OUTBOUND, Direction.INBOUND, Direction.FWD
    add = MsgType.X_SPDADD
    step("SPDADD out require", "s", spd_msg(add, A, B, out, [req(Level.REQUIRE, reqid=9)]))
    step("SPDADD in use", "s", spd_msg(add, B, A, inb, [req(Level.USE)]))
    step("SPDADD fwd default", "s", spd_msg(add, B, A, fwd, [req(Level.DEFAULT)]))
    step("SPDADD out unique reqid 5", "s",
         spd_msg(add, A6, B6, out, [req(Level.UNIQUE, reqid=5)]))  # fmt: skip
    step("SPDADD out unique reqid 0 (generated)", "s",
         spd_msg(add, A6, B6, out, [req(Level.UNIQUE)], proto=17))  # fmt: skip
    step("SPDADD out unique reqid 0x5000 (over the manual range)", "s",
         spd_msg(add, A6, B6, out, [req(Level.UNIQUE, reqid=0x5000)], proto=6))  # fmt: skip
    step("SPDADD tunnel v4 bundle ah+esp", "s",
         spd_msg(add, "192.168.1.0", "192.168.2.0", out,
                 [req(Level.REQUIRE, mode=Mode.TUNNEL, proto=51, src=A, dst=B),
                  req(Level.REQUIRE, mode=Mode.TUNNEL, src=A, dst=B)],
                 plen=24, priority=0x80000000))  # fmt: skip
    step("SPDADD tunnel v6", "s",
         spd_msg(add, "fd01::", "fd02::", out,
                 [req(Level.UNIQUE, reqid=3, mode=Mode.TUNNEL, src=A6, dst=B6)],
                 plen=64))  # fmt: skip
    step("SPDADD discard", "s", spd_msg(add, A, "10.9.0.3", out, [], ptype=PolicyType.DISCARD))
    step("SPDADD none (bypass)", "s", spd_msg(add, A, "10.9.0.4", out, [], ptype=PolicyType.NONE))
    step("SPDADD the same again (EEXIST)", "s",
         spd_msg(add, A, B, out, [req(Level.REQUIRE)]))  # fmt: skip
    step("SPDADD mode 0 (EINVAL)", "s", spd_msg(add, A, B, inb, [req(Level.REQUIRE, mode=0)]))
    step("SPDADD upper-layer protocol 0", "s",
         spd_msg(add, A, "10.9.0.7", out, [req(Level.REQUIRE)], proto=0))  # fmt: skip
    step("SPDADD source tcp, destination udp", "s",
         spd_msg(add, A, "10.9.0.8", out, [req(Level.REQUIRE)], proto=6, dst_proto=17))  # fmt: skip
    step("SPDUPDATE out require -> use", "s",
         spd_msg(MsgType.X_SPDUPDATE, A, B, out, [req(Level.USE)]))  # fmt: skip
    step("SPDGET id 1", "s", spd_msg(MsgType.X_SPDGET, A, B, out, [], pid=1))
    step("SPDDUMP", "s", Message(MsgType.X_SPDDUMP))
    step("SPDDELETE by selector", "s", spd_msg(MsgType.X_SPDDELETE, B, A, inb, []))
    step("SPDDELETE2 by id 18", "s", spd_msg(MsgType.X_SPDDELETE2, B, A, fwd, [], pid=18))
    step("SPDDELETE a missing policy (ENOENT)", "s", spd_msg(MsgType.X_SPDDELETE, B, A, inb, []))
    step("SPDFLUSH", "s", Message(MsgType.X_SPDFLUSH))
    step("SPDDUMP an empty SPD", "s", Message(MsgType.X_SPDDUMP))
    step("SPDFLUSH an empty SPD", "s", Message(MsgType.X_SPDFLUSH))

    step("SPDADD with a 2 s lifetime", "s",
         spd_msg(add, A, "10.9.0.5", out, [req(Level.REQUIRE)], lifetime=2))  # fmt: skip
    step("SPDEXPIRE", "s", None, after=lambda: k.wait(3))
    step("SPDDUMP after the policy's lifetime", "s", Message(MsgType.X_SPDDUMP))
    step("SPDADD out require udp", "s",
         spd_msg(add, A, "10.9.0.6", out, [req(Level.REQUIRE)], proto=17))  # fmt: skip
    step("SPDADD out require to .10", "s",
         spd_msg(add, A, "10.9.0.10", out, [req(Level.REQUIRE)]))  # fmt: skip
    k.add_socket("p", 3000)
    step("REGISTER AH (p, a third socket)", "p", Message(MsgType.REGISTER, SaType.AH))
    step("a packet: ACQUIRE", "s", None, after=lambda: k.packet(A, "10.9.0.6", 40001, 5000))
    step("a packet of another flow: no second ACQUIRE", "s", None,
         after=lambda: k.packet(A, "10.9.0.6", 40009, 5000))  # fmt: skip
    ten = acquire_seq(step("a packet to .10: ACQUIRE", "s", None,
                           after=lambda: k.packet(A, "10.9.0.10", 40002, 5000)))  # fmt: skip
    step("DUMP after the ACQUIREs", "s", Message(MsgType.DUMP, SaType.ESP))
    step("ADD the SA the first ACQUIRE asked for", "s",
         sa_msg(MsgType.ADD, 0x1007, A, "10.9.0.6"))  # fmt: skip
    failed = Message(MsgType.ACQUIRE, SaType.ESP, 22, ten)
    step("ACQUIRE with errno: negotiation failed (l)", "l", failed)
    step("ACQUIRE without errno (l)", "l", Message(MsgType.ACQUIRE, SaType.ESP, 0, ten))
    step("a packet to .10 after the failure, same flow: no ACQUIRE", "s", None,
         after=lambda: k.packet(A, "10.9.0.10", 40002, 5000))  # fmt: skip
    step("a packet to .10 after the failure, another flow: ACQUIRE", "s", None,
         after=lambda: k.packet(A, "10.9.0.10", 40003, 5000))  # fmt: skip
    step("DUMP after the failure", "s", Message(MsgType.DUMP, SaType.ESP))
    step("X_PROMISC on (p)", "p", Message(MsgType.X_PROMISC, 1))
    step("SPDGET while p is promiscuous", "s", spd_msg(MsgType.X_SPDGET, A, B, out, [], pid=1))
    step("SPDFLUSH at the end", "s", Message(MsgType.X_SPDFLUSH))
    step("FLUSH at the end", "s", Message(MsgType.FLUSH, SaType.UNSPEC))
    return steps


def main(argv: list[str]) -> int:
    mode = argv[0]
    path = argv[1] if mode == "sim" else None
    outfile = argv[-1]
    k = Kernel(mode, path)
    with open(outfile, "w") as f:
        json.dump(conversation(k), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
