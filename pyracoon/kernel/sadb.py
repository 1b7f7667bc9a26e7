"""PF_KEY v2 numbers: RFC 2367 plus the KAME and Linux extensions racoon and setkey use.

The names follow the C headers (``SADB_X_SPDADD`` becomes ``MsgType.X_SPDADD``) so that a reader
with ``net/pfkeyv2.h`` or ``linux/pfkeyv2.h`` open finds each value once. The numbers are those of
pfkeyv2.h.
"""

from __future__ import annotations

from enum import IntEnum

from .ops import MANUAL_REQID_MAX as MANUAL_REQID_MAX  # one number: the vocabulary's

PF_KEY_V2 = 2
"""The only protocol version a PF_KEY v2 socket speaks (``sadb_msg_version``)."""

ULPROTO_ANY = 255
PORT_ANY = 0
XFRM_MAX_DEPTH = 6
"""Linux: the most templates one policy holds; a 7th ipsecrequest is ELOOP."""
SPI_RESERVED_MAX = 255
"""SPIs 0..255 are reserved by RFC 4303/2406 and never allocated or accepted from users."""


class MsgType(IntEnum):
    """``sadb_msg_type``: RFC 2367 section 2.3 and the KAME ``SADB_X_*`` additions."""

    RESERVED = 0
    GETSPI = 1
    UPDATE = 2
    ADD = 3
    DELETE = 4
    GET = 5
    ACQUIRE = 6
    REGISTER = 7
    EXPIRE = 8
    FLUSH = 9
    DUMP = 10
    X_PROMISC = 11
    X_PCHANGE = 12
    X_SPDUPDATE = 13
    X_SPDADD = 14
    X_SPDDELETE = 15
    X_SPDGET = 16
    X_SPDACQUIRE = 17
    X_SPDDUMP = 18
    X_SPDFLUSH = 19
    X_SPDSETIDX = 20
    X_SPDEXPIRE = 21
    X_SPDDELETE2 = 22
    X_NAT_T_NEW_MAPPING = 23
    X_MIGRATE = 24


class ExtType(IntEnum):
    """``sadb_ext_type``: RFC 2367 section 2.3 and the KAME/Linux ``SADB_X_EXT_*`` additions."""

    RESERVED = 0
    SA = 1
    LIFETIME_CURRENT = 2
    LIFETIME_HARD = 3
    LIFETIME_SOFT = 4
    ADDRESS_SRC = 5
    ADDRESS_DST = 6
    ADDRESS_PROXY = 7
    KEY_AUTH = 8
    KEY_ENCRYPT = 9
    IDENTITY_SRC = 10
    IDENTITY_DST = 11
    SENSITIVITY = 12
    PROPOSAL = 13
    SUPPORTED_AUTH = 14
    SUPPORTED_ENCRYPT = 15
    SPIRANGE = 16
    X_KMPRIVATE = 17
    X_POLICY = 18
    X_SA2 = 19
    X_NAT_T_TYPE = 20
    X_NAT_T_SPORT = 21
    X_NAT_T_DPORT = 22
    X_NAT_T_OA = 23
    X_SEC_CTX = 24


class SaType(IntEnum):
    """``sadb_msg_satype``. Only the IPsec ones matter to racoon; the others print in dumps."""

    UNSPEC = 0
    AH = 2
    ESP = 3
    RSVP = 5
    OSPFV2 = 6
    RIPV2 = 7
    MIP = 8
    IPCOMP = 9
    TCPSIGNATURE = 11


class SaState(IntEnum):
    LARVAL = 0
    MATURE = 1
    DYING = 2
    DEAD = 3


class Mode(IntEnum):
    """``IPSEC_MODE_*``: the ``sadb_x_sa2_mode`` and ipsecrequest mode."""

    ANY = 0
    TRANSPORT = 1
    TUNNEL = 2
    BEET = 3
    """Linux only (``linux/ipsec.h``); KAME has no BEET and setkey cannot name it."""


class Direction(IntEnum):
    """``IPSEC_DIR_*``."""

    ANY = 0
    INBOUND = 1
    OUTBOUND = 2
    FWD = 3


class PolicyType(IntEnum):
    """``IPSEC_POLICY_*``."""

    DISCARD = 0
    NONE = 1
    IPSEC = 2
    ENTRUST = 3
    BYPASS = 4


class Level(IntEnum):
    """``IPSEC_LEVEL_*`` of an ipsecrequest."""

    DEFAULT = 0
    USE = 1
    REQUIRE = 2
    UNIQUE = 3


class Priority(IntEnum):
    """The named policy priorities of ipsec-tools (``PRIORITY_LOW`` etc.); lower wins on Linux."""

    HIGH = 0x40000000
    DEFAULT = 0x80000000
    LOW = 0xC0000000


class IpProto(IntEnum):
    """The ``sadb_x_ipsecrequest_proto`` values: IP protocol numbers of the IPsec headers.

    ROUTING and DSTOPTS are the IPv6 extension headers Mobile IPv6 route optimisation puts in
    policies; Linux accepts them in a template (``xfrm_id_proto_valid``), PF_KEY has no SA type
    for them.
    """

    ESP = 50
    AH = 51
    IPCOMP = 108
    ROUTING = 43
    DSTOPTS = 60


class SaFlags(IntEnum):
    """``SADB_X_EXT_*`` bits in ``sadb_sa_flags`` (KAME)."""

    NONE = 0x0000
    OLD = 0x0001
    IV4B = 0x0010
    DERIV = 0x0020
    CYCSEQ = 0x0040
    RAWCPI = 0x0080
    PRAND = 0x0100
    PZERO = 0x0200


class AuthAlg(IntEnum):
    """``SADB_AALG_*`` and ``SADB_X_AALG_*``. keyed-md5/keyed-sha1 use ipsec-tools' own 249/250."""

    NONE = 0
    MD5HMAC = 2
    SHA1HMAC = 3
    SHA2_256 = 5
    SHA2_384 = 6
    SHA2_512 = 7
    RIPEMD160HMAC = 8
    AES_XCBC_MAC = 9
    MD5 = 249
    SHA = 250
    NULL = 251
    TCP_MD5 = 252


class EncAlg(IntEnum):
    """``SADB_EALG_*`` and ``SADB_X_EALG_*``."""

    NONE = 0
    DESCBC = 2
    THREEDESCBC = 3
    CAST128CBC = 6
    BLOWFISHCBC = 7
    NULL = 11
    AESCBC = 12
    AESCTR = 13
    AES_CCM_ICV8 = 14
    AES_CCM_ICV12 = 15
    AES_CCM_ICV16 = 16
    AES_GCM_ICV8 = 18
    AES_GCM_ICV12 = 19
    AES_GCM_ICV16 = 20
    CAMELLIACBC = 22
    NULL_AES_GMAC = 23
    SERPENTCBC = 252
    TWOFISHCBC = 253


class CompAlg(IntEnum):
    """``SADB_X_CALG_*``."""

    NONE = 0
    OUI = 1
    DEFLATE = 2
    LZS = 3


class NatTType(IntEnum):
    """``sadb_x_nat_t_type_type``: UDP_ENCAP_ESPINUDP_NON_IKE 1, UDP_ENCAP_ESPINUDP 2."""

    NONE = 0
    ESPINUDP_NON_IKE = 1
    ESPINUDP = 2


def name_of(enum: type[IntEnum], value: int) -> str:
    """The symbolic name of ``value``, or the number itself for values a newer kernel may add."""
    try:
        return enum(value).name
    except ValueError:
        return str(value)
