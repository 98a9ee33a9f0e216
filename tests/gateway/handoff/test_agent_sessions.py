"""An agent's open console socket closes within about a second of logout, deactivation or a role change."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from gateway.stores.agent_store import AgentRecord
from tests.gateway.handoff.conftest import bearer, login


def wait_for_close(ws) -> dict:  # type: ignore[no-untyped-def]
    """Frames until the server's closing error (a ping every 0.2 s keeps the receive loop turning)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        frame = ws.receive_json()
        if frame.get("type") == "error":
            return frame
    raise AssertionError("the socket stayed open")


def test_logout_closes_the_open_socket(client: TestClient, alice: AgentRecord) -> None:
    token = login(client, "alice@acme.test")
    with client.websocket_connect("/ws/agent", headers=bearer(token)) as ws:
        assert ws.receive_json()["type"] == "ready"
        started = time.monotonic()
        assert client.post("/api/v1/agent/logout", headers=bearer(token)).status_code in (200, 204)
        assert wait_for_close(ws)["error"] == "session_expired"
        assert time.monotonic() - started < 2.5


def test_deactivation_and_role_changes_close_the_socket(client: TestClient, alice: AgentRecord) -> None:
    services = client.app.state.services
    for change in ({"role": "supervisor"}, {"active": False}):
        token = login(client, "alice@acme.test")
        with client.websocket_connect("/ws/agent", headers=bearer(token)) as ws:
            assert ws.receive_json()["type"] == "ready"
            services.agents.update("acme", alice.id, **change)
            assert wait_for_close(ws)["error"] == "session_expired"
