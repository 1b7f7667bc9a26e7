"""Run one Engine over a real UDP socket (for the strongSwan interop test).

Usage: python udp_driver.py CONF_FILE LOCAL PEER SECONDS [--initiate] [--psk SECRET]
                            [--tunnel LOCAL_NET PEER_NET] [--linger SECONDS]

The host's kernel is an InMemoryKernel holding a transport-mode ESP policy between LOCAL and
PEER; with --initiate a packet to PEER provokes the ACQUIRE.  Prints one JSON object: the log
lines, the kernel's ESP SAs (keys in hex) and whether a phase-2 SA was established.  This is a
test fixture, not the daemon: a blocking loop with one socket and ``select`` on the engine's
next timer.
"""

from __future__ import annotations

import ipaddress
import json
import select
import socket
import sys
import time

from pyracoon.config import parse_file
from pyracoon.engine import (
    DatagramOut,
    Engine,
    KernelRequest,
    LogEvent,
    NegotiationFailed,
    Phase2Established,
    PskTable,
)
from pyracoon.kernel import pfkey
from pyracoon.kernel.memory import InMemoryKernel
from pyracoon.kernel.sadb import Direction, ExtType, Level, Mode, MsgType, SaType


def esp_sas(kernel: InMemoryKernel) -> list[dict[str, object]]:
    return [
        {
            "spi": e.spi,
            "src": str(e.src.addr),
            "dst": str(e.dst.addr),
            "enc": e.encrypt,
            "mode": int(e.mode),
            "auth": e.auth,
            "ekey": e.key_encrypt.key.hex() if e.key_encrypt else "",
            "akey": e.key_auth.key.hex() if e.key_auth else "",
            "state": int(e.state),
        }
        for e in kernel.sad.values()
        if e.satype == SaType.ESP
    ]


def main(argv: list[str]) -> int:
    conf, local, peer, seconds = argv[0], argv[1], argv[2], float(argv[3])
    initiate = "--initiate" in argv
    psk = argv[argv.index("--psk") + 1] if "--psk" in argv else "interop-test-psk"
    la, pa = ipaddress.ip_address(local), ipaddress.ip_address(peer)
    kernel = InMemoryKernel()
    sock = kernel.open()
    tunnel = None
    if "--tunnel" in argv:
        i = argv.index("--tunnel")
        tunnel = (ipaddress.ip_network(argv[i + 1]), ipaddress.ip_network(argv[i + 2]))
    for direction in (Direction.OUTBOUND, Direction.INBOUND):
        out = direction == Direction.OUTBOUND
        if tunnel is None:
            src_net = ipaddress.ip_network(la if out else pa)
            dst_net = ipaddress.ip_network(pa if out else la)
            req = pfkey.IpsecRequest(50, Mode.TRANSPORT, Level.REQUIRE, 0)
        else:
            src_net, dst_net = tunnel if out else (tunnel[1], tunnel[0])
            a, b = (la, pa) if out else (pa, la)
            req = pfkey.IpsecRequest(50, Mode.TUNNEL, Level.REQUIRE, 0, a, b)
        msg = pfkey.Message(MsgType.X_SPDADD, 0, seq=1, pid=99)
        msg.add(pfkey.Policy(2, direction, 0, 0, [req]))
        src_a, dst_a = src_net.network_address, dst_net.network_address
        msg.add(pfkey.Address(ExtType.ADDRESS_SRC, src_a, 0, src_net.prefixlen, 255))
        msg.add(pfkey.Address(ExtType.ADDRESS_DST, dst_a, 0, dst_net.prefixlen, 255))
        sock.send(msg)
    engine = Engine(parse_file(conf), pid=4242, psk=PskTable({peer: psk}))
    udp = socket.socket(socket.AF_INET6 if la.version == 6 else socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((local, 500))
    logs: list[str] = []
    pending_snapshot: list[bool] = []
    result: dict[str, object] = {"established": False, "failed": [], "sas": []}
    engine.start(time.time())

    def drain() -> None:
        moved = True
        while moved:
            moved = False
            for ev in engine.events():
                moved = True
                if isinstance(ev, DatagramOut):
                    udp.sendto(ev.data, (str(ev.remote[0]), ev.remote[1]))
                elif isinstance(ev, KernelRequest):
                    sock.send(ev.msg)
                elif isinstance(ev, LogEvent):
                    logs.append(ev.render())
                elif isinstance(ev, Phase2Established):
                    result["established"] = True
                    pending_snapshot.append(True)
                elif isinstance(ev, NegotiationFailed):
                    result["failed"].append(ev.reason)  # type: ignore[union-attr]
            for msg in sock.pending():
                moved = True
                engine.receive_kernel(msg, time.time())
            if pending_snapshot and not moved:
                pending_snapshot.clear()
                result["sas"] = esp_sas(kernel)  # the SAs as installed, before any Delete

    end = time.time() + seconds
    drain()  # REGISTER and SPDDUMP first, so the ACQUIRE reaches the engine
    if initiate:
        if tunnel is None:
            kernel.output(local, peer, 17)
        else:
            kernel.output(str(tunnel[0].network_address + 1), str(tunnel[1].network_address + 1))
        drain()
    linger = float(argv[argv.index("--linger") + 1]) if "--linger" in argv else 0.0
    stop_at: float | None = None
    while time.time() < end and (stop_at is None or time.time() < stop_at):
        if result["established"] and stop_at is None:
            if not linger:
                break
            stop_at = time.time() + linger  # keep answering/probing (DPD) for a while
        nt = engine.next_timer()
        wait = max(0.0, min(end, nt if nt is not None else end) - time.time())
        ready, _, _ = select.select([udp], [], [], min(wait, 0.5))
        if ready:
            data, addr = udp.recvfrom(65535)
            engine.receive_datagram(
                data, (la, 500), (ipaddress.ip_address(addr[0]), addr[1]), time.time()
            )
        engine.handle_timer(time.time())
        drain()
    # give a final informational (e.g. a Delete) a moment to arrive
    deadline = time.time() + 0.3
    while time.time() < deadline:
        ready, _, _ = select.select([udp], [], [], 0.2)
        if ready:
            data, addr = udp.recvfrom(65535)
            engine.receive_datagram(
                data, (la, 500), (ipaddress.ip_address(addr[0]), addr[1]), time.time()
            )
            drain()
    result["final_sas"] = esp_sas(kernel)
    print(json.dumps({"logs": logs, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
