"""Symbolic names for every number IKEv1 puts on the wire.

Sources, one enum per registry:

* RFC 2408 (ISAKMP) section 3.1 exchange types and flags, 3.2/3.1 next-payload
  types, 3.9 certificate encodings, 3.14.1 notify message types, A.2 DOIs.
* RFC 2407 (IPsec DOI) 4.2 situation, 4.4.1 protocol ids, 4.4.2-4.4.5 transform
  ids for ISAKMP/AH/ESP/IPCOMP, 4.5 SA attributes, 4.6.2.1 ID types, 4.6.3
  notify types.
* RFC 2409 (IKE) appendix A, Oakley phase-1 attribute classes and values.
* RFC 3706 (DPD) R-U-THERE / R-U-THERE-ACK, RFC 3947 (NAT-T) payload types 20/21
  and encapsulation modes 3/4, with the draft numbers racoon also speaks
  (payloads 15/16 and 130/131, encapsulation 61443/61444).
* racoon/draft extras: Mode-Config ATTR payload (14) and its message types,
  Cisco IKE fragmentation payload (132), GSS-API token (129), hybrid and XAUTH
  authentication methods.

Each member's ``str()`` is the spelling people grep logs for: notify types are
hyphenated as in racoon (``NO-PROPOSAL-CHOSEN``), ID types carry the RFC 2407
``ID_`` prefix (``ID_DER_ASN1_DN``), transform ids their RFC prefix
(``ESP_AES``).  :func:`display_name` renders any number, including ones no enum
knows, as ``UNKNOWN(123)``.
"""

from __future__ import annotations

import enum
from typing import TypeVar


class _Named(enum.IntEnum):
    """An IntEnum whose ``str()`` is a chosen display label (defaults to the name)."""

    _display_label: str | None

    def __new__(cls, value: int, label: str | None = None) -> _Named:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj._display_label = label
        return obj

    def __str__(self) -> str:
        label = self._display_label
        return label if label is not None else self.name

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class _Hyphenated(_Named):
    """Display label is the member name with ``_`` replaced by ``-`` (racoon's notify style)."""

    def __str__(self) -> str:
        label = self._display_label
        return label if label is not None else self.name.replace("_", "-")


_E = TypeVar("_E", bound=enum.IntEnum)


def display_name(enum_cls: type[enum.IntEnum], value: int) -> str:
    """Render ``value`` by ``enum_cls``'s names, or ``UNKNOWN(value)`` when it has none."""
    try:
        return str(enum_cls(value))
    except ValueError:
        return f"UNKNOWN({int(value)})"


def to_enum(enum_cls: type[_E], value: int) -> _E | int:
    """Return ``enum_cls(value)`` when known, else the plain int (decoders keep unknowns)."""
    try:
        return enum_cls(value)
    except ValueError:
        return value


# --------------------------------------------------------------------------- RFC 2408 3.1
ISAKMP_HEADER_SIZE = 28
GENERIC_HEADER_SIZE = 4
MAJOR_VERSION = 1
MINOR_VERSION = 0


class ExchangeType(_Named):
    """RFC 2408 3.1 / 4 and RFC 2409 exchange types (racoon's s_isakmp_etype labels)."""

    NONE = 0, "None"
    BASE = 1, "Base"
    IDENTITY_PROTECTION = 2, "Identity Protection"  # main mode
    AUTHENTICATION_ONLY = 3, "Authentication Only"
    AGGRESSIVE = 4, "Aggressive"
    INFORMATIONAL = 5, "Informational"
    TRANSACTION = 6, "Transaction"  # draft-dukes-ike-mode-cfg (mode config / XAUTH)
    QUICK = 32, "Quick"  # RFC 2409 5.5
    NEW_GROUP = 33, "New Group"  # RFC 2409 5.6
    ACKNOWLEDGED_INFORMATIONAL = 34, "Acknowledged Informational"  # KAME extension


MAIN_MODE = ExchangeType.IDENTITY_PROTECTION


