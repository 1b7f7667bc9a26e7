"""setkey's names for SADB algorithms, protocols and key-size ranges, in one table each.

Every name, number and key range comes from the one algorithm table,
:mod:`pyracoon.crypto.algorithms` (its ``setkey_names``, ``sadb_id`` and ``kernel`` columns);
what is setkey's own is the grammar around the names. Two naming schemes coexist, exactly as in
ipsec-tools 0.8.2:

* the *input* names of setkey's lexer (``-E 3des-cbc``, ``-A keyed-md5``, aliases such as
  ``rijndael-cbc`` and ``hmac-sha2-256``), and
* the *dump* names of libipsec's ``pfkey_sadump`` (``E: null``, ``A: md5``, ``A: sha``), which
  differ for the old keyed algorithms and for ``simple``.

The built-in key ranges are the ones the simulated kernel reports in its REGISTER reply (the
table's ``kernel`` column, setkey(8): algorithms); setkey itself only checks against what the
kernel said, so they are used only with ``-n``, when no kernel is asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from pyracoon.crypto.algorithms import (
    AUTH_ALGORITHMS,
    CIPHERS,
    IPCOMP_ALGORITHMS,
    AuthAlgorithm,
    Cipher,
    CompressionAlgorithm,
    kernel_auth_algorithms,
    kernel_ciphers,
)
from pyracoon.kernel.sadb import SaType


class KeyForm(Enum):
    """What an algorithm name expects after it on the command line (parse.y token classes)."""

    KEY = "key"
    """ALG_ENC / ALG_AUTH: a key string follows."""
    NOKEY = "nokey"
    """ALG_ENC_NOKEY / ALG_AUTH_NOKEY (``null``): nothing follows."""
    OLD = "old"
    """ALG_ENC_OLD (``simple``): obsolete null cipher; the KAME memo of 2003 still gave it a key,
    so an optional key is accepted (see ``parser``)."""
    DESDERIV = "des-deriv"
    """des-cbc with the IV derived from the key (SADB_X_EXT_DERIV); not with -old."""
    DES32IV = "des-32iv"
    """des-cbc with a 32-bit IV (SADB_X_EXT_IV4B); needs ah-old/esp-old."""


@dataclass(frozen=True)
class AlgName:
    """One input name of the setkey lexer."""

    name: str
    id: int
    form: KeyForm = KeyForm.KEY


_FORMS: dict[str, KeyForm] = {
    "null": KeyForm.NOKEY,
    "simple": KeyForm.OLD,
    "des-deriv": KeyForm.DESDERIV,
    "des-32iv": KeyForm.DES32IV,
}
"""The names parse.y gives a token class other than ALG_ENC / ALG_AUTH."""


def _names(rows: Iterable[Cipher | AuthAlgorithm]) -> dict[str, AlgName]:
    out: dict[str, AlgName] = {}
    for row in rows:
        if row.sadb_id is None:
            continue
        for name in row.setkey_names:
            out.setdefault(name, AlgName(name, row.sadb_id, _FORMS.get(name, KeyForm.KEY)))
    return out


ENCRYPTION_NAMES: dict[str, AlgName] = _names(CIPHERS)
"""``-E`` names (setkey token.l, state S_ENCALG): the table's ``setkey_names`` column."""

AUTHENTICATION_NAMES: dict[str, AlgName] = _names(AUTH_ALGORITHMS)
"""``-A`` names (setkey token.l, state S_AUTHALG): the table's ``setkey_names`` column."""

COMPRESSION_NAMES: dict[str, int] = {
    name: row.sadb_id for row in IPCOMP_ALGORITHMS for name in row.setkey_names
}
"""``-C`` names."""

TCP_MD5_KEY_BYTES = (1, 80)
"""setkey checks TCP-MD5 keys itself (1..80 bytes) instead of asking the kernel's ranges."""

# ---------------------------------------------------------------------------------------------
# dump names (libipsec pfkey_dump.c)

