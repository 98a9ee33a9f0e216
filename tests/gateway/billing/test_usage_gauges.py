"""The usage page's counts are the database's: seats and documents in use now, not zero until the period closes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gateway.db.models import KnowledgeDocument
from gateway.stores.agent_store import AgentStore
from tests.conftest import tenant_admin_of


def test_the_running_periods_gauges_are_what_is_in_use(client: TestClient) -> None:
    services = client.app.state.services
    services.usage.plans.seed()
    services.usage.change_plan("acme", "pro")
    admin = tenant_admin_of(client, "acme")  # an active agent too
    store = AgentStore(services.sessions)
    for n in range(3):
        store.create("acme", f"agent{n}@acme.example", f"Agent {n}", "Correct-Horse-9-Battery")
    gone = store.create("acme", "gone@acme.example", "Gone", "Correct-Horse-9-Battery")
    store.update("acme", gone.id, active=False)
    with services.sessions.begin() as session:
        for n in range(2):
            session.add(KnowledgeDocument(tenant_id="acme", source=f"doc{n}.md", title=f"Doc {n}", kind="markdown",
                                          content_hash=str(n) * 64))
    usage = client.get("/api/v1/admin/tenants/acme/usage", headers=admin).json()
    used = {u["unit"]: u["used"] for u in usage["units"]}
    assert used["agent_seats"] == 4 and used["kb_documents"] == 2  # the admin and 3 agents; the deactivated one is not
    seats = next(u for u in usage["units"] if u["unit"] == "agent_seats")
    assert seats["limit"] == 10 and seats["percent"] == 40.0
    # The other tenant's page counts only its own.
    other = client.get("/api/v1/admin/tenants/globex/usage", headers=tenant_admin_of(client, "globex")).json()
    assert {u["unit"]: u["used"] for u in other["units"]}["kb_documents"] == 0