class Flag(enum.IntFlag):
    """RFC 2408 3.1 header flags."""

    ENCRYPTION = 0x01
    COMMIT = 0x02
    AUTHENTICATION_ONLY = 0x04


ALL_FLAGS = Flag.ENCRYPTION | Flag.COMMIT | Flag.AUTHENTICATION_ONLY


class PayloadType(_Named):
    """Next Payload values: RFC 2408 3.1, RFC 3947 5, and the draft/private ones racoon knows."""

    NONE = 0, "NONE"
    SA = 1, "SA"
    PROPOSAL = 2, "P"
    TRANSFORM = 3, "T"
    KE = 4, "KE"
    ID = 5, "ID"
    CERT = 6, "CERT"
    CR = 7, "CR"
    HASH = 8, "HASH"
    SIG = 9, "SIG"
    NONCE = 10, "NONCE"
    NOTIFICATION = 11, "N"
    DELETE = 12, "D"
    VENDOR_ID = 13, "VID"
    ATTRIBUTE = 14, "ATTR"  # mode config
    NAT_D_DRAFT_BAD = 15, "NAT-D(draft-05)"  # clashes with RFC 3547 SAK; racoon accepts it
    NAT_OA_DRAFT_BAD = 16, "NAT-OA(draft-05)"
    NAT_D = 20, "NAT-D"  # RFC 3947
    NAT_OA = 21, "NAT-OA"  # RFC 3947
    GSS = 129, "GSS"  # draft-ietf-ipsec-isakmp-gss-auth
    NAT_D_DRAFT = 130, "NAT-D(draft)"  # draft-ietf-ipsec-nat-t-ike-00..04
    NAT_OA_DRAFT = 131, "NAT-OA(draft)"
    FRAGMENT = 132, "FRAG"  # Cisco-style IKE fragmentation


class DOI(_Named):
    """RFC 2408 A.2 Domain of Interpretation."""

    ISAKMP = 0, "ISAKMP_DOI"
    IPSEC = 1, "IPSEC_DOI"


class Situation(enum.IntFlag):
    """RFC 2407 4.2 situation bitmap."""

    SIT_IDENTITY_ONLY = 0x01
    SIT_SECRECY = 0x02
    SIT_INTEGRITY = 0x04


class ProtocolID(_Named):
    """RFC 2407 4.4.1 IPsec security protocol identifiers."""

    RESERVED = 0, "RESERVED"
    ISAKMP = 1, "PROTO_ISAKMP"
    IPSEC_AH = 2, "PROTO_IPSEC_AH"
    IPSEC_ESP = 3, "PROTO_IPSEC_ESP"
    IPCOMP = 4, "PROTO_IPCOMP"


class IsakmpTransformID(_Named):
    """RFC 2407 4.4.2 ISAKMP transform identifiers."""

    KEY_IKE = 1, "KEY_IKE"


class AHTransformID(_Named):
    """RFC 2407 4.4.3 (+ RFC 4868, RFC 3566 IANA additions) AH transform identifiers."""

    AH_MD5 = 2
    AH_SHA = 3
    AH_DES = 4
    AH_SHA2_256 = 5
    AH_SHA2_384 = 6
    AH_SHA2_512 = 7
    AH_RIPEMD = 8
    AH_AES_XCBC_MAC = 9


class ESPTransformID(_Named):
    """RFC 2407 4.4.4 (+ IANA) ESP transform identifiers, with racoon's twofish (253)."""

    ESP_DES_IV64 = 1
    ESP_DES = 2
    ESP_3DES = 3
    ESP_RC5 = 4
    ESP_IDEA = 5
    ESP_CAST = 6
    ESP_BLOWFISH = 7
    ESP_3IDEA = 8
    ESP_DES_IV32 = 9
    ESP_RC4 = 10
    ESP_NULL = 11
    ESP_AES = 12  # RFC 3602 AES-CBC
    ESP_AES_CTR = 13
    ESP_AES_CCM_8 = 14
    ESP_AES_CCM_12 = 15
    ESP_AES_CCM_16 = 16
    ESP_AES_GCM_8 = 18
    ESP_AES_GCM_12 = 19
    ESP_AES_GCM_16 = 20
    ESP_SEED_CBC = 21
    ESP_CAMELLIA = 22
    ESP_NULL_AUTH_AES_GMAC = 23
    ESP_TWOFISH = 253  # KAME/racoon private value


