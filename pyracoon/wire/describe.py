"""Human-readable one-line renderings of payloads, for DEBUG logs and error messages.

Every number is shown by its RFC/racoon name (``NO-PROPOSAL-CHOSEN``,
``ID_IPV4_ADDR``, ``Encryption Algorithm=AES-CBC``); attributes are read as
Oakley attributes (RFC 2409 appendix A) inside PROTO_ISAKMP proposals and as
IPsec DOI attributes (RFC 2407 4.5) elsewhere.
"""

from __future__ import annotations

from .attributes import describe_attribute
from .constants import (
    CertEncoding,
    ConfigType,
    IDType,
    NotifyType,
    PayloadType,
    ProtocolID,
    display_name,
    transform_name,
)
from .message import Encrypted, Message
from .payloads import (
    SA,
    Cert,
    CertRequest,
    Delete,
    Fragment,
    Identification,
    ModeConfig,
    NatOA,
    Notification,
    Payload,
    Proposal,
    _Opaque,
)


def _hex(data: bytes, limit: int = 16) -> str:
    text = bytes(data[:limit]).hex()
    return text + ("..." if len(data) > limit else "")


def describe_proposal(proposal: Proposal) -> str:
    """``P#1 PROTO_IPSEC_ESP spi=c0010203 [T#1 ESP_AES(Key Length=128, ...)]``."""
    phase1 = proposal.protocol_id == ProtocolID.ISAKMP
    transforms = []
    for t in proposal.transforms:
        attrs = ", ".join(describe_attribute(a, phase1=phase1) for a in t.attributes)
        name = transform_name(proposal.protocol_id, t.transform_id)
        transforms.append(f"T#{t.number} {name}({attrs})")
    spi = f" spi={proposal.spi.hex()}" if proposal.spi else ""
    return (
        f"P#{proposal.number} {display_name(ProtocolID, proposal.protocol_id)}{spi} "
        f"[{'; '.join(transforms)}]"
    )


def describe_payload(payload: Payload | Encrypted) -> str:
    """One line naming the payload and its fields."""
    if isinstance(payload, Encrypted):
        return (
            f"E next={display_name(PayloadType, payload.next_payload)} "
            f"{len(payload.ciphertext)} bytes of ciphertext"
        )
    name = payload.name
    if isinstance(payload, SA):
        return f"{name} " + " ".join(describe_proposal(p) for p in payload.proposals)
    if isinstance(payload, Identification):
        return f"{name} {payload}"
    if isinstance(payload, Notification):
        spi = f" spi={payload.spi.hex()}" if payload.spi else ""
        extra = f" data={_hex(payload.data)}" if payload.data else ""
        return (
            f"{name} {display_name(NotifyType, payload.notify_type)} "
            f"{display_name(ProtocolID, payload.protocol_id)}{spi}{extra}"
        )
    if isinstance(payload, Delete):
        spis = ",".join(s.hex() for s in payload.spis)
        return f"{name} {display_name(ProtocolID, payload.protocol_id)} spi={spis}"
    if isinstance(payload, Cert | CertRequest):
        blob = payload.data if isinstance(payload, Cert) else payload.authority
        return f"{name} {display_name(CertEncoding, payload.encoding)} {len(blob)} bytes"
    if isinstance(payload, NatOA):
        return f"{name} {display_name(IDType, payload.id_type)} {payload.address}"
    if isinstance(payload, ModeConfig):
        attrs = ", ".join(f"{a.type}={a.value!r}" for a in payload.attributes)
        kind = display_name(ConfigType, payload.cfg_type)
        return f"{name} {kind} id={payload.identifier} {attrs}"
    if isinstance(payload, Fragment):
        last = " last" if payload.last else ""
        return f"{name} id={payload.fragment_id} #{payload.number}{last} {len(payload.data)} bytes"
    if isinstance(payload, _Opaque):  # KE, HASH, SIG, NONCE, VID, GSS, NAT-D: one octet string
        return f"{name} {len(payload.data)} bytes {_hex(payload.data)}"
    return name  # a Payload subclass with no rendering of its own: its name at least


def describe_message(msg: Message) -> list[str]:
    """The header summary line followed by one line per payload."""
    return [msg.summary()] + ["  " + describe_payload(p) for p in msg.payloads]
