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
from gateway.rasa_client import RasaUnavailableError
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore

WIDGET_KEY = "wk_test_acme"
OTHER_KEY = "wk_test_globex"


class ScriptedDialogueEngine:
    """Answers every message with an echo and a button; can be switched off to simulate an outage."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.down = False

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        if self.down:
            raise RasaUnavailableError("scripted outage")
        self.calls.append((conversation_id, text, metadata))
        return [
            {"recipient_id": conversation_id, "text": f"echo: {text}"},
            {"recipient_id": conversation_id, "text": "more?", "buttons": [{"title": "Yes", "payload": "/affirm"}]},
        ]

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
