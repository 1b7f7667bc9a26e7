"""Two (or more) engines wired back to back in memory, each with its own simulated kernel.

The aioquic testing idea: datagrams an engine emits go into a list "in flight"; ``pump()``
delivers them (optionally dropping, duplicating or reordering through hooks), passes kernel
requests to each host's :class:`InMemoryKernel` and feeds the kernel's answers back, until
nothing moves.  Time is a fake clock advanced by ``advance()``; no sleeps.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from pyracoon.config import parse_string
from pyracoon.engine import (
    DatagramOut,
    Engine,
    KernelRequest,
    LogEvent,
    PskTable,
)
from pyracoon.kernel import ops, pfkey
from pyracoon.kernel.memory import InMemoryKernel, MemoryKernelSocket
from pyracoon.kernel.pfkey_codec import event_of, message_of
from pyracoon.kernel.sadb import Direction, ExtType, Level, Mode, MsgType, SaType

START = 1_800_000_000.0  # a fixed "now" (2027), so certificates made today are valid


@dataclass
class Clock:
    now: float = START


@dataclass
class Host:
    name: str
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    engine: Engine
    kernel: InMemoryKernel
    sock: MemoryKernelSocket
    logs: list[LogEvent] = field(default_factory=list)
    other_events: list[object] = field(default_factory=list)
    sent: list[pfkey.Message] = field(default_factory=list)
    """What the engine asked its kernel, for what the kernel does not keep as it was sent."""

    def event(self, msg: pfkey.Message) -> ops.Event:
        """A PF_KEY message from this host's kernel as the engine receives it."""
        return event_of(msg, self.sock.pid)

    def log_text(self) -> str:
        return "\n".join(e.render() for e in self.logs)

    def has_log(self, needle: str) -> bool:
        return any(needle in e.text for e in self.logs)

    def sas(self) -> list:
        return list(self.kernel.sad.values())

    def spdadd(
        self,
        src: str,
        dst: str,
        direction: int,
        proto: int = 50,
        mode: int = Mode.TRANSPORT,
        level: int = Level.REQUIRE,
        reqid: int = 0,
        tunnel: tuple[str, str] | None = None,
        ul: int = 255,
        bundle: list[int] | None = None,
    ) -> None:
        """One SPD entry; ``bundle`` lists several IPsec protocols (e.g. [108, 50])."""
        s, d = ipaddress.ip_network(src, strict=False), ipaddress.ip_network(dst, strict=False)
        reqs = []
        for p in bundle or [proto]:
            a = b = None
            if tunnel is not None:
                a, b = ipaddress.ip_address(tunnel[0]), ipaddress.ip_address(tunnel[1])
            reqs.append(pfkey.IpsecRequest(p, mode, level, reqid, a, b))
        msg = pfkey.Message(MsgType.X_SPDADD, 0, seq=1, pid=99)
        msg.add(pfkey.Policy(2, direction, 0, 0, reqs))
        msg.add(pfkey.Address(ExtType.ADDRESS_SRC, s.network_address, 0, s.prefixlen, ul))
        msg.add(pfkey.Address(ExtType.ADDRESS_DST, d.network_address, 0, d.prefixlen, ul))
        self.sock.send(msg)

    def transport_policy(self, peer: Host, **kw: object) -> None:
        me, them = str(self.address), str(peer.address)
        self.spdadd(me, them, Direction.OUTBOUND, **kw)  # type: ignore[arg-type]
        self.spdadd(them, me, Direction.INBOUND, **kw)  # type: ignore[arg-type]


class Net:
    """The wire between hosts, with hooks for loss, duplication and reordering."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.hosts: dict[object, Host] = {}
        self.in_flight: list[DatagramOut] = []
        self.delivered: list[DatagramOut] = []
        #: Called for each datagram about to be delivered: return the list to deliver instead.
        self.hook: Callable[[DatagramOut], list[DatagramOut]] | None = None

    def host(
        self,
        name: str,
        address: str,
        conf: str,
        psk: dict[str, str] | None = None,
        psk_source: object = None,
    ) -> Host:
        config = parse_string(conf)
        kernel = InMemoryKernel(clock=lambda: self.clock.now)
        sock = kernel.open()
        source = psk_source if psk_source is not None else PskTable(psk or {})
        engine = Engine(config, psk=source)
        h = Host(name, ipaddress.ip_address(address), engine, kernel, sock)
        self.hosts[h.address] = h
        engine.start(self.clock.now)
        return h

    def acquire(self, host: Host, dst: Host, proto: int = 17) -> None:
        """A packet from ``host`` to ``dst`` meets the SPD: ACQUIRE if no SA."""
        host.kernel.output(str(host.address), str(dst.address), proto)

    def _drain(self, h: Host) -> bool:
        moved = False
        for e in h.engine.events():
            moved = True
            if isinstance(e, DatagramOut):
                self.in_flight.append(e)
            elif isinstance(e, KernelRequest):
                h.sent.append(message_of(e.request, h.sock.pid))
                h.sock.submit(e.request)
            elif isinstance(e, LogEvent):
                h.logs.append(e)
            else:
                h.other_events.append(e)
        for msg in h.sock.pending():
            moved = True
            h.engine.receive_kernel(h.event(msg), self.clock.now)
        return moved

    def pump(self, limit: int = 200) -> None:
        for _ in range(limit):
            moved = False
            for h in list(self.hosts.values()):
                moved |= self._drain(h)
            if self.in_flight:
                moved = True
                batch, self.in_flight = self.in_flight, []
                for d in batch:
                    out = self.hook(d) if self.hook is not None else [d]
                    for x in out:
                        self.delivered.append(x)
                        target = self.hosts.get(x.remote[0])
                        if target is not None:
                            target.engine.receive_datagram(
                                x.data, x.remote, x.local, self.clock.now
                            )
            if not moved:
                return
        raise AssertionError("the hosts never went quiet")

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every engine timer on the way."""
        end = self.clock.now + seconds
        while True:
            due = [t for h in self.hosts.values() if (t := h.engine.next_timer()) is not None]
            nxt = min(due) if due else None
            if nxt is None or nxt > end:
                break
            self.clock.now = max(self.clock.now, nxt)
            for h in self.hosts.values():
                h.kernel.tick()
                h.engine.handle_timer(self.clock.now)
            self.pump()
        self.clock.now = end
        for h in self.hosts.values():
            h.kernel.tick()
            h.engine.handle_timer(self.clock.now)
        self.pump()


def esp_sas(h: Host) -> list:
    return [e for e in h.sas() if e.satype == SaType.ESP]
