"""Review inbox: candidates ranked from the log, one-click decisions, redacted versioned training data."""

from __future__ import annotations

import yaml
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from gateway.app import create_app
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine
from tests.conftest import tenant_admin_of

ADMIN = {"Authorization": "Bearer " + "admin-" + "r" * 40}


def test_unsure_messages_are_ranked_decided_once_and_exported_redacted(settings: Settings,
                                                                        sessions: sessionmaker[Session]) -> None:
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    TenantStore(sessions).issue_widget_key("acme", WIDGET_KEY)
    engine = ScriptedDialogueEngine()
    engine.intents.update({"where's my stuff": "greet", "refund to jane@example.com": "greet", "hello": "greet"})
    app = create_app(settings.model_copy(update={"admin_token": SecretStr("admin-" + "r" * 40)}), dialogue=engine)
    with TestClient(app) as client:
        confidences = {"where's my stuff": 0.3, "Where's my stuff?": 0.4, "refund to jane@example.com": 0.5, "hello": 0.95}
        original = engine.send

        async def unsure(conversation_id, text, metadata, message_id=None):  # type: ignore[no-untyped-def]
            turn = await original(conversation_id, text, metadata)
            turn.nlu["intent"]["confidence"] = confidences.get(text, 0.9)
            return turn

        engine.send = unsure  # type: ignore[method-assign]
        for text in ("where's my stuff", "Where's my stuff?", "refund to jane@example.com", "hello"):
            r = client.post("/api/v1/messages", json={"text": text}, headers={"X-Widget-Key": WIDGET_KEY})
            assert r.status_code == 200
        inbox = client.get("/api/v1/admin/tenants/acme/inbox", headers=tenant_admin_of(client, "acme")).json()
        items = inbox["items"]
        assert [i["frequency"] for i in items] == [2, 1]  # identical texts grouped; "hello" was sure
        assert items[0]["reasons"] == ["low_confidence"] and items[0]["score"] > items[1]["score"]
        assert items[1]["text"] == "refund to [EMAIL]"
        assert "order_status" in inbox["intents"]

        corrected = client.post(f"/api/v1/admin/tenants/acme/inbox/{items[0]['message_id']}",
                                json={"action": "correct", "intent": "order_status"}, headers=tenant_admin_of(client, "acme"))
        assert corrected.status_code == 200 and corrected.json()["covers"] == 2
        again = client.post(f"/api/v1/admin/tenants/acme/inbox/{items[0]['message_id']}",
                            json={"action": "discard"}, headers=tenant_admin_of(client, "acme"))
        assert again.status_code == 409
        bad = client.post(f"/api/v1/admin/tenants/acme/inbox/{items[1]['message_id']}",
                          json={"action": "correct", "intent": "Not An Intent"}, headers=tenant_admin_of(client, "acme"))
        assert bad.status_code == 422
        new = client.post(f"/api/v1/admin/tenants/acme/inbox/{items[1]['message_id']}",
                          json={"action": "correct", "intent": "refund_request"}, headers=tenant_admin_of(client, "acme"))
        assert new.json()["new_intent"] is True
        assert client.get("/api/v1/admin/tenants/acme/inbox", headers=tenant_admin_of(client, "acme")).json()["items"] == []

        data = yaml.safe_load(client.get("/api/v1/admin/tenants/acme/training-data.yml", headers=tenant_admin_of(client, "acme")).text)
        examples = {e["intent"]: e["examples"] for e in data["nlu"]}
        assert examples == {"order_status": "- Where's my stuff?\n", "refund_request": "- refund to [EMAIL]\n"}
        first = client.post("/api/v1/admin/tenants/acme/training-data/versions", headers=tenant_admin_of(client, "acme")).json()
        second = client.post("/api/v1/admin/tenants/acme/training-data/versions", headers=tenant_admin_of(client, "acme")).json()
        assert first == second and first["examples"] == 2
