"""Traffic selectors and phase-2 requests: what a quick mode is for (RFC 2409 5.5, IDci/IDcr).

Shared by the SPD cache (:mod:`.spd`), quick mode (:mod:`.quick`) and the dispatcher, so that
none of them needs another for these types.  The protocol maps name the same thing in ISAKMP
(``ProtocolID``) and in the kernel vocabulary (``ops.Proto``, :mod:`pyracoon.kernel.ops`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pyracoon.kernel import ops
from pyracoon.wire import Identification, WireError
from pyracoon.wire.constants import EncapsulationMode, IDType, ProtocolID

from .errors import AttributesNotSupported, InvalidIdInformation
from .proposals import ProtocolOffer

#: An ISAKMP protocol as the kernel names the SAs of it.
KERNEL_PROTO: dict[int, ops.Proto] = {
    ProtocolID.IPSEC_ESP: ops.Proto.ESP,
    ProtocolID.IPSEC_AH: ops.Proto.AH,
    ProtocolID.IPCOMP: ops.Proto.IPCOMP,
}
PROTOCOL_OF_KERNEL: dict[ops.Proto, ProtocolID] = {
    ops.Proto.ESP: ProtocolID.IPSEC_ESP,
    ops.Proto.AH: ProtocolID.IPSEC_AH,
    ops.Proto.IPCOMP: ProtocolID.IPCOMP,
}
ENCAP_OF_MODE: dict[ops.Mode, EncapsulationMode] = {
    ops.Mode.TUNNEL: EncapsulationMode.TUNNEL,
    ops.Mode.TRANSPORT: EncapsulationMode.TRANSPORT,
}
#: An ISAKMP encapsulation mode as the kernel's SA mode (UDP encapsulation is the SA's NAT-T
#: setting, not a mode of its own).
KERNEL_MODE: dict[int, ops.Mode] = {
    EncapsulationMode.TUNNEL: ops.Mode.TUNNEL,
    EncapsulationMode.TRANSPORT: ops.Mode.TRANSPORT,
    EncapsulationMode.UDP_ENCAPSULATED_TUNNEL: ops.Mode.TUNNEL,
    EncapsulationMode.UDP_ENCAPSULATED_TRANSPORT: ops.Mode.TRANSPORT,
}


#: Destinations no IKE peer can have, and how the log names them. An SPD entry as wide as
#: ``spdadd ::/0 ::/0 any`` also covers multicast (neighbour and router discovery, mDNS),
#: broadcasts, link-local neighbours (whose address means nothing without an interface, which
#: a remote block cannot name) and the unspecified address; an ACQUIRE for them must not start
#: a phase 1 that would retransmit to them for nothing. IPv4 169.254/16 is not here: those are
#: unicast addresses a peer can have.
NOT_A_PEER: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("0.0.0.0/32"), "the unspecified address"),
    (ipaddress.ip_network("::/128"), "the unspecified address"),
    (ipaddress.ip_network("255.255.255.255/32"), "the broadcast address"),
    (ipaddress.ip_network("224.0.0.0/4"), "a multicast address"),
    (ipaddress.ip_network("ff00::/8"), "a multicast address"),
    (ipaddress.ip_network("fe80::/10"), "an IPv6 link-local address"),
)


def not_a_peer(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``addr`` cannot be an IKE peer (a phrase for the log), or None when it can."""
    for net, what in NOT_A_PEER:
        if addr.version == net.version and addr in net:
            return what
    return None


@dataclass(frozen=True)
class Selector:
    """One side of a traffic selector: network, upper-layer protocol (255 any) and port."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    proto: int = 255
    port: int = 0

    def id_payload(self) -> Identification:
        """ID_IPV*_ADDR for a host, ID_IPV*_ADDR_SUBNET otherwise (racoon.conf(5): sainfo)."""
        net = self.network
        proto = 0 if self.proto == 255 else self.proto
        if net.prefixlen == net.max_prefixlen:
            t = IDType.IPV4_ADDR if net.version == 4 else IDType.IPV6_ADDR
            return Identification(t, net.network_address.packed, proto, self.port)
        t = IDType.IPV4_ADDR_SUBNET if net.version == 4 else IDType.IPV6_ADDR_SUBNET
        return Identification(t, net.network_address.packed + net.netmask.packed, proto, self.port)

    @classmethod
    def from_id(cls, p: Identification) -> Selector:
        """The selector an IDci/IDcr payload names (protocol 0 means any)."""
        proto = 255 if p.protocol_id == 0 else p.protocol_id
        if p.id_type in (IDType.IPV4_ADDR, IDType.IPV6_ADDR):
            return cls(ipaddress.ip_network(p.address), proto, p.port)
        if p.id_type in (IDType.IPV4_ADDR_SUBNET, IDType.IPV6_ADDR_SUBNET):
            try:
                network = p.network
            except (WireError, ValueError) as exc:
                raise InvalidIdInformation(f"unusable quick-mode ID: {exc}") from None
            return cls(network, proto, p.port)
        raise AttributesNotSupported(f"quick-mode ID of type {IDType(p.id_type)} is not supported")

    def __str__(self) -> str:
        return f"{self.network}[{self.port or 'any'}] proto={self.proto}"

    def kernel(self) -> ops.Selector:
        """This selector in the kernel vocabulary (a policy's source or destination)."""
        return ops.Selector(self.network, self.proto, self.port)

    @classmethod
    def of_kernel(cls, sel: ops.Selector) -> Selector:
        """A kernel policy's selector as the engine compares and sends it."""
        return cls(sel.network, sel.proto, sel.port)


@dataclass
class Request:
    """What a quick mode is for: selectors (from our side's view), protocols, reqids."""

    local: Selector
    remote: Selector
    offers: list[ProtocolOffer]
    policy_id: int = 0
    acquire_seq: int = 0
    tunnel: bool = False
    #: The established quick mode this request rekeys (a soft EXPIRE): once the new one is in,
    #: the old one's SAs are deleted on both sides (quick.py, REKEY_DELETE_DELAY).
    replaces: object = None


__all__ = [
    "ENCAP_OF_MODE", "KERNEL_MODE", "KERNEL_PROTO", "NOT_A_PEER", "PROTOCOL_OF_KERNEL", "Request",
    "Selector", "not_a_peer",
]  # fmt: skip
