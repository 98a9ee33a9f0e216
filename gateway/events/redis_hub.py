"""Event hub shared by several gateway replicas through Redis pub/sub.

``publish`` never blocks the caller: the event is queued and one background task sends the queue to
Redis in order (channel ``<prefix><topic>``). Every replica, the publishing one included, receives
events only from Redis, so each subscriber gets each event exactly once whichever replica holds its
socket. Lost Redis connections are retried with backoff; events published meanwhile wait in the queue
(bounded: when it is full the oldest live update is dropped, as the in-process hub drops for slow
subscribers: the conversation log, not the live feed, is the record).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.handoff.event_hub import EventHub

logger = logging.getLogger(__name__)

_OUTBOX_SIZE = 10_000


class RedisEventHub(EventHub):
    """An ``EventHub`` whose events travel through Redis.

    Args:
        url: Redis URL, e.g. ``redis://127.0.0.1:6379/0``.
        prefix: Channel prefix (several deployments may share one Redis).
    """

    def __init__(self, url: str, prefix: str = "switchboard:hub:") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self._outbox: asyncio.Queue[tuple[str, str]] | None = None
        self._client: aioredis.Redis | None = None
        self.listening = asyncio.Event()
        self.dropped = 0

    def _queue(self) -> asyncio.Queue[tuple[str, str]]:
        if self._outbox is None:
            self._outbox = asyncio.Queue(maxsize=_OUTBOX_SIZE)
        return self._outbox

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        """Queue the event for Redis; subscribers on every replica get it from there. Returns 0."""
        payload = json.dumps(event, default=str)
        outbox = self._queue()
        try:
            outbox.put_nowait((topic, payload))
        except asyncio.QueueFull:
            outbox.get_nowait()
            outbox.put_nowait((topic, payload))
            self.dropped += 1
            logger.warning("the Redis hub's outbox is full: dropped the oldest live event")
        return 0

    async def run(self) -> None:
        """Send queued events and deliver received ones until cancelled."""
        self._client = aioredis.from_url(self.url, health_check_interval=15)
        await asyncio.gather(self._send_forever(), self._listen_forever())

    async def _send_forever(self) -> None:
        outbox = self._queue()
        backoff = 0.2
        while True:
            topic, payload = await outbox.get()
            while True:
                try:
                    assert self._client is not None
                    await self._client.publish(self.prefix + topic, payload)
                    backoff = 0.2
                    break
                except (RedisError, OSError) as exc:
                    logger.warning("Redis publish failed (%s); retrying in %.1fs", exc.__class__.__name__, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(5.0, backoff * 2)

    async def _listen_forever(self) -> None:
        backoff = 0.2
        while True:
            try:
                assert self._client is not None
                async with self._client.pubsub() as pubsub:
                    await pubsub.psubscribe(self.prefix + "*")
                    self.listening.set()
                    backoff = 0.2
                    async for message in pubsub.listen():
                        if message.get("type") != "pmessage":
                            continue
                        channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
                        try:
                            event = json.loads(message["data"])
                        except (ValueError, TypeError):
                            logger.warning("ignoring a malformed hub event on %s", channel)
                            continue
                        self.deliver(channel[len(self.prefix):], event)
            except (RedisError, OSError) as exc:
                self.listening.clear()
                logger.warning("Redis subscription lost (%s); retrying in %.1fs", exc.__class__.__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)

    async def aclose(self) -> None:
        """Close the Redis connection."""
        if self._client is not None:
            await self._client.aclose()