class IPCompTransformID(_Named):
    """RFC 2407 4.4.5 IPCOMP transform identifiers."""

    IPCOMP_OUI = 1
    IPCOMP_DEFLATE = 2
    IPCOMP_LZS = 3


TRANSFORM_IDS: dict[int, type[_Named]] = {
    ProtocolID.ISAKMP: IsakmpTransformID,
    ProtocolID.IPSEC_AH: AHTransformID,
    ProtocolID.IPSEC_ESP: ESPTransformID,
    ProtocolID.IPCOMP: IPCompTransformID,
}


def transform_name(protocol_id: int, transform_id: int) -> str:
    """Name a transform id in the registry of its protocol (RFC 2407 4.4.2-4.4.5)."""
    registry = TRANSFORM_IDS.get(protocol_id)
    if registry is None:
        return f"UNKNOWN({transform_id})"
    return display_name(registry, transform_id)


# --------------------------------------------------------------------------- RFC 2409 App. A
class OakleyAttribute(_Named):
    """RFC 2409 appendix A phase-1 attribute classes (B = basic, V = variable)."""

    ENCRYPTION_ALGORITHM = 1, "Encryption Algorithm"  # B
    HASH_ALGORITHM = 2, "Hash Algorithm"  # B
    AUTHENTICATION_METHOD = 3, "Authentication Method"  # B
    GROUP_DESCRIPTION = 4, "Group Description"  # B
    GROUP_TYPE = 5, "Group Type"  # B
    GROUP_PRIME = 6, "Group Prime/Irreducible Polynomial"  # V
    GROUP_GENERATOR_ONE = 7, "Group Generator One"  # V
    GROUP_GENERATOR_TWO = 8, "Group Generator Two"  # V
    GROUP_CURVE_A = 9, "Group Curve A"  # V
    GROUP_CURVE_B = 10, "Group Curve B"  # V
    LIFE_TYPE = 11, "Life Type"  # B
    LIFE_DURATION = 12, "Life Duration"  # V
    PRF = 13, "PRF"  # B
    KEY_LENGTH = 14, "Key Length"  # B
    FIELD_SIZE = 15, "Field Size"  # B
    GROUP_ORDER = 16, "Group Order"  # V
    GSS_ID = 16384, "GSS-API Identity"  # racoon private


#: RFC 2409 App. A classes marked "B": they MUST NOT be sent in TLV form.
OAKLEY_BASIC_ONLY: frozenset[int] = frozenset({1, 2, 3, 4, 5, 11, 13, 14, 15})


class EncryptionAlgorithm(_Named):
    """RFC 2409 App. A Encryption Algorithm values (+ RFC 3602 AES, RFC 4312 Camellia)."""

    DES_CBC = 1, "DES-CBC"
    IDEA_CBC = 2, "IDEA-CBC"
    BLOWFISH_CBC = 3, "Blowfish-CBC"
    RC5_R16_B64_CBC = 4, "RC5-R16-B64-CBC"
    TRIPLE_DES_CBC = 5, "3DES-CBC"
    CAST_CBC = 6, "CAST-CBC"
    AES_CBC = 7, "AES-CBC"
    CAMELLIA_CBC = 8, "CAMELLIA-CBC"


class HashAlgorithm(_Named):
    """RFC 2409 App. A Hash Algorithm values (+ RFC 4868 SHA-2)."""

    MD5 = 1
    SHA = 2
    TIGER = 3
    SHA2_256 = 4
    SHA2_384 = 5
    SHA2_512 = 6


