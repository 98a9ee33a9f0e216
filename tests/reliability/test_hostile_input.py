"""The hostile byte: every bad input gets a 4xx in the documented ``{error, detail}`` shape, never a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.gateway.conftest import WIDGET_KEY

KEY = {"X-Widget-Key": WIDGET_KEY}


def start(client: TestClient) -> dict:
    response = client.post("/api/v1/messages", json={"text": "hello"}, headers=KEY)
    assert response.status_code == 200
    return response.json()


def test_a_non_ascii_conversation_token_is_a_forged_token_not_a_500(client: TestClient) -> None:
    turn = start(client)
    response = client.post("/api/v1/messages", headers={**KEY, "X-Conversation-Token": "tökén".encode("utf-8")},
                           json={"text": "hi", "conversation_id": turn["conversation_id"]})
    assert response.status_code == 403 and set(response.json()) >= {"error", "detail"}
    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as ws:
        ws.send_json({"type": "hello", "conversation_id": turn["conversation_id"], "conversation_token": "ünïcode"})
        session = ws.receive_json()
        assert session["type"] == "session" and session["resumed"] is False


def test_a_lone_surrogate_is_refused_over_http_and_the_socket_stays_open(client: TestClient) -> None:
    response = client.post("/api/v1/messages", headers={**KEY, "Content-Type": "application/json"},
                           content=b'{"text": "hi \\ud800 there"}')
    assert response.status_code == 422 and response.json()["error"] == "invalid_text"
    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as ws:
        ws.send_json({"type": "hello"})
        ws.receive_json()
        ws.send_text('{"type": "message", "text": "\\ud800", "client_id": "c1"}')
        error = ws.receive_json()
        assert error["type"] == "error" and error["error"] == "invalid_text"
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["type"] == "pong"  # still connected


def test_broken_bodies_unknown_routes_and_wrong_methods_answer_in_the_documented_shape(client: TestClient) -> None:
    broken = client.post("/api/v1/messages", headers={**KEY, "Content-Type": "application/json"},
                         content=b'{"text": "caf\xe9"}')
    assert broken.status_code == 400 and broken.json()["error"] == "malformed_json"
    nested = client.post("/api/v1/messages", headers={**KEY, "Content-Type": "application/json"},
                         content=b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert nested.status_code in (400, 422) and set(nested.json()) >= {"error", "detail"}
    missing = client.get("/api/v1/no-such-route")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = client.delete("/api/v1/messages", headers=KEY)
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


def test_a_socket_message_to_an_erased_conversation_is_answered_and_the_socket_lives(client: TestClient) -> None:
    from gateway.db.models import Conversation

    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as ws:
        ws.send_json({"type": "hello"})
        session = ws.receive_json()
        services = client.app.state.services
        with services.sessions.begin() as db:
            db.query(Conversation).filter(Conversation.id == session["conversation_id"]).delete()
        ws.send_json({"type": "message", "text": "are you there?", "client_id": "c9"})
        frames = []
        while not frames or frames[-1]["type"] != "error":
            frames.append(ws.receive_json())
        assert frames[-1]["error"] == "conversation_not_found"
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["type"] == "pong"


def test_the_site_icon_and_message_times_carry_what_browsers_need(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    turn = start(client)
    history = client.get(f"/api/v1/conversations/{turn['conversation_id']}/messages",
                         headers={**KEY, "X-Conversation-Token": turn["conversation_token"]}).json()["messages"]
    assert all(m["created_at"].endswith("+00:00") for m in history)  # naive times read as local by browsers
