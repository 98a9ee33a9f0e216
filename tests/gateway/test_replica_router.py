"""Replica router: a conversation's replica is fixed, shared by every gateway, and moves only when it must."""

from __future__ import annotations

import time

from gateway.replica_router import ReplicaRouter

URLS = ["http://rasa-1:5005", "http://rasa-2:5005", "http://rasa-3:5005"]


def test_every_gateway_orders_a_conversations_replicas_the_same_and_spreads_conversations() -> None:
    first, second = ReplicaRouter(URLS), ReplicaRouter(list(reversed(URLS)))
    conversations = [f"conversation-{n}" for n in range(600)]
    assert all(first.order(c) == second.order(c) for c in conversations)
    counts = {url: sum(first.order(c)[0] == url for c in conversations) for url in URLS}
    assert min(counts.values()) > 150  # about 200 each


def test_losing_a_replica_moves_only_its_conversations() -> None:
    three, two = ReplicaRouter(URLS), ReplicaRouter(URLS[:2])
    for n in range(300):
        before = three.order(f"c{n}")[0]
        if before != URLS[2]:
            assert two.order(f"c{n}")[0] == before


def test_a_refusing_replica_is_tried_last_until_its_time_is_up() -> None:
    router = ReplicaRouter(URLS, down_s=0.2)
    preferred = router.order("c1")
    router.report_down(preferred[0] + "/")
    assert router.order("c1") == [*preferred[1:], preferred[0]]
    time.sleep(0.25)
    assert router.order("c1") == preferred
    router.report_down(preferred[0])
    router.report_up(preferred[0])
    assert router.order("c1") == preferred
    assert ReplicaRouter(URLS[:1]).order("anything") == URLS[:1]