class AuthenticationMethod(_Named):
    """RFC 2409 App. A Authentication Method values, plus hybrid/XAUTH drafts and racoon GSS."""

    PRE_SHARED_KEY = 1, "pre-shared key"
    DSS_SIGNATURES = 2, "DSS signatures"
    RSA_SIGNATURES = 3, "RSA signatures"
    RSA_ENCRYPTION = 4, "Encryption with RSA"
    REVISED_RSA_ENCRYPTION = 5, "Revised encryption with RSA"
    ELGAMAL_ENCRYPTION = 6, "Encryption with El-Gamal"
    REVISED_ELGAMAL_ENCRYPTION = 7, "Revised encryption with El-Gamal"
    ECDSA_SIGNATURES = 8, "ECDSA signatures"
    HYBRID_RSA_I = 64221, "Hybrid RSA client"
    HYBRID_RSA_R = 64222, "Hybrid RSA server"
    HYBRID_DSS_I = 64223, "Hybrid DSS client"
    HYBRID_DSS_R = 64224, "Hybrid DSS server"
    XAUTH_PSKEY_I = 65001, "XAuth pskey client"
    XAUTH_PSKEY_R = 65002, "XAuth pskey server"
    XAUTH_DSSSIG_I = 65003, "XAuth DSSSIG client"
    XAUTH_DSSSIG_R = 65004, "XAuth DSSSIG server"
    XAUTH_RSASIG_I = 65005, "XAuth RSASIG client"
    XAUTH_RSASIG_R = 65006, "XAuth RSASIG server"
    XAUTH_RSAENC_I = 65007, "XAuth RSAENC client"
    XAUTH_RSAENC_R = 65008, "XAuth RSAENC server"
    XAUTH_RSAREV_I = 65009, "XAuth RSAREV client"
    XAUTH_RSAREV_R = 65010, "XAuth RSAREV server"
    # racoon's GSSAPI_KRB is 65001 too (it clashes with XAUTH_PSKEY_I): an alias here.
    GSSAPI_KRB = 65001


class GroupDescription(_Named):
    """RFC 2409 App. A / RFC 3526 / RFC 5114 / RFC 5903 Diffie-Hellman groups."""

    MODP768 = 1, "768-bit MODP group"
    MODP1024 = 2, "1024-bit MODP group"
    EC2N155 = 3, "EC2N group on GP[2^155]"
    EC2N185 = 4, "EC2N group on GP[2^185]"
    MODP1536 = 5, "1536-bit MODP group"
    MODP2048 = 14, "2048-bit MODP group"
    MODP3072 = 15, "3072-bit MODP group"
    MODP4096 = 16, "4096-bit MODP group"
    MODP6144 = 17, "6144-bit MODP group"
    MODP8192 = 18, "8192-bit MODP group"
    ECP256 = 19, "256-bit random ECP group"
    ECP384 = 20, "384-bit random ECP group"
    ECP521 = 21, "521-bit random ECP group"
    MODP1024_S160 = 22, "1024-bit MODP group with 160-bit prime order subgroup"
    MODP2048_S224 = 23, "2048-bit MODP group with 224-bit prime order subgroup"
    MODP2048_S256 = 24, "2048-bit MODP group with 256-bit prime order subgroup"


class GroupType(_Named):
    """RFC 2409 App. A Group Type values."""

    MODP = 1
    ECP = 2
    EC2N = 3


class LifeType(_Named):
    """RFC 2409 App. A and RFC 2407 4.5 Life Type values (same numbers in both)."""

    SECONDS = 1, "seconds"
    KILOBYTES = 2, "kilobytes"


# --------------------------------------------------------------------------- RFC 2407 4.5
class IPsecAttribute(_Named):
    """RFC 2407 4.5 phase-2 SA attribute classes (+ IANA ECN tunnel, ESN)."""

    SA_LIFE_TYPE = 1, "SA Life Type"
    SA_LIFE_DURATION = 2, "SA Life Duration"  # V
    GROUP_DESCRIPTION = 3, "Group Description"
    ENCAPSULATION_MODE = 4, "Encapsulation Mode"
    AUTHENTICATION_ALGORITHM = 5, "Authentication Algorithm"
    KEY_LENGTH = 6, "Key Length"
    KEY_ROUNDS = 7, "Key Rounds"
    COMPRESS_DICTIONARY_SIZE = 8, "Compression Dictionary Size"
    COMPRESS_PRIVATE_ALGORITHM = 9, "Compression Private Algorithm"  # V
    ECN_TUNNEL = 10, "ECN Tunnel"
    EXTENDED_SEQUENCE_NUMBER = 11, "Extended (64-bit) Sequence Number"


