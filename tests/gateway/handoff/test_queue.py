"""Queue rules: one winner among concurrent claims, capacity, priority with aging, the no-agent timeout."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi.testclient import TestClient

from gateway.db.models import utcnow
from gateway.handoff.policy import BusinessHours, HandoffPolicy
from gateway.handoff.states import HandoffState
from gateway.stores.agent_store import AgentRecord, AgentStore
from tests.gateway.conftest import ScriptedDialogueEngine
from tests.gateway.handoff.conftest import HANDOFF_TEXT, PASSWORD, Customer, bearer, login
from tests.conftest import run_async


def services_of(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.services  # type: ignore[attr-defined]


def test_many_parallel_claims_have_exactly_one_winner(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, agent_store: AgentStore
) -> None:
    for i in range(8):
        agent_store.create("acme", f"agent{i}@acme.test", f"Agent {i}", PASSWORD, teams=["general"])
    tokens = [login(client, f"agent{i}@acme.test") for i in range(8)]
    for token in tokens:  # away: nobody is auto-assigned, they must claim
        assert client.put("/api/v1/agent/me/status", json={"status": "away"}, headers=bearer(token)).status_code == 200
    customer = Customer(client)
    customer.say(HANDOFF_TEXT)
    handoff = services_of(client).handoff.handoffs.open_for_conversation("acme", customer.conversation_id)
    assert handoff.state.value == "queued"

    def claim(token: str) -> int:
        return client.post(f"/api/v1/agent/handoffs/{handoff.id}/claim", headers=bearer(token)).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(claim, tokens))
    assert sorted(statuses) == [200] + [409] * 7
    transitions = services_of(client).handoff.handoffs.transitions("acme", customer.conversation_id)
    assert [t.reason for t in transitions].count("claimed") == 1


def test_capacity_is_never_exceeded(client: TestClient, handoff_engine: ScriptedDialogueEngine,
                                    agent_store: AgentStore) -> None:
    solo = agent_store.create("acme", "solo@acme.test", "Solo", PASSWORD, teams=["general"], capacity=1)
    customers = [Customer(client) for _ in range(3)]
    for customer in customers:
        customer.say(HANDOFF_TEXT)
    token = login(client, "solo@acme.test")
    loads = services_of(client).handoff.handoffs.agent_loads("acme")
    assert loads == {solo.id: 1}
    waiting = client.get("/api/v1/agent/queue", headers=bearer(token)).json()["waiting"]
    assert len(waiting) == 2
    refused = client.post(f"/api/v1/agent/handoffs/{waiting[0]['id']}/claim", headers=bearer(token))
    assert refused.status_code == 409 and refused.json()["error"] == "capacity_full"


def test_priority_then_waiting_time_orders_the_queue(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, agent_store: AgentStore
) -> None:
    services = services_of(client)
    normal = Customer(client)
    normal.say(HANDOFF_TEXT)
    vip = Customer(client)
    vip.say("hello")
    services.conversations.set_customer("acme", vip.conversation_id, {"plan": "premium"})
    vip.say(HANDOFF_TEXT)
    entries = run_async(services.handoff.queue("acme"))
    assert [e.handoff.conversation_id for e in entries] == [vip.conversation_id, normal.conversation_id]
    assert [e.position for e in entries] == [1, 2]
    # Aging: a normal customer who has waited long enough overtakes the premium one.
    policy = services.handoff.policies.get("acme")
    later = utcnow() + timedelta(seconds=policy.aging_s * 10)
    from gateway.handoff.policy import effective_priority

    ranks = {e.handoff.conversation_id: effective_priority(policy, e.handoff.priority, e.handoff.queued_at, later)
             for e in entries}
    assert ranks[normal.conversation_id] < ranks[vip.conversation_id]
    # The least busy agent of the right team gets the first one.
    busy = agent_store.create("acme", "busy@acme.test", "Busy", PASSWORD, teams=["general"], capacity=3)
    idle = agent_store.create("acme", "idle@acme.test", "Idle", PASSWORD, teams=["general"], capacity=3)
    other = Customer(client)
    other.say(HANDOFF_TEXT)
    agent_store.set_status("acme", busy.id, "online")
    run_async(services.handoff.auto_assign("acme"))
    assert services.handoff.handoffs.agent_loads("acme") == {busy.id: 3}
    agent_store.set_status("acme", idle.id, "online")
    third = Customer(client)
    third.say(HANDOFF_TEXT)
    assert services.handoff.handoffs.open_for_conversation("acme", third.conversation_id).agent_id == idle.id


def test_no_agent_timeout_offers_a_message_or_the_bot(
    client: TestClient, handoff_engine: ScriptedDialogueEngine
) -> None:
    services = services_of(client)
    services.handoff.policies.put("acme", HandoffPolicy(no_agent_timeout_s=60))
    customer = Customer(client)
    customer.say(HANDOFF_TEXT)
    run_async(services.handoff.tick(["acme"], now=utcnow() + timedelta(seconds=30)))
    assert not any("still busy" in (m["text"] or "") for m in customer.history())
    run_async(services.handoff.tick(["acme"], now=utcnow() + timedelta(seconds=61)))
    offer = [m for m in customer.history() if "still busy" in (m["text"] or "")]
    assert len(offer) == 1
    assert [b["payload"] for b in offer[0]["payload"]["buttons"]] == ["/handoff_leave_message", "/handoff_back_to_bot"]
    run_async(services.handoff.tick(["acme"], now=utcnow() + timedelta(seconds=200)))
    assert len([m for m in customer.history() if "still busy" in (m["text"] or "")]) == 1  # offered once

    back = customer.say("/handoff_back_to_bot")
    assert [r["text"] for r in back["replies"]] == ["Okay, you're back with the assistant.", "bot again"]
    assert services.handoff.handoffs.owner_state("acme", customer.conversation_id).value == "bot"
    assert customer.say("hello again")["replies"][0]["text"] == "echo: hello again"


def test_leaving_a_message_keeps_it_for_the_team(client: TestClient, handoff_engine: ScriptedDialogueEngine,
                                                 alice: AgentRecord) -> None:
    services = services_of(client)
    closed = {"mon": "", "tue": "", "wed": "", "thu": "", "fri": "", "sat": "", "sun": ""}
    services.handoff.policies.put("acme", HandoffPolicy(business_hours=BusinessHours(days={k: v for k, v in closed.items() if v})))
    customer = Customer(client)
    turn = customer.say(HANDOFF_TEXT)
    assert "offline" in turn["replies"][-1]["text"]
    token = login(client, "alice@acme.test")  # online, but out of hours: nobody is assigned
    customer.say("/handoff_leave_message")
    customer.say("Please call me back about order A1234, dana@example.com")
    handoff = services.handoff.handoffs.open_for_conversation("acme", customer.conversation_id)
    assert handoff.state.value == "queued" and handoff.left_message
    packet = client.get(f"/api/v1/agent/conversations/{customer.conversation_id}", headers=bearer(token)).json()
    assert packet["transcript"][-1]["text"].startswith("Please call me back")


def test_business_hours() -> None:
    from datetime import datetime, timezone

    hours = BusinessHours(timezone="Europe/Berlin", days={"mon": "09:00-17:00"})
    monday_10_berlin = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)  # 10:00 in Berlin
    assert hours.is_open(monday_10_berlin)
    assert not hours.is_open(monday_10_berlin + timedelta(hours=8))
    assert not hours.is_open(monday_10_berlin + timedelta(days=1))
    import pytest

    with pytest.raises(ValueError):
        BusinessHours(days={"mon": "17:00-09:00"})
    with pytest.raises(ValueError):
        BusinessHours(timezone="Mars/Olympus")


def test_auto_assign_fills_every_free_seat_reading_the_agents_once(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, agent_store: AgentStore
) -> None:
    services = services_of(client)
    waiting = [Customer(client) for _ in range(5)]
    for customer in waiting:
        customer.say(HANDOFF_TEXT)  # nobody online: all five wait
    first = agent_store.create("acme", "first@acme.test", "First", PASSWORD, teams=["general"], capacity=2)
    second = agent_store.create("acme", "second@acme.test", "Second", PASSWORD, teams=["general"], capacity=2)
    for agent in (first, second):
        agent_store.set_status("acme", agent.id, "online")
    reads: list[str] = []
    agents_list = services.handoff.agents.list
    services.handoff.agents.list = lambda tenant_id: reads.append(tenant_id) or agents_list(tenant_id)
    try:
        assigned = run_async(services.handoff.auto_assign("acme"))
    finally:
        services.handoff.agents.list = agents_list
    # Four seats, given in queue order, two to each (loads counted as they are given out).
    queued = [services.handoff.handoffs.open_for_conversation("acme", c.conversation_id) for c in waiting]
    assert assigned == [h.id for h in queued[:4]]
    assert services.handoff.handoffs.agent_loads("acme") == {first.id: 2, second.id: 2}
    assert queued[4].state == HandoffState.QUEUED
    # The queue's estimate (whose agents the assignments reuse) and the positions published after them:
    # not once per handoff.
    assert len(reads) == 2


def _agent(name: str, *, teams: tuple[str, ...] = ("general",), capacity: int = 2, status: str = "online",
           active: bool = True, role: str = "agent") -> AgentRecord:
    return AgentRecord(name, "acme", f"{name}@acme.test", name, role, teams, capacity, status, active)


def test_least_busy_offers_free_online_agents_of_the_team_by_share_of_capacity() -> None:
    from gateway.handoff.queue import least_busy, serves

    agents = [_agent("full", capacity=1), _agent("half", capacity=4), _agent("idle", capacity=1),
              _agent("away", status="away"), _agent("gone", active=False), _agent("billing", teams=("billing",)),
              _agent("boss", teams=(), role="supervisor")]
    loads = {"full": 1, "half": 2}
    assert [a.id for a in least_busy(agents, loads, "general")] == ["idle", "boss", "half"]
    assert [a.id for a in least_busy(agents, loads, "billing")] == ["billing", "boss"]
    assert {a.id for a in least_busy(agents, loads, None)} == {"idle", "boss", "half", "billing"}
    assert serves(agents[0], None) and not serves(agents[5], "general") and serves(agents[6], "anything")


def test_wait_text_counts_minutes_or_says_nobody_is_free() -> None:
    from gateway.handoff.queue import wait_text

    assert wait_text(3, 90) == "You're number 3 in the queue; the estimated wait is about 2 minutes."
    assert "about 1 minute." in wait_text(1, 10)
    assert "Nobody from the team is free" in wait_text(2, None)
