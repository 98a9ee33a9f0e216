"""Turns that finish: a resend of a message whose turn never completed (or failed) is run, once."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gateway.db.models import Sender
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine

KEY = {"X-Widget-Key": WIDGET_KEY}


def send(client: TestClient, text: str, client_id: str, conversation: dict | None = None) -> dict:
    body = {"text": text, "client_id": client_id}
    headers = dict(KEY)
    if conversation:
        body["conversation_id"] = conversation["conversation_id"]
        headers["X-Conversation-Token"] = conversation["conversation_token"]
    response = client.post("/api/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_resend_of_a_failed_turn_gets_the_real_answer(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    first = send(client, "hello", "c1")
    engine.down = True
    failed = send(client, "where is my parcel", "c2", first)
    assert failed["replies"][0]["payload"]["error"] == "dialogue_unavailable"
    engine.down = False
    again = send(client, "where is my parcel", "c2", first)
    assert again["duplicate"] is True
    assert [r["text"] for r in again["replies"]][0] == "echo: where is my parcel"
    # A third resend replays the answer; the bot ran the message once.
    third = send(client, "where is my parcel", "c2", first)
    assert [r["text"] for r in third["replies"]] == [r["text"] for r in again["replies"]]
    assert [c[1] for c in engine.calls].count("where is my parcel") == 1


def test_a_message_stored_by_a_gateway_that_died_mid_turn_is_answered_on_resend(
        client: TestClient, engine: ScriptedDialogueEngine) -> None:
    first = send(client, "hello", "c1")
    services = client.app.state.services
    # What a gateway killed right after storing the customer's message leaves behind: no reply at all.
    services.conversations.append("acme", first["conversation_id"], Sender.CUSTOMER, "are you there?", None, "c7")
    resent = send(client, "are you there?", "c7", first)
    assert resent["duplicate"] is True and [r["text"] for r in resent["replies"]][0] == "echo: are you there?"
    assert [c[1] for c in engine.calls].count("are you there?") == 1


def test_a_restarted_gateway_answers_the_turns_the_previous_one_left_unfinished(settings, sessions) -> None:  # type: ignore[no-untyped-def]
    import time

    from gateway.app import create_app
    from gateway.stores.conversation_store import ConversationStore
    from gateway.stores.tenant_store import TenantStore

    TenantStore(sessions).ensure_tenant("acme", "Acme")
    store = ConversationStore(sessions)
    conversation = store.create_conversation("acme", "web")
    stored = store.append("acme", conversation, Sender.CUSTOMER, "hello after the crash", None, "c1")
    engine = ScriptedDialogueEngine()
    with TestClient(create_app(settings, dialogue=engine)):
        deadline = time.monotonic() + 10
        while not store.replies_to("acme", stored.id):
            assert time.monotonic() < deadline, "the unfinished turn was not run after the restart"
            time.sleep(0.1)
    assert [r.text for r in store.replies_to("acme", stored.id)][0] == "echo: hello after the crash"
    assert [c[1] for c in engine.calls] == ["hello after the crash"]
