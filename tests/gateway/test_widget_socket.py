"""WebSocket protocol of the widget: sessions, resume, idempotent resend, bad frames."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

import pytest

from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine


def read_turn(ws) -> list[dict]:  # type: ignore[no-untyped-def]
    frames = []
    while True:
        frame = ws.receive_json()
        frames.append(frame)
        if frame["type"] == "typing" and frame["on"] is False:
            return frames


def test_hello_message_and_resume_with_history(client: TestClient) -> None:
    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as ws:
        ws.send_json({"type": "hello"})
        session = ws.receive_json()
        assert session["type"] == "session" and session["resumed"] is False and session["history"] == []
        ws.send_json({"type": "message", "text": "hi", "client_id": "c1"})
        frames = read_turn(ws)
        assert [f["type"] for f in frames] == ["typing", "ack", "message", "message", "typing"]
        assert frames[2]["message"]["text"] == "echo: hi"

    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as ws:
        ws.send_json({"type": "hello", "conversation_id": session["conversation_id"],
                      "conversation_token": session["conversation_token"]})
        resumed = ws.receive_json()
        assert resumed["resumed"] is True and resumed["conversation_id"] == session["conversation_id"]
        assert [m["text"] for m in resumed["history"]] == ["hi", "echo: hi", "more?"]


def test_wrong_token_starts_a_new_conversation(client: TestClient) -> None:
    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as ws:
        ws.send_json({"type": "hello"})
        first = ws.receive_json()
        ws.send_json({"type": "hello", "conversation_id": first["conversation_id"], "conversation_token": "forged"})
        second = ws.receive_json()
        assert second["resumed"] is False and second["conversation_id"] != first["conversation_id"]


def test_resend_after_reconnect_is_not_processed_twice(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as ws:
        ws.send_json({"type": "hello"})
        session = ws.receive_json()
        ws.send_json({"type": "message", "text": "only once", "client_id": "same"})
        read_turn(ws)
        ws.send_json({"type": "message", "text": "only once", "client_id": "same"})
        frames = read_turn(ws)
        assert next(f for f in frames if f["type"] == "ack")["duplicate"] is True
    assert [c[1] for c in engine.calls] == ["only once"]
    assert session["conversation_id"] == engine.calls[0][0]


def test_bad_frames_get_errors_and_the_socket_keeps_serving(client: TestClient) -> None:
    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as ws:
        ws.send_json({"type": "message", "text": "too early"})
        assert ws.receive_json()["error"] == "no_session"
        ws.send_text("{not json")
        assert ws.receive_json()["error"] == "malformed_json"
        ws.send_text("[1, 2]")
        assert ws.receive_json()["error"] == "invalid_frame"
        ws.send_json({"type": "hello"})
        ws.receive_json()
        ws.send_json({"type": "message", "text": ""})
        assert ws.receive_json()["error"] == "empty_message"
        ws.send_json({"type": "message", "text": "x" * 100_000})
        assert ws.receive_json()["error"] == "frame_too_large"
        ws.send_json({"type": "message", "text": "y" * 5_000})
        assert ws.receive_json()["error"] == "message_too_long"
        ws.send_json({"type": "nonsense"})
        assert ws.receive_json()["error"] == "unknown_frame_type"
        ws.send_json({"type": "message", "text": "still here", "client_id": "c9"})
        assert any(f.get("message", {}).get("text") == "echo: still here" for f in read_turn(ws))


def test_unknown_widget_key_is_refused(client: TestClient) -> None:
    with client.websocket_connect("/ws/widget?key=wk_nope") as ws:
        assert ws.receive_json()["error"] == "unknown_widget_key"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401
