"""Widget security and feedback: allowed origins, rate limits, CSAT and answer votes, admin settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from starlette.websockets import WebSocketDisconnect

from connectors.web.config import WidgetConfig
from gateway.rate_limits import RateLimiter
from gateway.app import create_app
from gateway.db.session import create_db_engine, create_session_factory
from gateway.migrate import upgrade_database
from gateway.stores.tenant_store import TenantStore
from gateway.stores.widget_config_store import WidgetConfigStore
from tests.conftest import make_settings
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine
from tests.conftest import tenant_admin_of

ADMIN_TOKEN = "admin-" + "y" * 40
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SHOP = "https://shop.example"


@pytest.fixture
def strict_client(tmp_path: Path) -> Iterator[TestClient]:
    """Acme allows only https://shop.example; 3 messages per conversation at once, then 1 per minute."""
    settings = make_settings(tmp_path, admin_token=ADMIN_TOKEN, rate_conversation_burst=3,
                             rate_conversation_per_min=1, rate_new_conversations_per_min=5)
    upgrade_database(settings.database_url)
    engine = create_db_engine(settings.database_url)
    sessions: sessionmaker[Session] = create_session_factory(engine)
    tenants = TenantStore(sessions)
    tenants.ensure_tenant("acme", "Acme")
    tenants.issue_widget_key("acme", WIDGET_KEY)
    WidgetConfigStore(sessions).put("acme", WidgetConfig(allowed_origins=[SHOP], title="Acme help", accent="#aa3300"))
    with TestClient(create_app(settings, dialogue=ScriptedDialogueEngine())) as client:
        yield client
    engine.dispose()


def test_a_foreign_origin_is_refused_on_the_socket_and_the_api(strict_client: TestClient) -> None:
    with strict_client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}",
                                         headers={"Origin": "https://evil.example"}) as socket:
        assert socket.receive_json()["error"] == "origin_not_allowed"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 4403
    refused = strict_client.post("/api/v1/messages", json={"text": "hi"},
                                 headers={"X-Widget-Key": WIDGET_KEY, "Origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.json()["error"] == "origin_not_allowed"


def test_the_allowed_origin_gets_the_tenants_look(strict_client: TestClient) -> None:
    with strict_client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}", headers={"Origin": SHOP}) as socket:
        socket.send_json({"type": "hello"})
        session = socket.receive_json()
    assert session["config"]["title"] == "Acme help" and session["config"]["accent"] == "#aa3300"
    assert "allowed_origins" not in session["config"]
    assert session["rated"] == []


def test_a_conversation_sending_too_fast_is_slowed_down_and_nothing_is_lost(strict_client: TestClient) -> None:
    with strict_client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}", headers={"Origin": SHOP}) as socket:
        socket.send_json({"type": "hello"})
        session = socket.receive_json()
        acked = []
        for n in range(4):
            socket.send_json({"type": "message", "text": f"message {n}", "client_id": f"c{n}"})
            while True:
                frame = socket.receive_json()
                if frame["type"] == "ack":
                    acked.append(frame["client_id"])
                    break
                if frame["type"] == "error":
                    limited = frame
                    break
    assert acked == ["c0", "c1", "c2"]
    assert limited["error"] == "rate_limited" and limited["client_id"] == "c3" and limited["retry_after_s"] > 0
    history = strict_client.get(f"/api/v1/conversations/{session['conversation_id']}/messages",
                                headers={"X-Widget-Key": WIDGET_KEY,
                                         "X-Conversation-Token": session["conversation_token"]}).json()["messages"]
    assert [m["text"] for m in history if m["sender"] == "customer"] == ["message 0", "message 1", "message 2"]
    # The HTTP API applies the same limit, with Retry-After.
    limited_http = strict_client.post("/api/v1/messages", json={"text": "again", "conversation_id": session["conversation_id"]},
                                      headers={"X-Widget-Key": WIDGET_KEY,
                                               "X-Conversation-Token": session["conversation_token"]})
    assert limited_http.status_code == 429 and int(limited_http.headers["Retry-After"]) >= 1


def test_an_address_cannot_open_conversations_without_limit(strict_client: TestClient) -> None:
    statuses = [strict_client.post("/api/v1/conversations", headers={"X-Widget-Key": WIDGET_KEY}).status_code
                for _ in range(7)]
    assert statuses[:5] == [201] * 5 and statuses[-1] == 429


