"""setkey's names for SADB algorithms, protocols and key-size ranges, in one table each.

Everything here is keyed by the SADB numbers of ``pyracoon.kernel.sadb`` so that the global
cipher table (``pyracoon.crypto``) can later absorb these rows without renumbering. Two naming
schemes coexist, exactly as in ipsec-tools 0.8.2:

* the *input* names of setkey's lexer (``-E 3des-cbc``, ``-A keyed-md5``, aliases such as
  ``rijndael-cbc`` and ``hmac-sha2-256``), and
* the *dump* names of libipsec's ``pfkey_sadump`` (``E: null``, ``A: md5``, ``A: sha``), which
  differ for the old keyed algorithms and for ``simple``.

The built-in key ranges are the ones the simulated kernel reports in its REGISTER reply
(``pyracoon.kernel.memory``, setkey(8): algorithms); setkey itself only checks against what the
kernel said, so they are used only with ``-n``, when no kernel is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pyracoon.kernel.memory import SUPPORTED_AUTH, SUPPORTED_ENCRYPT
from pyracoon.kernel.sadb import AuthAlg, CompAlg, EncAlg, SaType


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


ENCRYPTION_NAMES: dict[str, AlgName] = {
    a.name: a
    for a in (
        AlgName("des-cbc", EncAlg.DESCBC),
        AlgName("3des-cbc", EncAlg.THREEDESCBC),
        AlgName("null", EncAlg.NULL, KeyForm.NOKEY),
        AlgName("simple", EncAlg.NULL, KeyForm.OLD),
        AlgName("blowfish-cbc", EncAlg.BLOWFISHCBC),
        AlgName("cast128-cbc", EncAlg.CAST128CBC),
        AlgName("des-deriv", EncAlg.DESCBC, KeyForm.DESDERIV),
        AlgName("des-32iv", EncAlg.DESCBC, KeyForm.DES32IV),
        AlgName("twofish-cbc", EncAlg.TWOFISHCBC),
        AlgName("aes-cbc", EncAlg.AESCBC),
        AlgName("rijndael-cbc", EncAlg.AESCBC),
        AlgName("aes-ctr", EncAlg.AESCTR),
        AlgName("camellia-cbc", EncAlg.CAMELLIACBC),
    )
}
"""``-E`` names (setkey token.l, state S_ENCALG)."""

AUTHENTICATION_NAMES: dict[str, AlgName] = {
    a.name: a
    for a in (
        AlgName("hmac-md5", AuthAlg.MD5HMAC),
        AlgName("hmac-sha1", AuthAlg.SHA1HMAC),
        AlgName("keyed-md5", AuthAlg.MD5),
        AlgName("keyed-sha1", AuthAlg.SHA),
        AlgName("hmac-sha2-256", AuthAlg.SHA2_256),
        AlgName("hmac-sha256", AuthAlg.SHA2_256),
        AlgName("hmac-sha2-384", AuthAlg.SHA2_384),
        AlgName("hmac-sha384", AuthAlg.SHA2_384),
        AlgName("hmac-sha2-512", AuthAlg.SHA2_512),
        AlgName("hmac-sha512", AuthAlg.SHA2_512),
        AlgName("hmac-ripemd160", AuthAlg.RIPEMD160HMAC),
        AlgName("aes-xcbc-mac", AuthAlg.AES_XCBC_MAC),
        AlgName("tcp-md5", AuthAlg.TCP_MD5),
        AlgName("null", AuthAlg.NULL, KeyForm.NOKEY),
    )
}
"""``-A`` names (setkey token.l, state S_AUTHALG)."""

COMPRESSION_NAMES: dict[str, int] = {
    "oui": CompAlg.OUI,
    "deflate": CompAlg.DEFLATE,
    "lzs": CompAlg.LZS,
}
"""``-C`` names."""

TCP_MD5_KEY_BYTES = (1, 80)
"""setkey checks TCP-MD5 keys itself (1..80 bytes) instead of asking the kernel's ranges."""

# ---------------------------------------------------------------------------------------------
# dump names (libipsec pfkey_dump.c)

ENCRYPTION_DUMP_NAMES: dict[int, str] = {
    EncAlg.NONE: "none",
    EncAlg.DESCBC: "des-cbc",
    EncAlg.THREEDESCBC: "3des-cbc",
    EncAlg.NULL: "null",
    EncAlg.CAST128CBC: "cast128-cbc",
    EncAlg.BLOWFISHCBC: "blowfish-cbc",
    EncAlg.AESCBC: "aes-cbc",
    EncAlg.TWOFISHCBC: "twofish-cbc",
    EncAlg.AESCTR: "aes-ctr",
    EncAlg.CAMELLIACBC: "camellia-cbc",
}

AUTHENTICATION_DUMP_NAMES: dict[int, str] = {
    AuthAlg.NONE: "none",
    AuthAlg.MD5HMAC: "hmac-md5",
    AuthAlg.SHA1HMAC: "hmac-sha1",
    AuthAlg.MD5: "md5",
    AuthAlg.SHA: "sha",
    AuthAlg.NULL: "null",
    AuthAlg.TCP_MD5: "tcp-md5",
    AuthAlg.SHA2_256: "hmac-sha256",
    AuthAlg.SHA2_384: "hmac-sha384",
    AuthAlg.SHA2_512: "hmac-sha512",
    AuthAlg.RIPEMD160HMAC: "hmac-ripemd160",
    AuthAlg.AES_XCBC_MAC: "aes-xcbc-mac",
}

COMPRESSION_DUMP_NAMES: dict[int, str] = {
    CompAlg.NONE: "none",
    CompAlg.OUI: "oui",
    CompAlg.DEFLATE: "deflate",
    CompAlg.LZS: "lzs",
}

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
    a.id: KeyRange(a.minbits, a.maxbits) for a in SUPPORTED_ENCRYPT
}
"""setkey(8): algorithms: what a usual kernel's REGISTER reply says -- the simulated kernel's own
answer, so that ``pysetkey -n`` and ``pysetkey`` against ``pyracoon-kernel`` agree."""

DEFAULT_AUTHENTICATION_RANGES: dict[int, KeyRange] = {
    a.id: KeyRange(a.minbits, a.maxbits) for a in SUPPORTED_AUTH
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
