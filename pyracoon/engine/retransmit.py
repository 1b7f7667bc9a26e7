"""Retransmission and racoon's received-packet list, for phase 1 and quick mode alike.

racoon's isakmp.c keeps, per SA, the MD5 of every datagram it accepted with the reply it sent
to it (``recvdpkt``): a datagram seen again gets that reply again ("the packet is retransmitted
by A[500] (n)."), one we never answered is ignored.  Our own requests are resent every
``timer interval`` up to ``timer counter`` sends (racoon's isakmp_ph1resend/ph2resend).  Both
exchanges used to carry their own copy of this; :class:`Retransmit` is the one copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pyracoon.config.model import Timer

from .events import Endpoint, Level, fmt_endpoint


def packet_digest(raw: bytes) -> bytes:
    """The received-packet list's key: MD5 of the datagram (not a security use)."""
    return hashlib.md5(raw, usedforsecurity=False).digest()


class Retransmit:
    """One SA's last message, its resend timer and its received-packet list."""

    def __init__(
        self,
        send: Callable[[bytes, Endpoint, Endpoint], None],
        log: Callable[[Level, str], None],
        *,
        log_unanswered: bool,
    ) -> None:
        self._send = send
        self._log = log
        self._log_unanswered = log_unanswered
        self.last_sent: bytes | None = None
        #: MD5 of a datagram we accepted -> the reply we sent to it (None: none).
        self.replies: dict[bytes, bytes | None] = {}
        self.answering: bytes | None = None
        self.resend_at: float | None = None
        self.sends_left = 0
        self.retransmissions_seen = 0

    def replay(self, digest: bytes, local: Endpoint, peer: Endpoint) -> bool:
        """A datagram seen before: send our stored reply again. False for a new datagram."""
        if digest not in self.replies:
            return False
        reply = self.replies[digest]
        if reply is None:
            if self._log_unanswered:
                self._log(Level.DEBUG, "duplicate packet with no reply of ours: ignored")
            return True
        self.retransmissions_seen += 1
        self._log(
            Level.NOTIFY,
            f"the packet is retransmitted by {fmt_endpoint(peer)} ({self.retransmissions_seen}).",
        )
        self._send(reply, local, peer)
        return True

    def begin(self, digest: bytes) -> None:
        """A new datagram is being handled: the next message we send answers it."""
        self.answering = digest

    def accepted(self, digest: bytes) -> None:
        """The datagram checked out: remember it (answered or not)."""
        self.replies.setdefault(digest, None)
        self.answering = None

    def abandon(self) -> None:
        """The datagram failed: it is not remembered."""
        self.answering = None

    def sent(
        self,
        data: bytes,
        local: Endpoint,
        peer: Endpoint,
        now: float,
        timer: Timer,
        *,
        expect_reply: bool,
    ) -> None:
        """Send ``data``; a request is resent until its reply comes or the sends run out."""
        self.last_sent = data
        if self.answering is not None:
            self.replies[self.answering] = data
            self.answering = None
        self._send(data, local, peer)
        if expect_reply:
            self.sends_left = max(timer.counter - 1, 0)
            self.resend_at = now + timer.interval
        else:
            self.resend_at = None

    def stop(self) -> None:
        """The reply came: no more resends."""
        self.resend_at = None

    def due(self, now: float) -> bool:
        """Is the resend timer due?"""
        return self.resend_at is not None and now >= self.resend_at

    def resend(self, local: Endpoint, peer: Endpoint, now: float, timer: Timer) -> bool:
        """The resend timer fired: send again (True), or the sends ran out (False)."""
        if self.sends_left > 0 and self.last_sent is not None:
            self.sends_left -= 1
            self._send(self.last_sent, local, peer)
            self.resend_at = now + timer.interval
            return True
        self.resend_at = None
        return False


__all__ = ["Retransmit", "packet_digest"]
