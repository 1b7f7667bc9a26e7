"""pyracoon.wire: the IKEv1 / ISAKMP message codec, sans I/O.

Bytes in, objects out, and back, byte for byte.  No sockets, no clocks, no
crypto: the engine decrypts and encrypts bodies, this package only parses and
builds them.

Specifications: RFC 2408 (ISAKMP header, payloads, notify types), RFC 2407
(IPsec DOI: situation, protocol and transform ids, SA attributes, ID payload
with protocol/port, notify types), RFC 2409 (IKE: Oakley attributes, quick
mode), RFC 3706 (DPD notifies), RFC 3947 (NAT-D, NAT-OA, UDP encapsulation
modes) and the draft/private numbers racoon also speaks.

Public API
----------
``decode_message(datagram) -> Message``
    Header checks (RFC 2408 5.1) and the plaintext payload chain.  With the E
    flag set the body stays opaque: ``message.encrypted`` is an
    :class:`Encrypted` holding the announced Next Payload and the ciphertext.
``decode_payloads(first_type, plaintext, offset=28, strict=False) -> DecryptedBody``
    The payloads of a decrypted body; trailing CBC padding is returned in
    ``.trailing`` (ignored, as racoon does) or rejected with ``strict=True``.
``encode_message(message) -> bytes`` / ``encode_payloads(payloads) -> (first_type, bytes)``
    The inverses.  Decoding then encoding reproduces the input exactly: TV vs
    TLV attribute forms, reserved fields and payload-type variants (NAT-D 20
    vs 130) are all kept.
``payload.body_bytes()``
    A payload's body without its 4-byte generic header: SAi_b and IDii_b of
    RFC 2409 5 are ``sa.body_bytes()`` and ``identification.body_bytes()``.
``chain_bytes(payloads, start)``
    The exact wire bytes of ``payloads[start:]`` with their generic headers:
    what quick mode HASH(1)/HASH(2) cover after the HASH payload.

Payload classes: :class:`SA` (with :class:`Proposal`, :class:`Transform`,
:class:`Attribute`), :class:`KE`, :class:`Identification`, :class:`Cert`,
:class:`CertRequest`, :class:`Hash`, :class:`Signature`, :class:`Nonce`,
:class:`Notification`, :class:`Delete`, :class:`VendorID`, :class:`NatD`,
:class:`NatOA`, :class:`ModeConfig`, :class:`GSSToken`, :class:`Fragment`.

Errors: every malformed input raises one :class:`WireError` subclass carrying
``payload``, ``field``, ``offset`` and the ``notify`` type to answer with
(``PAYLOAD-MALFORMED``, ``INVALID-PAYLOAD-TYPE``, ``BAD-PROPOSAL-SYNTAX``,
``INVALID-MAJOR-VERSION`` ...).

Names: the enums in :mod:`pyracoon.wire.constants` print as racoon/RFC
spell them (``NO-PROPOSAL-CHOSEN``, ``ID_DER_ASN1_DN``); ``display_name(Enum,
n)`` renders any number, unknown ones as ``UNKNOWN(n)``.

Logs: ``describe_message(msg)`` / ``describe_payload(p)`` render every field by
name; ``classify_natt(datagram)`` tells IKE (non-ESP marker), keepalive and ESP
apart on UDP 4500.

Modules: ``constants`` (numbers and names), ``errors``, ``attributes`` (RFC 2408
3.3), ``payloads`` (RFC 2408 3.2-3.16 and friends), ``message`` (RFC 2408 3.1),
``describe`` (log rendering), ``natt`` (RFC 3948 2 non-ESP marker).
"""

from .attributes import (
    Attribute,
    attribute_name,
    attribute_value_name,
    decode_attributes,
    describe_attribute,
    encode_attributes,
)
from .constants import (
    DOI,
    AHTransformID,
    AuthenticationAlgorithm,
    AuthenticationMethod,
    CertEncoding,
    ConfigType,
    EncapsulationMode,
    EncryptionAlgorithm,
    ESPTransformID,
    ExchangeType,
    Flag,
    GroupDescription,
    GroupType,
    HashAlgorithm,
    IDType,
    IPCompTransformID,
    IPsecAttribute,
    IsakmpTransformID,
    LifeType,
    NotifyType,
    OakleyAttribute,
    PayloadType,
    ProtocolID,
    Situation,
    display_name,
    transform_name,
)
from .describe import describe_message, describe_payload, describe_proposal
from .errors import (
    BadProposalSyntax,
    DoiNotSupported,
    EncodeError,
    InvalidExchangeType,
    InvalidFlags,
    InvalidIdInformation,
    InvalidMajorVersion,
    InvalidPayloadType,
    InvalidSpi,
    MalformedPayload,
    SituationNotSupported,
    UnequalPayloadLengths,
    WireError,
)
from .message import (
    DecryptedBody,
    Encrypted,
    Message,
    chain_bytes,
    decode_message,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from .natt import NattKind, add_non_esp_marker, classify_natt
from .payloads import (
    KE,
    SA,
    Cert,
    CertRequest,
    Delete,
    Fragment,
    GSSToken,
    Hash,
    Identification,
    ModeConfig,
    NatD,
    NatOA,
    Nonce,
    Notification,
    Payload,
    Proposal,
    Signature,
    Transform,
    VendorID,
)

__all__ = [
    "AHTransformID", "Attribute", "AuthenticationAlgorithm", "AuthenticationMethod",
    "BadProposalSyntax", "Cert", "CertEncoding", "CertRequest", "ConfigType", "DOI",
    "DecryptedBody", "Delete", "DoiNotSupported", "ESPTransformID", "EncapsulationMode",
    "EncodeError", "Encrypted", "EncryptionAlgorithm", "ExchangeType", "Flag", "Fragment",
    "GSSToken", "GroupDescription", "GroupType", "Hash", "HashAlgorithm", "IDType",
    "IPCompTransformID", "IPsecAttribute", "Identification", "InvalidExchangeType",
    "InvalidFlags", "InvalidIdInformation", "InvalidMajorVersion", "InvalidPayloadType",
    "InvalidSpi", "IsakmpTransformID", "KE", "LifeType", "MalformedPayload", "Message",
    "ModeConfig", "NatD", "NatOA", "Nonce", "Notification", "NotifyType", "OakleyAttribute",
    "Payload", "PayloadType", "Proposal", "ProtocolID", "SA", "Signature", "Situation",
    "SituationNotSupported", "Transform", "UnequalPayloadLengths", "VendorID", "WireError",
    "attribute_name", "attribute_value_name", "decode_attributes", "decode_message",
    "decode_payloads", "describe_attribute", "display_name", "encode_attributes",
    "encode_message", "encode_payloads", "transform_name", "describe_message",
    "describe_payload", "describe_proposal", "chain_bytes", "NattKind", "add_non_esp_marker",
    "classify_natt",
]  # fmt: skip
