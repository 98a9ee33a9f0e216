"""Erasure and retention: after erasing a customer no store returns any of their text."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
import json
from pathlib import Path

from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.app import create_app
from gateway.db.models import (Conversation, ConversationEvent, Erasure, Feedback, Message, TrainingExample, WebhookDelivery,
                               WebhookEndpoint, utcnow)
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine
from tests.conftest import tenant_admin_of

ADMIN_TOKEN = "admin-" + "p" * 40
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRET = "jane.doe@example.com lives at 221B Baker Street"


def _tracker(path: Path) -> None:
    """Rasa's SQL tracker store table (the columns erasure relies on)."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), "
                                "type_name VARCHAR(255), data TEXT)"))
    engine.dispose()


@pytest.fixture
def gateway(settings: Settings, sessions: sessionmaker[Session]) -> TestClient:
    _tracker(settings.rasa_tracker_db)
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    TenantStore(sessions).issue_widget_key("acme", WIDGET_KEY)
    app = create_app(settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)}),
                     dialogue=ScriptedDialogueEngine())
    with TestClient(app) as client:
        yield client  # type: ignore[misc]


def _conversation(client: TestClient, customer_id: str, words: str, settings: Settings) -> dict:
    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as socket:
        socket.send_json({"type": "hello", "customer": {"id": customer_id, "email": f"{customer_id}@example.com"}})
        session = socket.receive_json()
        socket.send_json({"type": "message", "text": words, "client_id": "c1"})
        while socket.receive_json().get("type") != "ack":
            pass
    engine = create_engine(settings.tracker_store_url)
    with engine.begin() as connection:  # what Rasa would have stored for the turn
        connection.execute(text("INSERT INTO events (sender_id, type_name, data) VALUES (:s, 'user', :d)"),
                           {"s": session["conversation_id"], "d": f'{{"text": "{words}"}}'})
    engine.dispose()
    return session


def test_erasing_a_customer_removes_their_text_everywhere_and_is_recorded(
        gateway: TestClient, settings: Settings, sessions: sessionmaker[Session]) -> None:
    first = _conversation(gateway, "cust-1", SECRET, settings)
    second = _conversation(gateway, "cust-1", "second visit from jane", settings)
    other = _conversation(gateway, "cust-2", "someone else entirely", settings)
    with sessions.begin() as session:
        reply = session.execute(select(Message).where(Message.conversation_id == first["conversation_id"],
                                                      Message.sender == "bot")).scalars().first()
        session.add(Feedback(tenant_id="acme", conversation_id=first["conversation_id"], kind="helpful",
                             target=str(reply.id), score=1, comment="thanks jane", channel="web"))
        # What the broker consumer logged for the turns (scale-out path).
        for conversation, words in ((first, SECRET), (other, "someone else entirely")):
            session.add(ConversationEvent(event_key=conversation["conversation_id"], tenant_id="acme",
                                          conversation_id=conversation["conversation_id"], event="user",
                                          timestamp=1.0, body={"event": "user", "text": words}))
        # A reviewer accepted jane's second message as a training example.
        visit = session.execute(select(Message).where(Message.conversation_id == second["conversation_id"],
                                                      Message.sender == "customer")).scalars().first()
        session.add(TrainingExample(tenant_id="acme", message_id=visit.id, conversation_id=second["conversation_id"],
                                    text=visit.text, intent="greet", status="accepted", reviewer="r"))
        # A webhook event about jane's conversation waits in the outbox (its endpoint is down).
        endpoint = WebhookEndpoint(tenant_id="acme", url="https://crm.example/hook", secret="s" * 32)
        session.add(endpoint)
        session.flush()
        session.add(WebhookDelivery(endpoint_id=endpoint.id, tenant_id="acme", event="handoff.resolved",
                                    body=json.dumps({"conversation_id": first["conversation_id"],
                                                     "note": "jane.baker@example.com wants a refund"})))
    assert "jane" in gateway.get("/api/v1/admin/tenants/acme/training-data.yml", headers=tenant_admin_of(gateway, "acme")).text

    erased = gateway.post("/api/v1/admin/tenants/acme/erasures", json={"customer_id": "cust-1"}, headers=tenant_admin_of(gateway, "acme"))
    assert erased.status_code == 200
    assert erased.json() == {"conversations": 2, "messages": erased.json()["messages"], "tracker_events": 2}
    assert erased.json()["messages"] >= 4

    for conversation in (first, second):
        history = gateway.get(f"/api/v1/conversations/{conversation['conversation_id']}/messages",
                              headers={"X-Widget-Key": WIDGET_KEY,
                                       "X-Conversation-Token": conversation["conversation_token"]})
        assert history.status_code == 404
    # No store holds any of their text: gateway tables, Rasa's tracker store, the raw database files.
    with sessions() as session:
        texts = [m.text or "" for m in session.execute(select(Message)).scalars()]
        assert not any("jane" in t or "Baker" in t for t in texts)
        assert session.execute(select(Feedback)).first() is None
        assert session.execute(select(TrainingExample)).first() is None
        assert [e.conversation_id for e in session.execute(select(ConversationEvent)).scalars()] == \
            [other["conversation_id"]]
        customers = [c.customer for c in session.execute(select(Conversation)).scalars()]
        assert customers == [{"id": "cust-2", "email": "cust-2@example.com"}]
        record = session.execute(select(Erasure)).scalar_one()
        assert record.subject == "customer" and "cust-1" not in record.subject_hash and record.actor == "admin-api"
    engine = create_engine(settings.tracker_store_url)
    with engine.connect() as connection:
        senders = connection.execute(text("SELECT sender_id FROM events")).scalars().all()
    engine.dispose()
    assert senders == [other["conversation_id"]]
    with sessions() as session:
        assert session.execute(select(WebhookDelivery)).first() is None  # never sent after the erasure
    # No file of the deployment holds the text any more: databases and their write-ahead logs.
    leftovers = [p.name for p in Path(settings.database_url.split("///")[1]).parent.rglob("*")
                 if p.is_file() and b"jane" in p.read_bytes().lower()]
    assert leftovers == []
    assert "jane" not in gateway.get("/api/v1/admin/tenants/acme/training-data.yml", headers=tenant_admin_of(gateway, "acme")).text
    # The other customer is untouched.
    kept = gateway.get(f"/api/v1/conversations/{other['conversation_id']}/messages",
                       headers={"X-Widget-Key": WIDGET_KEY, "X-Conversation-Token": other["conversation_token"]})
    assert [m["text"] for m in kept.json()["messages"]][0] == "someone else entirely"
    assert gateway.get("/api/v1/admin/tenants/acme/erasures", headers=tenant_admin_of(gateway, "acme")).json()["erasures"][0]["conversations"] == 2


