"""Handoff fixtures: agents of the ``acme`` tenant, logins and customer helpers on the scripted engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from gateway.stores.agent_store import AgentRecord, AgentStore
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine

PASSWORD = "correct horse battery staple"
HANDOFF_TEXT = "I want a person"


@dataclass
class Customer:
    """A customer talking through the HTTP API."""

    client: TestClient
    conversation_id: str | None = None
    token: str | None = None

    def say(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        headers = {"X-Widget-Key": WIDGET_KEY}
        if self.conversation_id:
            body["conversation_id"] = self.conversation_id
            headers["X-Conversation-Token"] = self.token or ""
        response = self.client.post("/api/v1/messages", json=body, headers=headers)
        assert response.status_code == 200, response.text
        data = response.json()
        self.conversation_id, self.token = data["conversation_id"], data["conversation_token"]
        return data

    def history(self) -> list[dict[str, Any]]:
        response = self.client.get(f"/api/v1/conversations/{self.conversation_id}/messages",
                                   headers={"X-Widget-Key": WIDGET_KEY, "X-Conversation-Token": self.token or ""})
        assert response.status_code == 200, response.text
        return response.json()["messages"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, email: str, tenant: str = "acme") -> str:
    """Log in and return the bearer token."""
    response = client.post("/api/v1/agent/login", json={"tenant": tenant, "email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # tests use bearer tokens unless they test cookies
    return response.json()["token"]


@pytest.fixture
def agent_store(sessions: sessionmaker[Session]) -> AgentStore:
    return AgentStore(sessions)


@pytest.fixture
def alice(client: TestClient, agent_store: AgentStore) -> AgentRecord:
    return agent_store.create("acme", "alice@acme.test", "Alice", PASSWORD, teams=["general"], capacity=2)


@pytest.fixture
def bob(client: TestClient, agent_store: AgentStore) -> AgentRecord:
    return agent_store.create("acme", "bob@acme.test", "Bob", PASSWORD, teams=["general", "billing"], capacity=2)


@pytest.fixture
def handoff_engine(engine: ScriptedDialogueEngine) -> ScriptedDialogueEngine:
    """The scripted bot asks for a person when the customer says HANDOFF_TEXT (like action_request_human)."""
    engine.replies[HANDOFF_TEXT] = [{"custom": {"handoff": {"reason": "customer_request", "intent": "human_handoff"}}}]
    engine.intents[HANDOFF_TEXT] = "human_handoff"
    return engine


