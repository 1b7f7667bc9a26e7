"""Upper-layer protocol numbers and names: a built-in ``/etc/protocols``.

Both setkey's parser (``getprotobyname`` for an upper-layer spec) and the people-readable dumps
(``getprotobynumber``, :mod:`pyracoon.kernel.dump`) need it, and neither should depend on the
machine's netbase package: this is Debian's list, which is what a Linux setkey sees.
"""

from __future__ import annotations

_PROTOCOLS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("ip", 0, ("IP",)),
    ("hopopt", 0, ("HOPOPT",)),
    ("icmp", 1, ("ICMP",)),
    ("igmp", 2, ("IGMP",)),
    ("ggp", 3, ("GGP",)),
    ("ipencap", 4, ("IP-ENCAP",)),
    ("st", 5, ("ST",)),
    ("tcp", 6, ("TCP",)),
    ("egp", 8, ("EGP",)),
    ("igp", 9, ("IGP",)),
    ("pup", 12, ("PUP",)),
    ("udp", 17, ("UDP",)),
    ("hmp", 20, ("HMP",)),
    ("xns-idp", 22, ("XNS-IDP",)),
    ("rdp", 27, ("RDP",)),
    ("iso-tp4", 29, ("ISO-TP4",)),
    ("dccp", 33, ("DCCP",)),
    ("xtp", 36, ("XTP",)),
    ("ddp", 37, ("DDP",)),
    ("idpr-cmtp", 38, ("IDPR-CMTP",)),
    ("ipv6", 41, ("IPv6",)),
    ("ipv6-route", 43, ("IPv6-Route",)),
    ("ipv6-frag", 44, ("IPv6-Frag",)),
    ("idrp", 45, ("IDRP",)),
    ("rsvp", 46, ("RSVP",)),
    ("gre", 47, ("GRE",)),
    ("esp", 50, ("IPSEC-ESP",)),
    ("ah", 51, ("IPSEC-AH",)),
    ("skip", 57, ("SKIP",)),
    ("ipv6-icmp", 58, ("IPv6-ICMP",)),
    ("ipv6-nonxt", 59, ("IPv6-NoNxt",)),
    ("ipv6-opts", 60, ("IPv6-Opts",)),
    ("rspf", 73, ("RSPF", "CPHB")),
    ("vmtp", 81, ("VMTP",)),
    ("eigrp", 88, ("EIGRP",)),
    ("ospf", 89, ("OSPFIGP",)),
    ("ax.25", 93, ("AX.25",)),
    ("ipip", 94, ("IPIP",)),
    ("etherip", 97, ("ETHERIP",)),
    ("encap", 98, ("ENCAP",)),
    ("pim", 103, ("PIM",)),
    ("ipcomp", 108, ("IPCOMP",)),
    ("vrrp", 112, ("VRRP",)),
    ("l2tp", 115, ("L2TP",)),
    ("isis", 124, ("ISIS",)),
    ("sctp", 132, ("SCTP",)),
    ("fc", 133, ("FC",)),
    ("mobility-header", 135, ("Mobility-Header",)),
    ("udplite", 136, ("UDPLite",)),
    ("mpls-in-ip", 137, ("MPLS-in-IP",)),
    ("manet", 138, ()),
    ("hip", 139, ("HIP",)),
    ("shim6", 140, ("Shim6",)),
    ("wesp", 141, ("WESP",)),
    ("rohc", 142, ("ROHC",)),
    ("ethernet", 143, ("Ethernet",)),
)

IPPROTO_ICMP = 1
IPPROTO_IPV4 = 4
IPPROTO_TCP = 6
IPPROTO_GRE = 47
IPPROTO_ICMPV6 = 58
IPPROTO_MH = 135

PROTOCOL_BY_NAME: dict[str, int] = {}
for _name, _number, _aliases in _PROTOCOLS:
    for _n in (_name, *_aliases):
        PROTOCOL_BY_NAME.setdefault(_n, _number)

PROTOCOL_NAME: dict[int, str] = {}
for _name, _number, _aliases in _PROTOCOLS:
    PROTOCOL_NAME.setdefault(_number, _name)


def protocol_number(name: str) -> int | None:
    """``getprotobyname`` plus setkey's own ``icmp6`` and ``ip4``; None when unknown."""
    number = PROTOCOL_BY_NAME.get(name)
    if number is not None:
        return number
    return {"icmp6": IPPROTO_ICMPV6, "ip4": IPPROTO_IPV4}.get(name)


def protocol_name(number: int) -> str:
    """``getprotobynumber`` as a Linux setkey prints it: the number when there is no name."""
    return PROTOCOL_NAME.get(number, str(number))