def test_token_bucket_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.hit("k") for _ in range(2)] == [0.0, 0.0]
    assert limiter.hit("k") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.hit("k") == 0.0
    assert limiter.hit("other") == 0.0  # keys are independent


def test_answer_votes_are_stored_once_and_checked(strict_client: TestClient) -> None:
    headers = {"X-Widget-Key": WIDGET_KEY, "Origin": SHOP}
    turn = strict_client.post("/api/v1/messages", json={"text": "how do returns work?"}, headers=headers).json()
    auth = {**headers, "X-Conversation-Token": turn["conversation_token"]}
    url = f"/api/v1/conversations/{turn['conversation_id']}/feedback"
    target = str(turn["replies"][0]["id"])
    first = strict_client.post(url, json={"kind": "helpful", "target": target, "score": 1}, headers=auth)
    again = strict_client.post(url, json={"kind": "helpful", "target": target, "score": 0}, headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True and again.json()["score"] == 1  # the first vote stands
    bad = strict_client.post(url, json={"kind": "csat", "target": "h1", "score": 9}, headers=auth)
    assert bad.status_code == 422 and bad.json()["error"] == "bad_score"
    not_an_answer = strict_client.post(url, json={"kind": "helpful", "target": str(turn["message"]["id"]), "score": 1},
                                       headers=auth)
    assert not_an_answer.status_code == 422 and not_an_answer.json()["error"] == "unknown_target"
    not_resolved = strict_client.post(url, json={"kind": "csat", "target": "no-such-handoff", "score": 4}, headers=auth)
    assert not_resolved.status_code == 422
    wrong_token = strict_client.post(url, json={"kind": "helpful", "target": target, "score": 1},
                                     headers={**headers, "X-Conversation-Token": "forged"})
    assert wrong_token.status_code == 403


def test_admins_change_the_widget_settings_and_bad_values_change_nothing(strict_client: TestClient) -> None:
    url = "/api/v1/admin/tenants/acme/widget"
    changed = strict_client.put(url, json={"title": "Acme support", "position": "left"}, headers=tenant_admin_of(strict_client, "acme"))
    assert changed.status_code == 200 and changed.json()["position"] == "left"
    assert changed.json()["allowed_origins"] == [SHOP]  # untouched fields stay
    bad = strict_client.put(url, json={"accent": "javascript:alert(1)"}, headers=tenant_admin_of(strict_client, "acme"))
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_widget_config"
    assert strict_client.get(url, headers=tenant_admin_of(strict_client, "acme")).json()["title"] == "Acme support"
    assert strict_client.put(url, json={"title": "x"}).status_code == 401
    assert strict_client.get("/api/v1/admin/tenants/nobody/widget", headers=tenant_admin_of(strict_client, "acme")).status_code == 404


def test_that_helped_on_a_knowledge_base_answer_is_recorded_as_a_vote(tmp_path: Path) -> None:
    from sqlalchemy import select

    from gateway.db.models import Feedback

    settings = make_settings(tmp_path)
    upgrade_database(settings.database_url)
    db = create_db_engine(settings.database_url)
    sessions = create_session_factory(db)
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    TenantStore(sessions).issue_widget_key("acme", WIDGET_KEY)
    engine = ScriptedDialogueEngine()
    citation = {"title": "Returns", "url": "https://help.example/returns"}
    engine.replies["how do returns work?"] = [{"text": "Within 30 days.", "buttons": [{"title": "Yes", "payload": "/kb_helpful"}],
                                               "custom": {"kb": {"answerable": True, "citations": [citation]}}}]
    engine.intents["/kb_helpful"] = "kb_helpful"
    with TestClient(create_app(settings, dialogue=engine)) as client:
        headers = {"X-Widget-Key": WIDGET_KEY}
        first = client.post("/api/v1/messages", json={"text": "how do returns work?"}, headers=headers).json()
        client.post("/api/v1/messages", json={"text": "/kb_helpful", "conversation_id": first["conversation_id"]},
                    headers={**headers, "X-Conversation-Token": first["conversation_token"]})
    with sessions() as session:
        vote = session.execute(select(Feedback)).scalar_one()
    assert (vote.kind, vote.target, vote.score) == ("helpful", str(first["replies"][0]["id"]), 1)
    db.dispose()
