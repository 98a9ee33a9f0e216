"""In-process publish/subscribe between the handoff service and open sockets.

Topics are one per conversation (the customer's widget tabs) and one per tenant (its agents'
consoles). Several gateway replicas share a bus instead: ``RedisEventHub`` (``gateway/events/redis_hub.py``)
sends every event through Redis pub/sub, so a customer's socket on one replica sees what an agent on
another one wrote.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

_QUEUE_SIZE = 1000


def conversation_topic(conversation_id: str) -> str:
    """Topic of everything the customer of one conversation should see."""
    return f"conversation:{conversation_id}"


def agents_topic(tenant_id: str) -> str:
    """Topic of everything a tenant's agent consoles should see."""
    return f"agents:{tenant_id}"


class EventHub:
    """Fan-out of JSON events to subscribers' queues; slow subscribers lose events, never block others."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._taps: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()

    @contextmanager
    def tap(self) -> Iterator[asyncio.Queue[tuple[str, dict[str, Any]]]]:
        """Receive ``(topic, event)`` for every topic while the context is open (channel relays)."""
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=_QUEUE_SIZE * 10)
        self._taps.add(queue)
        try:
            yield queue
        finally:
            self._taps.discard(queue)

    @contextmanager
    def subscribe(self, *topics: str) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        """Receive the events of ``topics`` on a queue while the context is open."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        for topic in topics:
            self._subscribers[topic].add(queue)
        try:
            yield queue
        finally:
            for topic in topics:
                self._subscribers[topic].discard(queue)
                if not self._subscribers[topic]:
                    del self._subscribers[topic]

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        """Deliver an event to every subscriber of the topic; returns how many got it."""
        return self.deliver(topic, event)

    def deliver(self, topic: str, event: dict[str, Any]) -> int:
        """Hand an event to this process's subscribers and taps; returns how many subscribers got it."""
        delivered = 0
        for queue in list(self._subscribers.get(topic, ())):
            try:
                queue.put_nowait(event)
                delivered += 1
            except asyncio.QueueFull:
                logger.warning("dropping an event for a slow subscriber of %s", topic)
        for tap in list(self._taps):
            try:
                tap.put_nowait((topic, event))
            except asyncio.QueueFull:
                logger.warning("dropping an event of %s for a slow relay", topic)
        return delivered

    def subscriber_count(self, topic: str) -> int:
        """How many subscribers a topic has (tests, presence)."""
        return len(self._subscribers.get(topic, ()))

    async def run(self) -> None:
        """Background work of a shared bus (nothing in process)."""

    async def aclose(self) -> None:
        """Release a shared bus's connections (nothing in process)."""
