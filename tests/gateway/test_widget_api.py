"""HTTP API: routing to the dialogue engine, storage, and clear 4xx errors on bad input."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.gateway.conftest import OTHER_KEY, WIDGET_KEY, ScriptedDialogueEngine

HEADERS = {"X-Widget-Key": WIDGET_KEY}


def start(client: TestClient, text: str = "hello") -> dict:
    response = client.post("/api/v1/messages", json={"text": text}, headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


def history(client: TestClient, body: dict, key: str = WIDGET_KEY) -> list[dict]:
    response = client.get(
        f"/api/v1/conversations/{body['conversation_id']}/messages",
        headers={"X-Widget-Key": key, "X-Conversation-Token": body["conversation_token"]},
    )
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def test_message_goes_to_the_engine_with_tenant_metadata_and_is_logged(
    client: TestClient, engine: ScriptedDialogueEngine
) -> None:
    body = start(client, "where is my order A1234?")
    assert [r["text"] for r in body["replies"]] == ["echo: where is my order A1234?", "more?"]
    assert body["replies"][1]["payload"] == {"buttons": [{"title": "Yes", "payload": "/affirm"}]}
    conversation_id, text, metadata = engine.calls[0]
    assert conversation_id == body["conversation_id"] and text == "where is my order A1234?"
    assert metadata["tenant_id"] == "acme" and metadata["channel"] == "api"
    assert [(m["sender"], m["text"]) for m in history(client, body)] == [
        ("customer", "where is my order A1234?"),
        ("bot", "echo: where is my order A1234?"),
        ("bot", "more?"),
    ]


def test_continuing_a_conversation_needs_its_token(client: TestClient) -> None:
    body = start(client)
    follow_up = {"text": "again", "conversation_id": body["conversation_id"]}
    denied = client.post("/api/v1/messages", json=follow_up, headers=HEADERS)
    assert denied.status_code == 403 and denied.json()["error"] == "bad_conversation_token"
    forged = client.post("/api/v1/messages", json=follow_up, headers={**HEADERS, "X-Conversation-Token": "x" * 43})
    assert forged.status_code == 403
    ok = client.post("/api/v1/messages", json=follow_up, headers={**HEADERS, "X-Conversation-Token": body["conversation_token"]})
    assert ok.status_code == 200
    assert len(history(client, body)) == 6


def test_another_tenant_cannot_read_the_conversation(client: TestClient) -> None:
    body = start(client)
    response = client.get(
        f"/api/v1/conversations/{body['conversation_id']}/messages",
        headers={"X-Widget-Key": OTHER_KEY, "X-Conversation-Token": body["conversation_token"]},
    )
    assert response.status_code == 403


def test_resend_with_same_client_id_is_processed_once(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    body = start(client)
    headers = {**HEADERS, "X-Conversation-Token": body["conversation_token"]}
    payload = {"text": "once", "conversation_id": body["conversation_id"], "client_id": "c-42"}
    first = client.post("/api/v1/messages", json=payload, headers=headers).json()
    second = client.post("/api/v1/messages", json=payload, headers=headers).json()
    assert second["duplicate"] is True and first["duplicate"] is False
    assert [r["id"] for r in second["replies"]] == [r["id"] for r in first["replies"]]
    assert [c[1] for c in engine.calls].count("once") == 1
    assert len(history(client, body)) == 6


def test_bad_input_gets_clear_errors_and_loses_nothing(client: TestClient) -> None:
    body = start(client)
    headers = {**HEADERS, "X-Conversation-Token": body["conversation_token"], "content-type": "application/json"}
    cid = body["conversation_id"]
    cases = [
        (client.post("/api/v1/messages", content=b'{"text": "unterminated', headers=headers), 400, "malformed_json"),
        (client.post("/api/v1/messages", json={"text": "", "conversation_id": cid}, headers=headers), 422, "empty_message"),
        (client.post("/api/v1/messages", json={"text": "   \n", "conversation_id": cid}, headers=headers), 422, "empty_message"),
        (client.post("/api/v1/messages", json={"text": 5, "conversation_id": cid}, headers=headers), 422, "invalid_text"),
        (client.post("/api/v1/messages", json={"conversation_id": cid}, headers=headers), 422, "invalid_request"),
        (client.post("/api/v1/messages", json={"text": "x" * 5000, "conversation_id": cid}, headers=headers), 413, "message_too_long"),
        (client.post("/api/v1/messages", json={"text": "x" * 100_000, "conversation_id": cid}, headers=headers), 413, "body_too_large"),
        (client.post("/api/v1/messages", json={"text": "hi"}, headers={"X-Widget-Key": "wk_nope"}), 401, "unknown_widget_key"),
        (client.post("/api/v1/messages", json={"text": "hi"}), 401, "missing_widget_key"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (code, response.text)
        assert response.json()["error"] == code
        assert response.json()["detail"]
    assert len(history(client, body)) == 3
    assert start(client, "still serving")["replies"]


def test_dialogue_outage_answers_politely_and_keeps_the_message(
    client: TestClient, engine: ScriptedDialogueEngine
) -> None:
    engine.down = True
    body = start(client, "anyone there?")
    assert body["replies"][0]["sender"] == "system"
    assert "trouble" in body["replies"][0]["text"]
    assert [m["sender"] for m in history(client, body)] == ["customer", "system"]
    assert body["replies"][0]["payload"]["buttons"] == [{"title": "Talk to a person", "payload": "/human_handoff"}]
    # Taking the offer while the bot is still down: the gateway opens the handoff itself.
    response = client.post("/api/v1/messages", json={"text": "/human_handoff", "conversation_id": body["conversation_id"]},
                           headers={"X-Widget-Key": WIDGET_KEY, "X-Conversation-Token": body["conversation_token"]})
    assert response.status_code == 200
    assert response.json()["replies"] and "trouble" not in response.json()["replies"][0]["text"]
    services = client.app.state.services  # type: ignore[attr-defined]
    owner = services.handoff.handoffs.owner_state("acme", body["conversation_id"])
    assert owner.value == "queued"


def test_healthz_reports_each_dependency(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    response = client.get("/healthz")
    # No action server runs in unit tests: the gateway must say so rather than claim health.
    assert response.status_code == 503
    assert response.json()["checks"]["database"] is True
    assert response.json()["checks"]["rasa"] is True
    assert response.json()["checks"]["actions"] is False


def test_demo_page_embeds_the_widget_with_one_script_tag(client: TestClient) -> None:
    page = client.get("/demo").text
    assert page.count("<script") == 1
    assert 'data-widget-key="wk_test_northwind"' in page
    script = client.get("/widget.js")
    assert script.status_code == 200 and "attachShadow" in script.text
    assert "innerHTML" not in script.text  # messages are only ever rendered as text nodes


def test_a_turn_the_bot_left_silent_gets_an_honest_reply(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    from gateway.rasa_client import BotTurn

    async def silent(conversation_id, text, metadata, message_id=None):  # type: ignore[no-untyped-def]
        return BotTurn(messages=[], nlu={"intent": {"name": "order_status", "confidence": 0.9}}, model_id="m")

    engine.send = silent  # type: ignore[method-assign]
    body = start(client, "where is my order A1234?")
    assert [r["sender"] for r in body["replies"]] == ["system"]
    assert "couldn't finish" in body["replies"][0]["text"]
    assert body["replies"][0]["payload"]["error"] == "no_reply"
    assert [m["sender"] for m in history(client, body)] == ["customer", "system"]
