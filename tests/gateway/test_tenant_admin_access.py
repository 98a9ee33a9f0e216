"""Tenant admins reach their own tenant's admin routes and pages only; the operator token opens tenants and plans.

Generated from the app's route table: a route added later is checked without touching this file.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from gateway.app import create_app
from gateway.settings import Settings
from gateway.stores.agent_store import AgentStore
from gateway.stores.tenant_store import TenantStore
from tests.conftest import tenant_admin_headers
from tests.gateway.conftest import ScriptedDialogueEngine

OPERATOR_TOKEN = "operator-" + "k" * 40
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
def client(settings: Settings, sessions) -> TestClient:  # type: ignore[no-untyped-def]
    for tenant in ("acme", "globex"):
        TenantStore(sessions).ensure_tenant(tenant, tenant.title())
    app = create_app(settings.model_copy(update={"admin_token": SecretStr(OPERATOR_TOKEN)}),
                     dialogue=ScriptedDialogueEngine())
    with TestClient(app) as test_client:
        yield test_client


#: The operator's routes: tenants and plans, nothing of a tenant's data. A new one must be added here on purpose.
OPERATOR_ROUTES = {("GET", "/api/v1/admin/plans"), ("POST", "/api/v1/admin/tenants"),
                   ("PUT", "/api/v1/admin/tenants/{tenant}/subscription"),
                   ("POST", "/api/v1/admin/tenants/{tenant}/invoices/{period}/close"),
                   ("GET", "/api/v1/admin/tenants/{tenant}/onboarding")}


def admin_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every admin API route, from the app's own route table (its OpenAPI document)."""
    paths = client.app.openapi()["paths"]
    routes = [(method.upper(), path) for path, operations in paths.items() if path.startswith("/api/v1/admin")
              for method in operations]
    assert len(routes) > 30  # the table really was read
    return routes


def url_of(path: str, tenant: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: tenant if m.group(1) == "tenant" else "1", path)


def test_every_admin_route_is_guarded_and_the_operators_are_the_listed_ones(client: TestClient) -> None:
    operators = set()
    for method, path in admin_routes(client):
        anonymous = client.request(method, url_of(path, "acme"), json={})
        assert anonymous.status_code == 401, f"{method} {path} without credentials → {anonymous.status_code}"
        if client.request(method, url_of(path, "acme"), headers=OPERATOR, json={}).status_code != 401:
            operators.add((method, path))
    assert operators == OPERATOR_ROUTES


def test_an_admin_of_one_tenant_gets_404_for_every_route_of_another(client: TestClient, settings: Settings) -> None:
    acme = tenant_admin_headers(settings.database_url, "acme")
    checked = 0
    for method, path in admin_routes(client):
        if "{tenant}" not in path:
            continue
        for other in ("globex", "no-such-tenant"):  # an existing tenant answers exactly like a missing one
            response = client.request(method, url_of(path, other), headers=acme, json={})
            expected = 401 if (method, path) in OPERATOR_ROUTES else 404  # operator routes: not an operator
            assert response.status_code == expected, f"{method} {path} as acme's admin → {response.status_code}"
            assert response.json()["error"] in ("unknown_tenant", "bad_admin_token"), response.text
            checked += 1
        # ... while its own tenant's routes let it in (whatever the route then says about the request).
        own = client.request(method, url_of(path, "acme"), headers=acme, json={})
        assert own.status_code not in (401, 404) or (method, path) in OPERATOR_ROUTES or \
            own.json().get("error") not in ("unknown_tenant", "not_logged_in", "session_expired"), f"{method} {path}"
    assert checked > 50


def test_the_operator_token_opens_tenants_and_plans_but_nothing_of_a_tenant(client: TestClient) -> None:
    for method, path in admin_routes(client):
        if (method, path) in OPERATOR_ROUTES:
            continue
        response = client.request(method, url_of(path, "acme"), headers=OPERATOR, json={})
        assert response.status_code == 401, f"{method} {path} with the operator token → {response.status_code}"
    assert client.get("/api/v1/admin/plans", headers=OPERATOR).status_code == 200


def test_agents_who_are_not_admins_and_deactivated_admins_are_refused(client: TestClient, settings: Settings,
                                                                       sessions) -> None:  # type: ignore[no-untyped-def]
    store = AgentStore(sessions)
    supervisor = store.create("acme", "sup@acme.example", "Sup", "Correct-Horse-9-Battery", role="supervisor")
    token = store.start_session(supervisor).token
    assert client.get("/api/v1/admin/tenants/acme/models", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    admin = tenant_admin_headers(settings.database_url, "acme", "boss@acme.example")
    assert client.get("/api/v1/admin/tenants/acme/models", headers=admin).status_code == 200
    boss = next(a for a in store.list("acme") if a.email == "boss@acme.example")
    store.update("acme", boss.id, active=False)
    assert client.get("/api/v1/admin/tenants/acme/models", headers=admin).status_code == 401


def test_admin_pages_use_the_admins_session_and_have_no_token_form(client: TestClient) -> None:
    pages = ["/admin", "/admin/kb", "/admin/inbox", "/admin/models", "/admin/analytics", "/admin/usage"]
    nav = client.get("/admin/static/admin_access.js").text
    assert all(f'"{page}"' in nav for page in pages)  # one navigation reaches every page
    for page in pages:
        html = client.get(page)
        assert html.status_code == 200 and "script-src 'self'" in html.headers["content-security-policy"]
        assert 'id="token"' not in html.text and "Admin token" not in html.text, page
        assert "/admin/static/admin_access.js" in html.text, page
    script = client.get("/admin/static/admin_access.js").text
    assert "Authorization" not in script and "X-CSRF-Token" in script and "/api/v1/agent/me" in script
