"""Gateway fixtures: the app on a migrated database with a scripted dialogue engine.

The real Rasa runs in tests/integration and tests/e2e; here a scripted engine stands in so the
gateway's own rules (validation, storage, idempotency, tokens) are tested in isolation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from gateway.app import create_app
from gateway.rasa_client import BotTurn, RasaUnavailableError
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore

WIDGET_KEY = "wk_test_acme"
OTHER_KEY = "wk_test_globex"


class ScriptedDialogueEngine:
    """Echoes every message with a button; sentiment comes from ``sentiments`` (text → label, score).

    Can be switched off to simulate an outage.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.triggered: list[tuple[str, str]] = []
        self.sentiments: dict[str, tuple[str, float]] = {}
        self.intents: dict[str, str] = {}  # text -> intent (default "echo")
        self.replies: dict[str, list[dict[str, Any]]] = {}  # text -> scripted replies instead of the echo
        self.down = False

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any],
                   message_id: str | None = None) -> BotTurn:
        if self.down:
            raise RasaUnavailableError("scripted outage")
        self.calls.append((conversation_id, text, metadata))
        label, score = self.sentiments.get(text, ("neutral", 0.8))
        messages = self.replies.get(text) or [
            {"recipient_id": conversation_id, "text": f"echo: {text}"},
            {"recipient_id": conversation_id, "text": "more?", "buttons": [{"title": "Yes", "payload": "/affirm"}]},
        ]
        return BotTurn(
            messages=[dict(m) for m in messages],
            nlu={
                "intent": {"name": self.intents.get(text, "echo"), "confidence": 0.9},
                "sentiment": {"label": label, "score": score, "scores": {label: score}},
            },
            model_id="scripted-model",
        )

    async def trigger_intent(self, conversation_id: str, intent: str, tenant_id: str = "") -> list[dict[str, Any]]:
        self.triggered.append((conversation_id, intent))
        if intent == "EXTERNAL_handoff_resolved":
            return [{"recipient_id": conversation_id, "text": "bot again"}]
        return [{"recipient_id": conversation_id, "text": "want a person?",
                 "buttons": [{"title": "Yes", "payload": "/human_handoff"}]}]

    async def healthy(self) -> bool:
        return not self.down


@pytest.fixture
def engine() -> ScriptedDialogueEngine:
    return ScriptedDialogueEngine()


@pytest.fixture
def client(settings: Settings, sessions: sessionmaker[Session], engine: ScriptedDialogueEngine) -> Iterator[TestClient]:
    tenants = TenantStore(sessions)
    tenants.ensure_tenant("acme", "Acme")
    tenants.ensure_tenant("globex", "Globex")
    tenants.issue_widget_key("acme", WIDGET_KEY)
    tenants.issue_widget_key("globex", OTHER_KEY)
    with TestClient(create_app(settings, dialogue=engine)) as test_client:
        yield test_client
