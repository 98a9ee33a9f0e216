"""Models API: auth, errors that lose nothing, the plan's training-run limit, and the page."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from gateway.app import create_app
from gateway.billing.plans import Unit
from gateway.billing.usage_service import UsageService
from gateway.learning.model_registry import ModelRegistry
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore
from tests.gateway.conftest import ScriptedDialogueEngine
from tests.gateway.learning.test_model_registry import archive
from tests.conftest import tenant_admin_of

TOKEN = "admin-" + "m" * 40
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def client_for(settings: Settings) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"admin_token": SecretStr(TOKEN)}),
                                 dialogue=ScriptedDialogueEngine()))


def test_listing_versions_and_deployments(settings: Settings, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    registry = ModelRegistry(sessions, settings.model_registry_dir)
    registry.register_base("acme", archive(tmp_path, b"base"), "make train")
    with client_for(settings) as client:
        assert client.get("/api/v1/admin/tenants/acme/models").status_code == 401
        listing = client.get("/api/v1/admin/tenants/acme/models", headers=tenant_admin_of(client, "acme")).json()
        assert listing["production"] == 1 and listing["tolerance"] == settings.gate_tolerance
        assert [v["status"] for v in listing["versions"]] == ["production"]
        assert "archive_path" not in listing["versions"][0]
        assert listing["deployments"][0]["action"] == "deploy"
        assert client.get("/api/v1/admin/tenants/acme/models/1", headers=tenant_admin_of(client, "acme")).json()["source"] == "base"
        page = client.get("/admin/models")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/admin/static/models.js").status_code == 200


def test_errors_are_clear_and_change_nothing(settings: Settings, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    ModelRegistry(sessions, settings.model_registry_dir).register_base("acme", archive(tmp_path, b"base"), "make train")
    with client_for(settings) as client:
        base = "/api/v1/admin/tenants"
        assert client.get(f"{base}/nobody/models", headers=tenant_admin_of(client, "acme")).json()["error"] == "unknown_tenant"
        missing = client.get(f"{base}/acme/models/7", headers=tenant_admin_of(client, "acme"))
        assert (missing.status_code, missing.json()["error"]) == (404, "unknown_version")
        nothing = client.post(f"{base}/acme/models/rollback", headers=tenant_admin_of(client, "acme"))
        assert (nothing.status_code, nothing.json()["error"]) == (409, "nothing_to_roll_back")
        live = client.post(f"{base}/acme/models/1/promote", headers=tenant_admin_of(client, "acme"))
        assert (live.status_code, live.json()["error"]) == (409, "not_promotable")  # already production, no gate
        bad = client.post(f"{base}/acme/models/rollback", headers={**tenant_admin_of(client, "acme"), "Content-Type": "application/json"},
                          content=b"{not json")
        assert bad.status_code in (400, 422)
        assert client.post(f"{base}/acme/models/rollback", headers=tenant_admin_of(client, "acme"), json={"to_version": 0}).status_code == 422
        assert client.get(f"{base}/acme/models", headers=tenant_admin_of(client, "acme")).json()["production"] == 1


def test_the_plans_training_runs_are_enforced_before_anything_trains(settings: Settings,
                                                                     sessions: sessionmaker[Session]) -> None:
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    usage = UsageService(sessions)
    usage.plans.seed()
    usage.change_plan("acme", "free")
    for run in range(2):  # Free includes two training runs a month, no overage
        usage.meter("acme", Unit.TRAINING_RUNS, f"earlier-run-{run}")
    with client_for(settings) as client:
        refused = client.post("/api/v1/admin/tenants/acme/models/retrain", headers=tenant_admin_of(client, "acme"))
        assert (refused.status_code, refused.json()["error"]) == (402, "quota_exceeded")
        assert client.get("/api/v1/admin/tenants/acme/models", headers=tenant_admin_of(client, "acme")).json()["versions"] == []
        # A tenant with runs left but no assistant: told how to make one, nothing started or metered.
        usage.change_plan("acme", "pro")
        empty = client.post("/api/v1/admin/tenants/acme/models/retrain", headers=tenant_admin_of(client, "acme"))
        assert (empty.status_code, empty.json()["error"]) == (409, "no_assistant")
        assert "python -m gateway assistant create acme" in empty.json()["detail"]
        assert client.get("/api/v1/admin/tenants/acme/models", headers=tenant_admin_of(client, "acme")).json()["versions"] == []
