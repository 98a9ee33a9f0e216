"""A plan's agent seats hold when eight admins add agents at once; the answer states the limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from gateway.billing.plans import Plan, Unit
from tests.conftest import tenant_admin_of


def test_eight_concurrent_seat_requests_on_a_two_seat_plan(client: TestClient) -> None:
    services = client.app.state.services
    services.usage.plans.put(Plan(id="duo", name="Duo", monthly_fee="5", limits={Unit.AGENT_SEATS: 2}))
    services.usage.change_plan("acme", "duo")
    admin = tenant_admin_of(client, "acme")  # the first seat

    def add(n: int) -> int:
        return client.post("/api/v1/agent/agents", headers=admin, json={
            "email": f"agent{n}@acme.example", "display_name": f"Agent {n}",
            "password": "Correct-Horse-9-Battery"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(add, range(8)))
    assert statuses == [201] + [402] * 7
    active = [a for a in services.agents.list("acme") if a.active]
    assert len(active) == 2
    refused = client.post("/api/v1/agent/agents", headers=admin, json={
        "email": "late@acme.example", "display_name": "Late", "password": "Correct-Horse-9-Battery"}).json()
    assert refused["error"] == "plan_limit" and "includes 2 agent seats" in refused["detail"]
    assert refused["limit"] == 2 and refused["in_use"] == 2


def test_a_hard_handoff_limit_holds_when_customers_ask_for_people_at_once(client: TestClient) -> None:
    import asyncio

    from gateway.handoff.triggers import HandoffRequest

    services = client.app.state.services
    services.usage.plans.put(Plan(id="few", name="Few", monthly_fee="0", limits={Unit.HANDOFFS: 3}))
    services.usage.change_plan("acme", "few")
    conversations = [services.conversations.create_conversation("acme", "web") for _ in range(8)]

    async def everyone() -> list:
        return await asyncio.gather(*(services.handoff.start("acme", c, HandoffRequest("customer_request"),
                                                             actor="bot") for c in conversations))

    results = client.portal.call(everyone) if getattr(client, "portal", None) else asyncio.run(everyone())
    opened = [handoff for handoff, _ in results if handoff is not None]
    refused = [said for handoff, said in results if handoff is None]
    assert len(opened) == 3 and len(refused) == 5
    assert all("can't take more conversations" in said[0].text for said in refused)
    summary = services.usage.summary("acme")
    assert {u["unit"]: u["used"] for u in summary["units"]}["handoffs"] == 3
    owners = [services.handoff.handoffs.owner_state("acme", c).value for c in conversations]
    assert owners.count("bot") == 5  # the refused ones stay with the bot
