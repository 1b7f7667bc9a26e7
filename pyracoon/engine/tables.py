"""The dispatcher's SA tables, indexed the ways an input looks them up.

Why: a datagram, an ACQUIRE or a kernel reply must cost the same with ten SAs or ten thousand
(the per-input work that grew with the SAs held is what made pyracoon's rate fall as SAs
accumulated).  The tables stay plain mappings -- ``ph1s[icky]``, ``quicks[(icky, mid)]`` -- so
the code that reads them does not change, and each keeps the secondary indexes it needs current
on every insertion and removal: the ISAKMP SAs of a peer address, the quick modes of an ISAKMP
SA, and the quick modes of an SPD policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .events import IPAddress
from .phase1 import P1State, Phase1
from .quick import Quick


class Phase1Table(dict[bytes, Phase1]):
    """``icky -> Phase1``, and the ISAKMP SAs of each peer address."""

    def __init__(self) -> None:
        super().__init__()
        self._by_peer: dict[IPAddress, dict[bytes, Phase1]] = {}

    def __setitem__(self, icky: bytes, ph1: Phase1) -> None:
        old = self.get(icky)
        if old is not None:
            self._unindex(icky, old)
        super().__setitem__(icky, ph1)
        self._by_peer.setdefault(ph1.peer[0], {})[icky] = ph1

    def __delitem__(self, icky: bytes) -> None:
        self._unindex(icky, self[icky])
        super().__delitem__(icky)

    def pop(self, icky: bytes, *default: Any) -> Any:
        if icky in self:
            self._unindex(icky, self[icky])
        return super().pop(icky, *default)

    def clear(self) -> None:
        super().clear()
        self._by_peer.clear()

    def _unindex(self, icky: bytes, ph1: Phase1) -> None:
        peers = self._by_peer.get(ph1.peer[0])
        if peers is not None:
            peers.pop(icky, None)
            if not peers:
                del self._by_peer[ph1.peer[0]]

    def of_peer(self, address: IPAddress) -> Iterable[Phase1]:
        """The ISAKMP SAs with ``address`` (a copy: callers may remove while iterating)."""
        return list(self._by_peer.get(address, {}).values())

    def best_for(self, address: IPAddress) -> Phase1 | None:
        """The ISAKMP SA to use with ``address``: an established one that is not dying (the
        newest), else a dying one, else one still negotiating; None when none is alive."""
        alive = [
            ph1
            for ph1 in self._by_peer.get(address, {}).values()
            if ph1.state not in (P1State.FAILED, P1State.EXPIRED)
        ]
        alive.sort(key=lambda ph1: (not ph1.established, ph1.dying, -(ph1.established_at or 0.0)))
        return alive[0] if alive else None


class QuickTable(dict[tuple[bytes, int], Quick]):
    """``(icky, message id) -> Quick``, and the quick modes of each ISAKMP SA and policy."""

    def __init__(self) -> None:
        super().__init__()
        self._by_ph1: dict[bytes, dict[int, Quick]] = {}
        self._by_policy: dict[int, dict[tuple[bytes, int], Quick]] = {}
        #: The policy each key was indexed under (a responder's request is filled in later).
        self._policy_of: dict[tuple[bytes, int], int] = {}

    def __setitem__(self, key: tuple[bytes, int], q: Quick) -> None:
        old = self.get(key)
        if old is not None:
            self._unindex(key, old)
        super().__setitem__(key, q)
        self._by_ph1.setdefault(key[0], {})[key[1]] = q
        policy_id = q.request.policy_id
        self._policy_of[key] = policy_id
        self._by_policy.setdefault(policy_id, {})[key] = q

    def __delitem__(self, key: tuple[bytes, int]) -> None:
        self._unindex(key, self[key])
        super().__delitem__(key)

    def pop(self, key: tuple[bytes, int], *default: Any) -> Any:
        if key in self:
            self._unindex(key, self[key])
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self._by_ph1.clear()
        self._by_policy.clear()
        self._policy_of.clear()

    def _unindex(self, key: tuple[bytes, int], q: Quick) -> None:
        mine = self._by_ph1.get(key[0])
        if mine is not None:
            mine.pop(key[1], None)
            if not mine:
                del self._by_ph1[key[0]]
        policy_id = self._policy_of.pop(key, q.request.policy_id)
        ours = self._by_policy.get(policy_id)
        if ours is not None:
            ours.pop(key, None)
            if not ours:
                del self._by_policy[policy_id]

    def of_phase1(self, icky: bytes) -> list[Quick]:
        """The quick modes under the ISAKMP SA ``icky`` (a copy)."""
        return list(self._by_ph1.get(icky, {}).values())

    def for_policy(self, policy_id: int) -> list[Quick]:
        """The quick modes started for SPD policy ``policy_id`` (a copy; the policy is the one
        their request had when they were put in the table: an initiator's, from its ACQUIRE)."""
        return list(self._by_policy.get(policy_id, {}).values())


__all__ = ["Phase1Table", "QuickTable"]