def test_an_erasure_request_needs_exactly_one_subject_and_another_tenants_id_erases_nothing(
        gateway: TestClient, settings: Settings, sessions: sessionmaker[Session]) -> None:
    session = _conversation(gateway, "cust-1", "hello", settings)
    assert gateway.post("/api/v1/admin/tenants/acme/erasures", json={}, headers=tenant_admin_of(gateway, "acme")).status_code == 422
    assert gateway.post("/api/v1/admin/tenants/acme/erasures", json={"customer_id": "a", "conversation_id": "b"},
                        headers=tenant_admin_of(gateway, "acme")).status_code == 422
    TenantStore(sessions).ensure_tenant("globex", "Globex")
    wrong = gateway.post("/api/v1/admin/tenants/globex/erasures", json={"conversation_id": session["conversation_id"]},
                         headers=tenant_admin_of(gateway, "globex"))
    assert wrong.json()["conversations"] == 0
    with sessions() as db:
        assert db.get(Conversation, session["conversation_id"]) is not None


def test_retention_erases_conversations_past_the_tenants_limit(gateway: TestClient, settings: Settings,
                                                               sessions: sessionmaker[Session]) -> None:
    old = _conversation(gateway, "cust-1", "an old conversation", settings)
    new = _conversation(gateway, "cust-2", "a fresh conversation", settings)
    with sessions.begin() as session:
        session.execute(update(Conversation).where(Conversation.id == old["conversation_id"])
                        .values(updated_at=utcnow() - timedelta(days=40)))
    assert gateway.put("/api/v1/admin/tenants/acme/privacy", json={"retention_days": 30}, headers=tenant_admin_of(gateway, "acme")).status_code == 200
    assert gateway.put("/api/v1/admin/tenants/acme/privacy", json={"retention_days": 0}, headers=tenant_admin_of(gateway, "acme")).status_code == 422
    erased = gateway.app.state.services.privacy.apply_retention()  # type: ignore[attr-defined]
    assert erased == {"acme": 1}
    with sessions() as session:
        assert session.get(Conversation, old["conversation_id"]) is None
        assert session.get(Conversation, new["conversation_id"]) is not None
        assert session.execute(select(Erasure.actor)).scalar_one() == "retention:30d"


def test_exports_leave_the_log_redacted(gateway: TestClient, settings: Settings) -> None:
    _conversation(gateway, "cust-1", "I'm jane.doe@example.com, card 4111 1111 1111 1111, order A1234", settings)
    export = gateway.get("/api/v1/admin/tenants/acme/conversations/export", headers=tenant_admin_of(gateway, "acme"))
    assert export.status_code == 200
    assert "jane.doe@example.com" not in export.text and "4111" not in export.text
    assert "I'm [EMAIL], card [CARD], order A1234" in export.text
