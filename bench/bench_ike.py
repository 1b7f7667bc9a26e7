"""Throughput of pyracoon's hot paths, measured side by side in one run (not a test).

    .venv/bin/python bench/bench_ike.py            # about 20 s on two cores

What it prints, and what to look for:
- DH (MODP 2048, group 14): one shared-secret computation through ``cryptography``/OpenSSL
  against Python's ``pow()`` on the same numbers. The brief's rule -- never ``pow()`` on a hot
  path -- is worth the ratio printed here.
- A whole negotiation (main mode PSK + quick mode, AES, SHA-1, group 14) between two in-memory
  engines, each with its simulated kernel: negotiations per second, i.e. how many peers one
  core can key per second, crypto included.
- The codecs: PF_KEY ADD messages and ISAKMP main-mode messages, decoded and re-encoded.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable

from pyracoon.config import parse_string
from pyracoon.crypto.dh import generate_keypair
from pyracoon.crypto.groups import group_by_id as dh_group
from pyracoon.engine import DatagramOut, Engine, KernelRequest, PskTable
from pyracoon.kernel import pfkey
from pyracoon.kernel.memory import InMemoryKernel
from pyracoon.kernel.pfkey_codec import event_of
from pyracoon.kernel.sadb import AuthAlg, Direction, EncAlg, ExtType, Level, Mode, MsgType, SaType
from pyracoon.wire import decode_message, encode_message


def rate(fn: Callable[[], object], seconds: float = 2.0) -> float:
    """Calls per second of ``fn``, over about ``seconds``."""
    fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


# -- DH -------------------------------------------------------------------------------------


def bench_dh() -> list[tuple[str, float]]:
    g = dh_group(14)
    ours, theirs = generate_keypair(14), generate_keypair(14)
    peer_public = theirs.public_value
    x = ours.private_value
    y = int.from_bytes(peer_public, "big")
    p = g.prime

    def with_openssl() -> bytes:
        return ours.compute_shared_secret(peer_public)

    def with_pow() -> int:
        return pow(y, x, p)

    assert with_openssl() == with_pow().to_bytes(len(peer_public), "big")
    return [("DH group 14 shared secret, cryptography", rate(with_openssl)),
            ("DH group 14 shared secret, Python pow()", rate(with_pow))]  # fmt: skip


# -- a whole negotiation ----------------------------------------------------------------------

CONF = """
remote {peer} {{
    exchange_mode main;
    proposal {{ encryption_algorithm aes; hash_algorithm sha1;
               authentication_method pre_shared_key; dh_group 14; }}
}}
sainfo anonymous {{
    encryption_algorithm aes; authentication_algorithm hmac_sha1;
    compression_algorithm deflate;
}}
"""


class Host:
    def __init__(self, me: str, peer: str, clock: list[float]) -> None:
        self.kernel = InMemoryKernel(lambda: clock[0])
        self.sock = self.kernel.open()
        config = parse_string(CONF.format(peer=peer))
        self.engine = Engine(config, psk=PskTable({peer: "bench secret"}))
        for src, dst, direction in ((me, peer, Direction.OUTBOUND), (peer, me, Direction.INBOUND)):
            req = pfkey.IpsecRequest(50, Mode.TRANSPORT, Level.REQUIRE, 0)
            msg = pfkey.Message(MsgType.X_SPDADD, seq=1, pid=1)
            msg.add(pfkey.Policy(2, direction, 0, 0, [req]))
            msg.add(pfkey.Address(ExtType.ADDRESS_SRC, ipaddress.ip_address(src)))
            msg.add(pfkey.Address(ExtType.ADDRESS_DST, ipaddress.ip_address(dst)))
            self.sock.send(msg)
        self.engine.start(clock[0])


def pump(hosts: dict, clock: list[float]) -> None:
    for _ in range(200):
        moved = False
        for h in hosts.values():
            for e in h.engine.events():
                moved = True
                if isinstance(e, DatagramOut):
                    hosts[e.remote[0]].engine.receive_datagram(e.data, e.remote, e.local, clock[0])
                elif isinstance(e, KernelRequest):
                    h.sock.submit(e.request)
            for msg in h.sock.pending():
                moved = True
                h.engine.receive_kernel(event_of(msg, h.sock.pid), clock[0])
        if not moved:
            return


def negotiate_once(clock: list[float]) -> None:
    a = Host("10.0.0.1", "10.0.0.2", clock)
    b = Host("10.0.0.2", "10.0.0.1", clock)
    hosts = {ipaddress.ip_address("10.0.0.1"): a, ipaddress.ip_address("10.0.0.2"): b}
    pump(hosts, clock)  # REGISTER and SPDDUMP first, as the daemon does at start
    a.kernel.output("10.0.0.1", "10.0.0.2")
    pump(hosts, clock)
    sas = [e for e in b.kernel.sad.values() if e.satype == SaType.ESP]
    assert len(sas) == 2, "the benchmark negotiation did not finish"


def bench_negotiation() -> list[tuple[str, float]]:
    clock = [1_800_000_000.0]
    return [("main mode PSK + quick mode, two engines", rate(lambda: negotiate_once(clock), 4))]


# -- codecs -----------------------------------------------------------------------------------


def bench_codecs() -> list[tuple[str, float]]:
    add = pfkey.Message(MsgType.ADD, SaType.ESP, seq=1, pid=1)
    add.add(pfkey.SA(0x1234, 4, 0, AuthAlg.SHA1HMAC, EncAlg.AESCBC, 0))
    add.add(pfkey.SA2(Mode.TRANSPORT, 0, 0))
    add.add(pfkey.Address(ExtType.ADDRESS_SRC, ipaddress.ip_address("2001:db8::1")))
    add.add(pfkey.Address(ExtType.ADDRESS_DST, ipaddress.ip_address("2001:db8::2")))
    add.add(pfkey.Key(ExtType.KEY_ENCRYPT, os.urandom(16)))
    add.add(pfkey.Key(ExtType.KEY_AUTH, os.urandom(20)))
    add.add(pfkey.Lifetime(ExtType.LIFETIME_HARD, addtime=28800))
    data = pfkey.encode(add)

    clock = [1_800_000_000.0]
    a = Host("10.0.0.1", "10.0.0.2", clock)
    for e in a.engine.events():
        if isinstance(e, KernelRequest):
            a.sock.submit(e.request)
    for msg in a.sock.pending():
        a.engine.receive_kernel(event_of(msg, a.sock.pid), clock[0])
    a.kernel.output("10.0.0.1", "10.0.0.2")
    for msg in a.sock.pending():
        a.engine.receive_kernel(event_of(msg, a.sock.pid), clock[0])
    mm1 = next(e.data for e in a.engine.events() if isinstance(e, DatagramOut))
    pf = rate(lambda: pfkey.encode(pfkey.decode(data)))
    isakmp = rate(lambda: encode_message(decode_message(mm1)))
    return [("PF_KEY ADD decode + encode", pf), ("ISAKMP MM1 decode + encode", isakmp)]


def main() -> None:
    rows = bench_dh()
    print(f"{'what':48} {'per second':>12}")
    for name, r in rows + bench_negotiation() + bench_codecs():
        print(f"{name:48} {r:12.1f}")
    print(f"\ncryptography / pow() for DH: {rows[0][1] / rows[1][1]:.1f}x faster")


if __name__ == "__main__":
    main()
