"""The local addresses to listen on when racoon.conf has no ``listen`` block.

racoon binds one ISAKMP socket per interface address rather than one wildcard socket, because
the engine must know which of our addresses a datagram came to (it goes into IDs, NAT-D hashes
and the SA endpoints). We do the same. Python's standard library has no getifaddrs(), so on
Linux the addresses come from /proc: ``/proc/net/if_inet6`` for IPv6 and the LOCAL host routes
of ``/proc/net/fib_trie`` for IPv4. Elsewhere the only addresses found are those the host name
resolves to, plus loopback; a ``listen`` block is the reliable way there, and the daemon says so.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _linux_ipv6() -> list[IPAddress]:
    out: list[IPAddress] = []
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as f:
            for line in f:
                fields = line.split()
                if not fields:
                    continue
                addr = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
                scope = int(fields[3], 16)
                if scope == 0x20:  # link-local needs a scope id; racoon skips those without one
                    continue
                out.append(addr)
    except OSError:
        pass
    return out


def _linux_ipv4() -> list[IPAddress]:
    found: list[IPAddress] = []
    try:
        with open("/proc/net/fib_trie", encoding="ascii") as f:
            last: str | None = None
            for line in f:
                text = line.strip()
                if text.startswith("|--"):
                    last = text[3:].strip()
                elif text.startswith("/32 host LOCAL") and last is not None:
                    addr = ipaddress.IPv4Address(last)
                    if addr not in found:
                        found.append(addr)
    except (OSError, ValueError):
        pass
    return found


def local_addresses(family: int | None = None) -> list[IPAddress]:
    """Every unicast address of this host, IPv4 first, optionally of one family only."""
    addrs = _linux_ipv4() + _linux_ipv6()
    if not addrs:
        addrs = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
        try:
            for info in socket.getaddrinfo(socket.gethostname(), None):
                a = ipaddress.ip_address(str(info[4][0]).split("%")[0])
                if a not in addrs:
                    addrs.append(a)
        except OSError:
            pass
    if family == socket.AF_INET:
        return [a for a in addrs if a.version == 4]
    if family == socket.AF_INET6:
        return [a for a in addrs if a.version == 6]
    return addrs