class EncapsulationMode(_Named):
    """RFC 2407 4.5 + RFC 3947 5.2 Encapsulation Mode values, with the NAT-T draft values."""

    TUNNEL = 1, "Tunnel"
    TRANSPORT = 2, "Transport"
    UDP_ENCAPSULATED_TUNNEL = 3, "UDP-Tunnel"
    UDP_ENCAPSULATED_TRANSPORT = 4, "UDP-Transport"
    UDP_ENCAPSULATED_TUNNEL_DRAFT = 61443, "UDP-Tunnel(draft)"
    UDP_ENCAPSULATED_TRANSPORT_DRAFT = 61444, "UDP-Transport(draft)"


class AuthenticationAlgorithm(_Named):
    """RFC 2407 4.5 Authentication Algorithm values (+ RFC 4868, RFC 3566), racoon spelling."""

    HMAC_MD5 = 1, "hmac-md5"
    HMAC_SHA = 2, "hmac-sha"
    DES_MAC = 3, "des-mac"
    KPDK = 4, "kpdk"
    HMAC_SHA2_256 = 5, "hmac-sha256"
    HMAC_SHA2_384 = 6, "hmac-sha384"
    HMAC_SHA2_512 = 7, "hmac-sha512"
    HMAC_RIPEMD = 8, "hmac-ripemd"
    AES_XCBC_MAC = 9, "aes-xcbc-mac"


#: Which value enum names the values of each attribute class.
OAKLEY_VALUE_ENUMS: dict[int, type[_Named]] = {
    OakleyAttribute.ENCRYPTION_ALGORITHM: EncryptionAlgorithm,
    OakleyAttribute.HASH_ALGORITHM: HashAlgorithm,
    OakleyAttribute.AUTHENTICATION_METHOD: AuthenticationMethod,
    OakleyAttribute.GROUP_DESCRIPTION: GroupDescription,
    OakleyAttribute.GROUP_TYPE: GroupType,
    OakleyAttribute.LIFE_TYPE: LifeType,
}
IPSEC_VALUE_ENUMS: dict[int, type[_Named]] = {
    IPsecAttribute.SA_LIFE_TYPE: LifeType,
    IPsecAttribute.GROUP_DESCRIPTION: GroupDescription,
    IPsecAttribute.ENCAPSULATION_MODE: EncapsulationMode,
    IPsecAttribute.AUTHENTICATION_ALGORITHM: AuthenticationAlgorithm,
}


# --------------------------------------------------------------------------- RFC 2407 4.6.2.1
class IDType(_Named):
    """RFC 2407 4.6.2.1 Identification types; ``str()`` is the RFC's ``ID_...`` spelling."""

    IPV4_ADDR = 1, "ID_IPV4_ADDR"
    FQDN = 2, "ID_FQDN"
    USER_FQDN = 3, "ID_USER_FQDN"
    IPV4_ADDR_SUBNET = 4, "ID_IPV4_ADDR_SUBNET"
    IPV6_ADDR = 5, "ID_IPV6_ADDR"
    IPV6_ADDR_SUBNET = 6, "ID_IPV6_ADDR_SUBNET"
    IPV4_ADDR_RANGE = 7, "ID_IPV4_ADDR_RANGE"
    IPV6_ADDR_RANGE = 8, "ID_IPV6_ADDR_RANGE"
    DER_ASN1_DN = 9, "ID_DER_ASN1_DN"
    DER_ASN1_GN = 10, "ID_DER_ASN1_GN"
    KEY_ID = 11, "ID_KEY_ID"


