"""Exceptions named after the notify racoon sends for them (the pyikev2 idea).

A handler that finds something wrong raises one of these; the dispatcher catches it, logs
``log_text`` (what a person must change) and, when ``notify`` is set, sends that Notification to
the peer -- protected by HASH(1) once the ISAKMP SA has keys, in the clear before.  The split
h11 makes is kept: :class:`PeerError` subclasses mean *the peer* broke the protocol or does not
match our configuration; :class:`LocalError` means *our* side cannot proceed (missing pre-shared
key, unreadable certificate, no policy) -- racoon sends nothing for those and neither do we.
"""

from __future__ import annotations

from pyracoon.wire.constants import NotifyType


class EngineError(Exception):
    """Base of every negotiation failure; ``str()`` is the text for the log."""

    notify: NotifyType | None = None

    def __init__(
        self,
        log_text: str,
        *,
        details: tuple[str, ...] = (),
        data: bytes = b"",
        notify: NotifyType | None = None,
    ) -> None:
        super().__init__(log_text)
        if notify is not None:  # e.g. the notify a WireError names (INVALID-PAYLOAD-TYPE ...)
            self.notify = notify
        self.log_text = log_text
        #: Further lines for the log: both sides' proposals, the candidates tried, ...
        self.details = details
        #: Notification Data to send with the notify (e.g. the offending payload type).
        self.data = data


class PeerError(EngineError):
    """The peer's message is wrong or does not fit our configuration: answer with a notify."""


class LocalError(EngineError):
    """We cannot go on (configuration, files, kernel): log it, send nothing."""


class NoProposalChosen(PeerError):
    notify = NotifyType.NO_PROPOSAL_CHOSEN


class InvalidIdInformation(PeerError):
    notify = NotifyType.INVALID_ID_INFORMATION


class AuthenticationFailed(PeerError):
    notify = NotifyType.AUTHENTICATION_FAILED


class InvalidCertAuthority(PeerError):
    notify = NotifyType.INVALID_CERT_AUTHORITY


class InvalidCertificate(PeerError):
    notify = NotifyType.INVALID_CERTIFICATE


class InvalidSignature(PeerError):
    notify = NotifyType.INVALID_SIGNATURE


class InvalidHashInformation(PeerError):
    notify = NotifyType.INVALID_HASH_INFORMATION


class PayloadMalformed(PeerError):
    notify = NotifyType.PAYLOAD_MALFORMED


class AttributesNotSupported(PeerError):
    notify = NotifyType.ATTRIBUTES_NOT_SUPPORTED


class InvalidKeyInformation(PeerError):
    notify = NotifyType.INVALID_KEY_INFORMATION


class InvalidFlags(PeerError):
    notify = NotifyType.INVALID_FLAGS


class UnexpectedMessage(EngineError):
    """A message that does not belong to the state it arrived in (late duplicate, reordering):
    racoon drops those silently, logging only at debug."""


class NoPreSharedKey(LocalError):
    """psk.txt has no entry for the peer, or is unusable."""
