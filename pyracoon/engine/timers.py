"""One timer structure for every SA of the host: a heap with lazy invalidation.

Each SA (phase 1, quick mode, a phase-2 request waiting for its phase 1) has at most one
registered time, the earliest of its own timers.  Re-registering pushes a new heap entry and
makes the old one stale (its token no longer matches); stale entries are dropped when they come
to the top.  So :meth:`TimerHeap.next` is O(1) amortised and :meth:`TimerHeap.pop_due` touches
only what is due: the cost of a timer input does not grow with the SAs held (racoon's
sched.c keeps one sorted list for the same reason).

Times are the engine's ``now``: monotonic in the daemon, so a wall-clock step moves nothing.
``visits`` counts the heap entries examined, for the test that proves the cost claim.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class TimerHeap(Generic[K]):
    """``key -> when``, earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._token: dict[K, tuple[float, int]] = {}
        self._order: dict[K, int] = {}
        self._count = itertools.count()
        #: Heap entries examined so far (current or stale).
        self.visits = 0

    def __len__(self) -> int:
        return len(self._token)

    def has(self, key: K) -> bool:
        """Does ``key`` have a time?"""
        return key in self._token

    def set(self, key: K, when: float | None) -> None:
        """Register ``key`` at ``when`` (None: no timer), replacing its previous time."""
        if when is None:
            self.cancel(key)
            return
        current = self._token.get(key)
        if current is not None and current[0] == when:
            return
        n = next(self._count)
        self._order.setdefault(key, n)
        self._token[key] = (when, n)
        heapq.heappush(self._heap, (when, n, key))

    def cancel(self, key: K) -> None:
        """Forget ``key`` (its heap entries become stale)."""
        self._token.pop(key, None)
        self._order.pop(key, None)

    def _drop_stale(self) -> None:
        while self._heap:
            when, n, key = self._heap[0]
            self.visits += 1
            if self._token.get(key) == (when, n):
                return
            heapq.heappop(self._heap)

    def next(self) -> float | None:
        """The earliest registered time, or None."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, rank: Callable[[K], int] = lambda _k: 0) -> list[K]:
        """Every key due at ``now``, unregistered, ordered by ``rank`` then by the order in
        which the keys were first registered (the order the SAs were created in)."""
        due: list[K] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                break
            _, _, key = heapq.heappop(self._heap)
            due.append(key)
            self._token.pop(key, None)
        due.sort(key=lambda k: (rank(k), self._order.get(k, -1)))
        return due


__all__ = ["TimerHeap"]