# --------------------------------------------------------------------------- RFC 2408 3.9
class CertEncoding(_Named):
    """RFC 2408 3.9 Certificate Encoding (racoon uses 11 for plain RSA keys)."""

    NONE = 0, "NONE"
    PKCS7 = 1, "PKCS #7 wrapped X.509 certificate"
    PGP = 2, "PGP Certificate"
    DNS_SIGNED_KEY = 3, "DNS Signed Key"
    X509_SIGNATURE = 4, "X.509 Certificate - Signature"
    X509_KEY_EXCHANGE = 5, "X.509 Certificate - Key Exchange"
    KERBEROS = 6, "Kerberos Tokens"
    CRL = 7, "Certificate Revocation List (CRL)"
    ARL = 8, "Authority Revocation List (ARL)"
    SPKI = 9, "SPKI Certificate"
    X509_ATTRIBUTE = 10, "X.509 Certificate - Attribute"
    PLAIN_RSA = 11, "Plain RSA Key"


# --------------------------------------------------------------------------- RFC 2408 3.14.1
class NotifyType(_Hyphenated):
    """Notify message types: RFC 2408 3.14.1, RFC 2407 4.6.3, RFC 3706; racoon's spelling."""

    INVALID_PAYLOAD_TYPE = 1
    DOI_NOT_SUPPORTED = 2
    SITUATION_NOT_SUPPORTED = 3
    INVALID_COOKIE = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_MINOR_VERSION = 6
    INVALID_EXCHANGE_TYPE = 7
    INVALID_FLAGS = 8
    INVALID_MESSAGE_ID = 9
    INVALID_PROTOCOL_ID = 10
    INVALID_SPI = 11
    INVALID_TRANSFORM_ID = 12
    ATTRIBUTES_NOT_SUPPORTED = 13
    NO_PROPOSAL_CHOSEN = 14
    BAD_PROPOSAL_SYNTAX = 15
    PAYLOAD_MALFORMED = 16
    INVALID_KEY_INFORMATION = 17
    INVALID_ID_INFORMATION = 18
    INVALID_CERT_ENCODING = 19
    INVALID_CERTIFICATE = 20
    BAD_CERT_REQUEST_SYNTAX = 21
    INVALID_CERT_AUTHORITY = 22
    INVALID_HASH_INFORMATION = 23
    AUTHENTICATION_FAILED = 24
    INVALID_SIGNATURE = 25
    ADDRESS_NOTIFICATION = 26
    NOTIFY_SA_LIFETIME = 27
    CERTIFICATE_UNAVAILABLE = 28
    UNSUPPORTED_EXCHANGE_TYPE = 29
    UNEQUAL_PAYLOAD_LENGTHS = 30
    CONNECTED = 16384  # RFC 2408 status type
    RESPONDER_LIFETIME = 24576  # RFC 2407 4.6.3.1
    REPLAY_STATUS = 24577  # RFC 2407 4.6.3.2
    INITIAL_CONTACT = 24578  # RFC 2407 4.6.3.3
    R_U_THERE = 36136  # RFC 3706
    R_U_THERE_ACK = 36137  # RFC 3706
    HEARTBEAT = 40503  # racoon knows it by number only


def is_error_notify(notify_type: int) -> bool:
    """RFC 2408 3.14.1: types 1..16383 are errors, 16384..65535 status messages."""
    return 0 < notify_type < 16384


# --------------------------------------------------------------------------- mode config
class ConfigType(_Named):
    """draft-dukes-ike-mode-cfg 3.2 ATTR payload message types."""

    ISAKMP_CFG_REQUEST = 1
    ISAKMP_CFG_REPLY = 2
    ISAKMP_CFG_SET = 3
    ISAKMP_CFG_ACK = 4


#: RFC 2407 4.6.2 / RFC 3947 5.2: ID types allowed as NAT-OA address types.
NAT_OA_ID_TYPES = (IDType.IPV4_ADDR, IDType.IPV6_ADDR)
