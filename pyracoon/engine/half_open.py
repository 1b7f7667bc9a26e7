"""Half-open responder phase 1s: capped per peer address and in total (RFC 2408 2.5.3's
clogging concern; strongSwan's ``half_open`` limits do the same for IKEv2).

Why: a first message costs its sender nothing (IKEv1 has no stateless cookie exchange), and
spoofed MM1s from many addresses would otherwise grow the responder's table without bound and
crowd out real peers.  The total cap **evicts the oldest** half-open responder rather than
refusing new ones: a real peer answers within a round trip, so its negotiation stays among the
young ones as long as the flood's rate times that round trip is below the cap, while the flood's
own entries are the first to go.  The per-address cap refuses a further first message from an
address that already has that many half-open, so one address cannot fill the table alone.
"""

from __future__ import annotations

from collections import Counter

from .events import Endpoint, IPAddress, fmt_endpoint
from .phase1 import Phase1

#: Defaults: generous for real peers (NAT gateways with many clients included), small enough
#: that a full table costs a few megabytes.
DEFAULT_TOTAL = 1024
DEFAULT_PER_PEER = 32


class HalfOpen:
    """Responder phase 1s not yet established, oldest first, and how many each address has."""

    def __init__(self, total: int = DEFAULT_TOTAL, per_peer: int = DEFAULT_PER_PEER) -> None:
        if total < 1 or per_peer < 1:
            raise ValueError("half-open limits must be at least 1")
        self.total = total
        self.per_peer = per_peer
        self._entries: dict[int, Phase1] = {}  # id(ph1) -> ph1, in the order they came
        self._per_peer: Counter[IPAddress] = Counter()
        #: First messages refused and responders evicted so far (for logs and benchmarks).
        self.refused = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def admits(self, address: IPAddress) -> bool:
        """May ``address`` open one more? (False counts as a refusal.)"""
        if self._per_peer[address] < self.per_peer:
            return True
        self.refused += 1
        return False

    def add(self, ph1: Phase1) -> Phase1 | None:
        """Track ``ph1`` (its ``peer[0]`` is the address); the oldest one it pushes out of the
        table, which the caller removes, or None."""
        evicted = None
        if len(self._entries) >= self.total:
            oldest = next(iter(self._entries.values()))
            self.discard(oldest)
            self.evicted += 1
            evicted = oldest
        self._entries[id(ph1)] = ph1
        self._per_peer[ph1.peer[0]] += 1
        return evicted

    def refusal(self, remote: Endpoint) -> str:
        """The log line for a first message :meth:`admits` refused."""
        return (
            f"first message from {fmt_endpoint(remote)} dropped: it has {self.per_peer} "
            "half-open ISAKMP-SAs already, the most one address may have"
        )

    def eviction(self, ph1: Phase1) -> str:
        """The log line for a responder :meth:`add` pushed out."""
        return (
            f"half-open ISAKMP-SA {ph1.index()} from {fmt_endpoint(ph1.peer)} given up: "
            f"{self.total} are half-open, the most this host keeps"
        )

    def discard(self, ph1: Phase1) -> None:
        """``ph1`` is established or gone: no longer half-open."""
        if self._entries.pop(id(ph1), None) is None:
            return
        address = ph1.peer[0]
        self._per_peer[address] -= 1
        if self._per_peer[address] <= 0:
            del self._per_peer[address]


__all__ = ["DEFAULT_PER_PEER", "DEFAULT_TOTAL", "HalfOpen"]
