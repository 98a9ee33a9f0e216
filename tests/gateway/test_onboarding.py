"""Onboarding a business: all of it or nothing, one winner per id, a password shown once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.app import create_app
from gateway.assistants.assistant_store import AssistantStore
from gateway.onboarding import OnboardingError, TenantOnboarding
from gateway.db.models import Agent, Subscription, Tenant, WidgetKey
from gateway.settings import Settings
from gateway.stores.agent_store import AgentStore
from tests.gateway.conftest import ScriptedDialogueEngine

OPERATOR = "operator-" + "o" * 40


def counts(sessions: sessionmaker[Session]) -> tuple[int, ...]:
    with sessions() as session:
        return tuple(session.execute(select(func.count()).select_from(t)).scalar_one()
                     for t in (Tenant, WidgetKey, Agent, Subscription))


def test_a_tenant_comes_with_a_plan_key_admin_and_assistant(settings: Settings, sessions: sessionmaker[Session]) -> None:
    created = TenantOnboarding(settings, sessions).create("acme", "Acme Outdoor", "pro", "retail",
                                                          "Boss@Acme.example", "ops")
    assert created.widget_key.startswith("wk_") and created.admin_email == "boss@acme.example"
    assert AgentStore(sessions).authenticate("acme", "boss@acme.example", created.admin_password).role == "admin"
    assert AssistantStore(sessions).current("acme").settings.business_name == "Acme Outdoor"
    public = created.to_public()
    assert public["admin"]["password"] == created.admin_password and public["template"] == "retail"


@pytest.mark.parametrize("args, code", [
    (("Acme", "Acme", "pro", "retail", None), "invalid_tenant_id"),
    (("acme", " ", "pro", "retail", None), "invalid_name"),
    (("acme", "Acme", "gold", "retail", None), "unknown_plan"),
    (("acme", "Acme", "pro", "casino", None), "unknown_template"),
    (("acme", "Acme", "pro", "retail", "not an address"), "invalid_email"),
])
def test_bad_input_stores_nothing(settings: Settings, sessions: sessionmaker[Session], args: tuple, code: str) -> None:
    before = counts(sessions)
    with pytest.raises(OnboardingError) as refused:
        TenantOnboarding(settings, sessions).create(*args, actor="ops")
    assert refused.value.code == code
    assert counts(sessions) == before


def test_two_racing_creations_of_one_id_make_one_tenant(settings: Settings, sessions: sessionmaker[Session]) -> None:
    onboarding = TenantOnboarding(settings, sessions)

    def attempt(n: int) -> str:
        try:
            onboarding.create("acme", f"Acme {n}", "free", "blank", f"a{n}@acme.example", "ops")
            return "created"
        except OnboardingError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    assert sorted(outcomes) == ["created", "tenant_exists", "tenant_exists", "tenant_exists"]
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(Agent)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(WidgetKey)).scalar_one() == 1


def test_the_operator_api_refuses_bad_templates_and_duplicates(settings: Settings,
                                                               sessions: sessionmaker[Session]) -> None:
    app = create_app(settings.model_copy(update={"admin_token": SecretStr(OPERATOR)}), dialogue=ScriptedDialogueEngine())
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    with TestClient(app) as client:
        bad = client.post("/api/v1/admin/tenants", headers=headers, json={"id": "acme", "name": "Acme", "template": "casino"})
        assert (bad.status_code, bad.json()["error"]) == (422, "unknown_template")
        assert counts(sessions)[0] == 0
        first = client.post("/api/v1/admin/tenants", headers=headers, json={"id": "acme", "name": "Acme"})
        assert first.status_code == 201 and first.json()["assistant"] == {"status": "none"}
        again = client.post("/api/v1/admin/tenants", headers=headers, json={"id": "acme", "name": "Again"})
        assert (again.status_code, again.json()["error"]) == (409, "tenant_exists")
