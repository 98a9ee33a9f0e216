"""Gateway replicas share live events through the machine's real Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.conftest import run_async, service_up

from gateway.events.redis_hub import RedisEventHub
from gateway.handoff.event_hub import agents_topic, conversation_topic

REDIS_URL = "redis://127.0.0.1:6379/0"



pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not service_up(6379), reason="Redis is NOT running on 127.0.0.1:6379: replicas are untested")]


async def _replicas(count: int) -> tuple[list[RedisEventHub], list[asyncio.Task[None]]]:
    prefix = f"sb-test-{uuid.uuid4().hex[:8]}:"
    hubs = [RedisEventHub(REDIS_URL, prefix=prefix) for _ in range(count)]
    tasks = [asyncio.create_task(hub.run()) for hub in hubs]
    for hub in hubs:
        await asyncio.wait_for(hub.listening.wait(), 10)
    return hubs, tasks


async def _stop(hubs: list[RedisEventHub], tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for hub in hubs:
        await hub.aclose()


async def _drain(queue: asyncio.Queue[Any], count: int) -> list[Any]:
    return [await asyncio.wait_for(queue.get(), 10) for _ in range(count)]


def test_an_event_published_on_one_replica_reaches_subscribers_on_every_replica_once_in_order() -> None:
    async def scenario() -> None:
        (a, b), tasks = await _replicas(2)
        try:
            topic = conversation_topic("c-1")
            with a.subscribe(topic) as on_a, b.subscribe(topic) as on_b, b.subscribe(agents_topic("t")) as other:
                for n in range(200):
                    (a if n % 2 else b).publish(topic, {"type": "message", "n": n})
                received = [[e["n"] for e in await _drain(on_a, 200)], [e["n"] for e in await _drain(on_b, 200)]]
                await asyncio.sleep(0.3)
                assert on_a.empty() and on_b.empty() and other.empty()  # once each, nothing on other topics
            for numbers in received:
                assert sorted(numbers) == list(range(200))
                # Each publisher's events arrive in the order it published them.
                for parity in (0, 1):
                    own = [n for n in numbers if n % 2 == parity]
                    assert own == sorted(own)
        finally:
            await _stop([a, b], tasks)

    run_async(scenario())


def test_taps_see_every_topic_and_malformed_frames_are_ignored() -> None:
    async def scenario() -> None:
        (a, b), tasks = await _replicas(2)
        try:
            with b.tap() as tap:
                assert a._client is not None
                await a._client.publish(a.prefix + "agents:t", b"{not json")
                a.publish(agents_topic("t"), {"type": "queue_changed"})
                assert await asyncio.wait_for(tap.get(), 10) == ("agents:t", {"type": "queue_changed"})
        finally:
            await _stop([a, b], tasks)

    run_async(scenario())
