"""Two tenants, two assistants, one Rasa process: own names, intents, help centres and models.

Northwind is the demo tenant (`retail`); Globex gets a `blank` assistant with a name, an intent and a
text of its own and a help centre of its own, trained through the product's retraining pipeline.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.db.session import create_db_engine, create_session_factory
from gateway.learning.retraining import RetrainingPipeline
from gateway.stack import Stack

GLOBEX_ARTICLE = """# Returning a Globex hover widget

Hover widgets can be returned within 14 days of delivery. Pack the widget in its travel case, book a
collection from Returns in your Globex account and hand it to the courier. Refunds are sent to the
original payment method within 2 business days of the widget reaching our Springfield depot.
"""
OPENING_HOURS = "Globex answers in person Monday to Friday, 8am to 6pm Springfield time."
GLOBEX_DATA = """- intent: opening_hours
  examples: |
    - when are you open
    - what are your opening hours
    - are you open on saturday
    - what time do you close today
    - opening times please
    - when does your office open
"""


class Tenant:
    """A tenant's customer API plus what its admin and the operator can do."""

    def __init__(self, stack: Stack, tenant_id: str, widget_key: str) -> None:
        s = stack.settings
        self.stack, self.tenant_id = stack, tenant_id
        self.customer = httpx.Client(base_url=s.gateway_url, timeout=120, headers={"X-Widget-Key": widget_key})

    def say(self, text: str, conversation: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        headers = {}
        if conversation:
            body["conversation_id"] = conversation["conversation_id"]
            headers["X-Conversation-Token"] = conversation["conversation_token"]
        response = self.customer.post("/api/v1/messages", json=body, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    def texts(self, text: str) -> list[str]:
        return [r.get("text") or "" for r in self.say(text)["replies"]]


def agents(stack: Stack) -> dict[str, str]:
    """tenant → model id of the agent Rasa has loaded for it."""
    s = stack.settings
    body = httpx.get(f"{s.rasa_url}/webhooks/gateway/agents",
                     headers={"Authorization": f"Bearer {s.rasa_token.get_secret_value()}"}, timeout=10).json()
    return {a["tenant_id"]: a["model_id"] for a in body["agents"]}


@pytest.fixture(scope="module")
def tenants(running_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Northwind as seeded; Globex created by the operator with a blank assistant, trained once."""
    s = running_stack.settings
    operator = httpx.Client(base_url=f"{s.gateway_url}/api/v1/admin", timeout=120,
                            headers={"Authorization": f"Bearer {s.admin_token.get_secret_value()}"})
    created = operator.post("/tenants", json={"id": "globex", "name": "Globex", "plan": "pro"})
    assert created.status_code == 201, created.text
    # The operator's token opens tenants and plans, nothing of a tenant's: Globex's own admin uploads.
    assert operator.get("/tenants/globex/kb/documents").status_code == 401
    login = httpx.post(f"{s.gateway_url}/api/v1/agent/login", json={
        "tenant": "globex", "email": created.json()["admin"]["email"], "password": created.json()["admin"]["password"]})
    assert login.status_code == 200, login.text
    admin = httpx.Client(base_url=f"{s.gateway_url}/api/v1/admin", timeout=120,
                         headers={"Authorization": f"Bearer {login.json()['token']}"})
    uploaded = admin.put("/tenants/globex/kb/documents/returns.md", content=GLOBEX_ARTICLE.encode(),
                         params={"url": "https://help.globex.example/returns"})
    assert uploaded.status_code == 200, uploaded.text
    globex = Tenant(running_stack, "globex", created.json()["widget_key"])
    northwind = Tenant(running_stack, "northwind", s.demo_widget_key)

    # Before it has an assistant, Globex's customers get an honest answer, never Northwind's bot.
    assert "isn't set up yet" in globex.texts("hello")[0]

    engine = create_db_engine(s.database_url)
    sessions = create_session_factory(engine)
    pipeline = RetrainingPipeline(s, sessions)
    view = pipeline.assistants.create("globex", "blank", "operator", assistant_name="Gloria")
    pipeline.assistants.store.save(
        "globex", view.template, view.settings.model_copy(update={"responses": {"utter_answer_opening_hours": OPENING_HOURS}}),
        view.language_data + GLOBEX_DATA, "import", "globex-admin")
    first = pipeline.retrain("globex", "globex-admin")
    assert first.status == "production", first
    yield {"northwind": northwind, "globex": globex, "pipeline": pipeline, "first": first}
    engine.dispose()


def test_two_tenants_talk_at_once_through_one_rasa_and_each_gets_its_own_assistant(
        running_stack: Stack, tenants: dict[str, Any]) -> None:
    northwind, globex = tenants["northwind"], tenants["globex"]
    results: dict[str, list[list[str]]] = {"northwind": [], "globex": []}

    def converse(tenant: Tenant) -> None:
        for _ in range(3):
            results[tenant.tenant_id].append(tenant.texts("hello"))

    threads = [threading.Thread(target=converse, args=(t,)) for t in (northwind, globex)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert all("Northwind Goods assistant" in replies[0] for replies in results["northwind"]), results
    assert all(replies[0].startswith("Hi! I'm Gloria.") for replies in results["globex"]), results
    assert all("Globex" not in r for replies in results["northwind"] for r in replies)
    loaded = agents(running_stack)
    assert loaded["globex"] == tenants["first"].rasa_model_id and loaded["northwind"] != loaded["globex"]

    # Only Globex has the order-status skill off and an intent of its own.
    assert "order" in " ".join(northwind.texts("where is my order?")).lower()
    assert OPENING_HOURS in globex.texts("when are you open on saturday?")
    assert OPENING_HOURS not in " ".join(northwind.texts("when are you open on saturday?"))


def test_each_tenant_is_answered_from_its_own_help_centre_with_a_citation(tenants: dict[str, Any]) -> None:
    northwind, globex = tenants["northwind"], tenants["globex"]
    refund = northwind.say("How long do refunds take?")
    answer = next(r for r in refund["replies"] if "Source:" in (r.get("text") or ""))
    citation = answer["payload"]["custom"]["kb"]["citations"][0]
    assert citation["source"] == "refund-timing.md", citation
    assert "within 5 business days" not in answer["text"]  # the old canned text contradicted the article

    returns = globex.say("how do I send back a hover widget?")
    answer = next(r for r in returns["replies"] if "Source:" in (r.get("text") or ""))
    assert answer["payload"]["custom"]["kb"]["citations"][0]["source"] == "returns.md", answer
    assert "Springfield depot" in answer["text"]
    # Northwind's help centre knows nothing of Globex's widgets, and the other way round.
    assert "Springfield" not in " ".join(northwind.texts("how do I send back a hover widget?"))
    assert "refund-timing" not in str(globex.say("How long do refunds take?")["replies"])


@pytest.mark.slow
def test_retraining_promoting_and_rolling_back_one_tenant_leave_the_other_untouched(
        running_stack: Stack, tenants: dict[str, Any]) -> None:
    northwind, globex, pipeline = tenants["northwind"], tenants["globex"], tenants["pipeline"]
    northwind_greeting = northwind.texts("hello")
    northwind_model = agents(running_stack)["northwind"]
    northwind_pointer = Path(pipeline.registry.pointer_path("northwind")).read_text()

    second = pipeline.retrain("globex", "globex-admin")
    assert second.status == "production" and second.version == tenants["first"].version + 1, second
    globex.texts("hello")
    assert agents(running_stack) == {**agents(running_stack), "globex": second.rasa_model_id,
                                     "northwind": northwind_model}
    assert northwind.texts("hello") == northwind_greeting

    rolled = pipeline.rollback("globex", "globex-admin")
    assert rolled.version == tenants["first"].version
    globex.texts("hello")
    loaded = agents(running_stack)
    assert loaded["globex"] == tenants["first"].rasa_model_id and loaded["northwind"] == northwind_model
    assert Path(pipeline.registry.pointer_path("northwind")).read_text() == northwind_pointer
    assert pipeline.registry.production("northwind").rasa_model_id == northwind_model
