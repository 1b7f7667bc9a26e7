"""Typed errors of the ISAKMP codec.

Every failure to decode a datagram raises exactly one exception, a subclass of
:class:`WireError`.  Each carries what both the log line and the reply need:

* ``payload`` -- which structure was being read (``"SA"``, ``"Proposal #1"``,
  ``"ISAKMP header"`` ...),
* ``field`` -- which field of it was wrong (``"payload length"``, ``"SPI size"``),
* ``offset`` -- the byte offset of that field from the start of the datagram
  (or of the decrypted body, plus the ``offset`` the caller passed in),
* ``notify`` -- the RFC 2408 section 3.14.1 / RFC 2407 section 4.6.3 notify message
  type a responder would send back (``PAYLOAD-MALFORMED``, ``INVALID-PAYLOAD-TYPE``,
  ``BAD-PROPOSAL-SYNTAX`` ...),
* ``data`` -- the Notification Data that goes with that notify, when the RFC
  defines one (e.g. the offending payload type for INVALID-PAYLOAD-TYPE).

The subclasses exist so that callers can catch by cause without parsing strings,
in the manner of an exception per notify type.  Everything here is raised by the
peer's bytes, never by our own bugs; encoding errors (a value that does not fit
its field when *we* build a message) raise :class:`EncodeError` instead.
"""

from __future__ import annotations

from .constants import NotifyType, display_name


class WireError(ValueError):
    """A byte string is not a valid ISAKMP message (base class of all codec errors)."""

    default_notify: NotifyType | None = NotifyType.PAYLOAD_MALFORMED

    def __init__(
        self,
        reason: str,
        *,
        payload: str | None = None,
        field: str | None = None,
        offset: int | None = None,
        notify: NotifyType | None = None,
        data: bytes = b"",
    ) -> None:
        self.reason = reason
        self.payload = payload
        self.field = field
        self.offset = offset
        self.notify = notify if notify is not None else self.default_notify
        self.data = data
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.payload:
            where.append(self.payload)
        if self.field:
            where.append(self.field)
        text = " ".join(where)
        if self.offset is not None:
            text = f"{text} at offset {self.offset}" if text else f"at offset {self.offset}"
        if self.notify is not None:
            text = f"{text} ({display_name(NotifyType, self.notify)})" if text else str(self.notify)
        return f"{text}: {self.reason}" if text else self.reason


class MalformedPayload(WireError):
    """A length, count or size does not add up (PAYLOAD-MALFORMED)."""

    default_notify = NotifyType.PAYLOAD_MALFORMED


class UnequalPayloadLengths(MalformedPayload):
    """The ISAKMP header length disagrees with the datagram (UNEQUAL-PAYLOAD-LENGTHS)."""

    default_notify = NotifyType.UNEQUAL_PAYLOAD_LENGTHS


class BadProposalSyntax(MalformedPayload):
    """Proposal/Transform nesting or counts are wrong (BAD-PROPOSAL-SYNTAX)."""

    default_notify = NotifyType.BAD_PROPOSAL_SYNTAX


class InvalidSpi(MalformedPayload):
    """An SPI size is impossible for its protocol (INVALID-SPI)."""

    default_notify = NotifyType.INVALID_SPI


class InvalidIdInformation(MalformedPayload):
    """An Identification payload has an unknown type or a wrong size (INVALID-ID-INFORMATION)."""

    default_notify = NotifyType.INVALID_ID_INFORMATION


class InvalidPayloadType(WireError):
    """A Next Payload field names a type we do not know (INVALID-PAYLOAD-TYPE)."""

    default_notify = NotifyType.INVALID_PAYLOAD_TYPE


class InvalidMajorVersion(WireError):
    """The header's major version is not 1 (INVALID-MAJOR-VERSION)."""

    default_notify = NotifyType.INVALID_MAJOR_VERSION


class InvalidExchangeType(WireError):
    """The header's exchange type is not an assigned value (INVALID-EXCHANGE-TYPE)."""

    default_notify = NotifyType.INVALID_EXCHANGE_TYPE


class InvalidFlags(WireError):
    """The header sets flag bits RFC 2408 does not define (INVALID-FLAGS)."""

    default_notify = NotifyType.INVALID_FLAGS


class DoiNotSupported(WireError):
    """An SA payload uses a DOI other than the IPsec DOI (DOI-NOT-SUPPORTED)."""

    default_notify = NotifyType.DOI_NOT_SUPPORTED


class SituationNotSupported(WireError):
    """An SA payload's situation is not SIT_IDENTITY_ONLY (SITUATION-NOT-SUPPORTED)."""

    default_notify = NotifyType.SITUATION_NOT_SUPPORTED


class EncodeError(WireError):
    """A value we were asked to encode does not fit its field (our bug, not the peer's)."""

    default_notify = None
