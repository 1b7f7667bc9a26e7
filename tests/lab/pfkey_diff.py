"""One PF_KEY conversation, played against a kernel; what came back, as comparable JSON.

Run inside the kernel lab, once against Linux's own ``af_key`` (``real``) and once against a
``pyracoon-kernel`` (``sim PATH``); ``test_lab_pfkey_diff.py`` compares the two transcripts
field by field. The requests are built with our codec, but every message that comes *back* is
checked to re-encode to exactly the bytes the kernel sent (so the decoder saw every byte), and
the comparison is of the decoded fields, with only what is random or time-dependent masked:
SPIs the kernel chose are named in order of appearance, add/use times become ``"t"``, pids are
named by socket, an ACQUIRE's kernel sequence number is masked.

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


class Kernel:
    """Two sockets on one kernel: ``s`` sends requests, ``l`` listens (registered for ESP)."""

    def __init__(self, mode: str, path: str | None) -> None:
        self.mode = mode
        self.path = path
        self.socks = {"s": self._open(), "l": self._open()}
        self.pids = {"s": 1000, "l": 2000}
        self.seq = 0

    def _open(self) -> socket.socket:
        if self.mode == "real":
            return socket.socket(AF_KEY, socket.SOCK_RAW, 2)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(self.path)
        return s

    def send(self, who: str, msg: Message) -> None:
        self.seq += 1
        msg.seq = self.seq
        msg.pid = self.pids[who]
        self.socks[who].send(pfkey.encode(msg))

    def collect(self, quiet: float = 0.25, limit: float = 5.0) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            ready, _, _ = select.select(list(self.socks.values()), [], [], quiet)
            if not ready:
                break
            for who, s in self.socks.items():
                if s in ready:
                    out.append((who, s.recv(1 << 19)))
        return out

    def packet(self, src: str, dst: str, dport: int) -> None:
        """A UDP packet from ``src`` to ``dst``: the real thing, or the simulator's control op."""
        if self.mode == "real":
            fam = socket.AF_INET6 if ":" in src else socket.AF_INET
            with socket.socket(fam, socket.SOCK_DGRAM) as u:
                u.bind((src, 0))
                try:
                    u.sendto(b"x", (dst, dport))
                except OSError:
                    pass  # the policy may drop it; the ACQUIRE is what counts
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as c:
            c.connect(self.path)
            req = {"op": "output", "src": src, "dst": dst, "proto": 17, "dport": dport}
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
    m = Message(mtype, SaType.ESP)
    m.add(SA(spi=spi, replay=kw.get("replay", 0), state=0, auth=AuthAlg.SHA1HMAC,
             encrypt=EncAlg.THREEDESCBC))  # fmt: skip
    m.add(SA2(mode=kw.get("mode", Mode.TRANSPORT), reqid=kw.get("reqid", 0)))
    m.add(addr(ExtType.ADDRESS_SRC, src))
    m.add(addr(ExtType.ADDRESS_DST, dst))
    if kw.get("lifetimes"):
        soft, hard = kw["lifetimes"]
        m.add(Lifetime(ExtType.LIFETIME_HARD, addtime=hard))
        m.add(Lifetime(ExtType.LIFETIME_SOFT, addtime=soft))
    m.add(Key(ExtType.KEY_AUTH, KEY_A))
    m.add(Key(ExtType.KEY_ENCRYPT, KEY_E))
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
    plen: int | None = None,
    pid: int = 0,
    lifetime: int = 0,
) -> Message:
    m = Message(mtype, SaType.UNSPEC)
    m.add(addr(ExtType.ADDRESS_SRC, src, plen, proto))
    m.add(addr(ExtType.ADDRESS_DST, dst, plen, proto))
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
    chosen = {0x1001, 0x1002, 0x1003, 0x2001}
    steps: list[dict] = []

    def step(label: str, who: str, msg: Message | None, after: Any = None) -> None:
        if msg is not None:
            k.send(who, msg)
        if after is not None:
            after()
        got = k.collect()
        steps.append({"step": label, "got": [normalise(w, r, k, names, chosen) for w, r in got]})

    step("REGISTER ESP (s)", "s", Message(MsgType.REGISTER, SaType.ESP))
    step("REGISTER ESP (l)", "l", Message(MsgType.REGISTER, SaType.ESP))
    g = Message(MsgType.GETSPI, SaType.ESP)
    g.add(SA2(mode=Mode.TRANSPORT, reqid=0))
    g.add(addr(ExtType.ADDRESS_SRC, B)).add(addr(ExtType.ADDRESS_DST, A))
    g.add(SpiRange(0x3000, 0x3000))
    step("GETSPI in a one-SPI range", "s", g)
    step("UPDATE the larval SA", "s", sa_msg(MsgType.UPDATE, 0x3000, B, A))
    step("ADD", "s", sa_msg(MsgType.ADD, 0x1001, A, B, reqid=7))
    step("ADD the same again (EEXIST)", "s", sa_msg(MsgType.ADD, 0x1001, A, B))
    step("ADD IPv6 tunnel", "s", sa_msg(MsgType.ADD, 0x1002, A6, B6, mode=Mode.TUNNEL))
    step("GET", "s", sa_id(MsgType.GET, 0x1001, A, B))
    step("GET a missing SA (ESRCH)", "s", sa_id(MsgType.GET, 0x9999, A, B))
    step("DUMP", "s", Message(MsgType.DUMP, SaType.ESP))
    step("DELETE", "s", sa_id(MsgType.DELETE, 0x1001, A, B))
    step("DELETE again (ESRCH)", "s", sa_id(MsgType.DELETE, 0x1001, A, B))
    step("FLUSH", "s", Message(MsgType.FLUSH, SaType.ESP))
    step("DUMP an empty SAD", "s", Message(MsgType.DUMP, SaType.ESP))

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
    step("SPDUPDATE out require -> use", "s",
         spd_msg(MsgType.X_SPDUPDATE, A, B, out, [req(Level.USE)]))  # fmt: skip
    step("SPDGET id 1", "s", spd_msg(MsgType.X_SPDGET, A, B, out, [], pid=1))
    step("SPDDUMP", "s", Message(MsgType.X_SPDDUMP))
    step("SPDDELETE by selector", "s", spd_msg(MsgType.X_SPDDELETE, B, A, inb, []))
    step("SPDDELETE2 by id 18", "s", spd_msg(MsgType.X_SPDDELETE2, B, A, fwd, [], pid=18))
    step("SPDDELETE a missing policy (ENOENT)", "s", spd_msg(MsgType.X_SPDDELETE, B, A, inb, []))
    step("SPDFLUSH", "s", Message(MsgType.X_SPDFLUSH))
    step("SPDDUMP an empty SPD", "s", Message(MsgType.X_SPDDUMP))

    step("SPDADD with a 2 s lifetime", "s",
         spd_msg(add, A, "10.9.0.5", out, [req(Level.REQUIRE)], lifetime=2))  # fmt: skip
    step("SPDEXPIRE", "s", None, after=lambda: k.wait(3))
    step("SPDADD out require udp", "s",
         spd_msg(add, A, "10.9.0.6", out, [req(Level.REQUIRE)], proto=17))  # fmt: skip
    step("a packet: ACQUIRE", "s", None, after=lambda: k.packet(A, "10.9.0.6", 5000))
    step("SPDFLUSH at the end", "s", Message(MsgType.X_SPDFLUSH))
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
