"""The daemon's phase-1/phase-2 outcomes, handed to whoever is watching at the time.

Two kinds of admin clients wait on them: ``pyracoonctl show-event`` (every event from the
moment it connects, for as long as it stays) and ``pyracoonctl establish-sa -w`` (the one
outcome of the negotiation it started). Each gets a subscription of its own, created before
the thing it waits for can happen, so nothing is missed; nothing is kept for later
subscribers, because an event that happened before a watcher connected (a "Phase 1
established" for an SA deleted since) is history, not news.

A watcher that stops reading must not make the daemon hold events without bound: a
subscription keeps at most ``limit`` events and drops the oldest ones beyond that, counting
them so the watcher can be told.
"""

from __future__ import annotations

import asyncio
from collections import deque

from pyracoon.engine import events as ev


class Subscription:
    """One watcher's queue of events, in the order the engine produced them."""

    def __init__(self, feed: EventFeed, limit: int) -> None:
        self._feed = feed
        self._events: deque[ev.Event] = deque()
        self._limit = limit
        self._ready = asyncio.Event()
        self.dropped = 0
        """Events lost because this watcher fell more than ``limit`` behind."""

    def put(self, event: ev.Event) -> None:
        if len(self._events) >= self._limit:
            self._events.popleft()
            self.dropped += 1
        self._events.append(event)
        self._ready.set()

    async def get(self) -> ev.Event:
        """The next event, waiting for one if there is none yet."""
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    def close(self) -> None:
        self._feed.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventFeed:
    """Fan-out of engine outcome events to the current subscriptions."""

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._subscriptions: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        sub = Subscription(self, self.limit)
        self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    def publish(self, event: ev.Event) -> None:
        for sub in list(self._subscriptions):
            sub.put(event)

    def __len__(self) -> int:
        return len(self._subscriptions)