def _dump_names(rows: Iterable[Cipher | AuthAlgorithm | CompressionAlgorithm]) -> dict[int, str]:
    """SADB number -> the first setkey name of the first row with that number; 0 is ``none``."""
    out = {0: "none"}
    for row in rows:
        if row.sadb_id and row.setkey_names:
            out.setdefault(row.sadb_id, _DUMP_OVERRIDES.get(row.name, row.setkey_names[0]))
    return out


_DUMP_OVERRIDES = {"keyed-md5": "md5", "keyed-sha1": "sha"}
"""Where ``str_alg_auth`` of pfkey_dump.c prints another name than the lexer takes."""

ENCRYPTION_DUMP_NAMES: dict[int, str] = _dump_names(CIPHERS)
AUTHENTICATION_DUMP_NAMES: dict[int, str] = _dump_names(AUTH_ALGORITHMS)
COMPRESSION_DUMP_NAMES: dict[int, str] = _dump_names(IPCOMP_ALGORITHMS)

SATYPE_DUMP_NAMES: tuple[str, ...] = (
    "unspec",
    "unknown",
    "ah",
    "esp",
    "unknown",
    "rsvp",
    "ospfv2",
    "ripv2",
    "mip",
    "ipcomp",
    "policy",
    "tcp",
)
"""Indexed by ``sadb_msg_satype``; a larger value prints as its number."""

MODE_DUMP_NAMES: tuple[str, ...] = ("any", "transport", "tunnel")
STATE_DUMP_NAMES: tuple[str, ...] = ("larval", "mature", "dying", "dead")

# ---------------------------------------------------------------------------------------------
# key ranges


@dataclass(frozen=True)
class KeyRange:
    """``sadb_alg_minbits``/``maxbits`` of one algorithm, in bits."""

    minbits: int
    maxbits: int

    def allows(self, bits: int) -> bool:
        return self.minbits <= bits <= self.maxbits


DEFAULT_ENCRYPTION_RANGES: dict[int, KeyRange] = {
    c.sadb_id or 0: KeyRange(c.kernel.min_bits, c.kernel.max_bits)
    for c in kernel_ciphers()
    if c.kernel is not None
}
"""setkey(8): algorithms: what a usual kernel's REGISTER reply says -- the simulated kernel's own
answer (the table's ``kernel`` column), so that ``pysetkey -n`` and ``pysetkey`` against
``pyracoon-kernel`` agree."""

DEFAULT_AUTHENTICATION_RANGES: dict[int, KeyRange] = {
    a.sadb_id or 0: KeyRange(a.kernel.min_bits, a.kernel.max_bits)
    for a in kernel_auth_algorithms()
    if a.kernel is not None
}


@dataclass
class SupportedAlgorithms:
    """The key-size ranges setkey checks keys against: the kernel's REGISTER answer.

    ``None`` for a table means "not learnt yet", which libipsec reports as "Must get supported
    algorithms list first"; an algorithm missing from a learnt table is "Not supported".
    """

    encryption: dict[int, KeyRange] | None = None
    authentication: dict[int, KeyRange] | None = None

    @classmethod
    def builtin(cls) -> SupportedAlgorithms:
        """The usual ranges, for ``-n`` where no kernel is asked."""
        return cls(dict(DEFAULT_ENCRYPTION_RANGES), dict(DEFAULT_AUTHENTICATION_RANGES))


# ---------------------------------------------------------------------------------------------
# upper-layer protocols: a built-in /etc/protocols, so that parsing and dumps do not depend on
# the machine's netbase package (Debian's list, which is what a Linux setkey sees).

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


def satype_dump_name(satype: int) -> str:
    """``GETMSGSTR(str_satype, ...)`` without its trailing space."""
    if 0 <= satype < len(SATYPE_DUMP_NAMES):
        return SATYPE_DUMP_NAMES[satype]
    return str(satype)


PROTO_SATYPE: dict[str, tuple[int, bool]] = {
    "esp": (SaType.ESP, False),
    "ah": (SaType.AH, False),
    "esp-old": (SaType.ESP, True),
    "ah-old": (SaType.AH, True),
    "ipcomp": (SaType.IPCOMP, False),
    "tcp": (SaType.TCPSIGNATURE, False),
}
"""Security protocol names of ``add``/``get``/``flush``... -> (satype, sets SADB_X_EXT_OLD)."""
