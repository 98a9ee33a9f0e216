"""Knowledge-base admin API and page: auth, upload, list, search, delete, bad input."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.db.session import create_db_engine, create_session_factory
from gateway.migrate import upgrade_database
from gateway.stores.tenant_store import TenantStore
from tests.conftest import make_settings, tenant_admin_of
from tests.gateway.conftest import ScriptedDialogueEngine

pytestmark = pytest.mark.slow
TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = "/api/v1/admin/tenants"


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, admin_token=TOKEN, kb_max_file_bytes=200_000)
    upgrade_database(settings.database_url)
    engine = create_db_engine(settings.database_url)
    tenants = TenantStore(create_session_factory(engine))
    tenants.ensure_tenant("acme", "Acme")
    tenants.ensure_tenant("globex", "Globex")
    with TestClient(create_app(settings, dialogue=ScriptedDialogueEngine())) as client:
        yield client
    engine.dispose()


def test_admin_api_needs_a_tenant_admin(admin: TestClient) -> None:
    assert admin.get(f"{BASE}/acme/kb/documents").status_code == 401
    wrong = admin.get(f"{BASE}/acme/kb/documents", headers={"Authorization": "Bearer " + "x" * 40})
    assert wrong.status_code == 401 and wrong.json()["error"] == "session_expired"
    operator = admin.get(f"{BASE}/acme/kb/documents", headers=AUTH)  # the operator's token opens no tenant data
    assert operator.status_code == 401
    assert admin.get(f"{BASE}/acme/kb/documents", headers=tenant_admin_of(admin, "acme")).status_code == 200


def test_without_an_operator_token_only_the_operator_api_is_off(client: TestClient) -> None:
    response = client.post(f"{BASE}", headers=AUTH, json={"id": "initech", "name": "Initech"})
    assert response.status_code == 503 and response.json()["error"] == "admin_disabled"
    assert client.get(f"{BASE}/acme/kb/documents", headers=tenant_admin_of(client, "acme")).status_code == 200


def test_upload_list_search_delete(admin: TestClient) -> None:
    body = b"---\nurl: https://acme.example/help/returns\n---\n# Returns\n\nYou can return anything within 60 days for free.\n"
    uploaded = admin.put(f"{BASE}/acme/kb/documents/returns.md", content=body, headers=tenant_admin_of(admin, "acme"))
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["status"] == "added" and uploaded.json()["chunks"] == 1
    assert admin.put(f"{BASE}/acme/kb/documents/returns.md", content=body, headers=tenant_admin_of(admin, "acme")).json()["status"] == "unchanged"

    listed = admin.get(f"{BASE}/acme/kb/documents", headers=tenant_admin_of(admin, "acme")).json()["documents"]
    assert [d["source"] for d in listed] == ["returns.md"] and listed[0]["title"] == "Returns"

    found = admin.get(f"{BASE}/acme/kb/search", params={"q": "how many days do I have to send something back?"}, headers=tenant_admin_of(admin, "acme")).json()
    assert found["answerable"] and found["results"][0]["url"] == "https://acme.example/help/returns"
    # The other tenant sees none of it.
    assert admin.get(f"{BASE}/globex/kb/search", params={"q": "return within 60 days"}, headers=tenant_admin_of(admin, "globex")).json()["results"] == []
    assert admin.get(f"{BASE}/globex/kb/search", params={"q": "x"}, headers=tenant_admin_of(admin, "acme")).status_code == 404

    assert admin.post(f"{BASE}/acme/kb/reindex", headers=tenant_admin_of(admin, "acme")).json() == {"chunks": 1}
    assert admin.delete(f"{BASE}/acme/kb/documents/{listed[0]['id']}", headers=tenant_admin_of(admin, "acme")).status_code == 204
    assert admin.get(f"{BASE}/acme/kb/search", params={"q": "return within 60 days"}, headers=tenant_admin_of(admin, "acme")).json()["results"] == []
    assert admin.delete(f"{BASE}/acme/kb/documents/returns.md", headers=tenant_admin_of(admin, "acme")).status_code == 404


def test_bad_uploads_get_clear_errors_and_lose_nothing(admin: TestClient) -> None:
    good = b"# Shipping\n\nWe ship to every EU country in three days.\n"
    assert admin.put(f"{BASE}/acme/kb/documents/shipping.md", content=good, headers=tenant_admin_of(admin, "acme")).status_code == 200
    cases = [
        ("shipping.md", b"", 422, "empty"),
        ("broken.pdf", b"%PDF-1.4 nonsense", 422, "not a readable PDF"),
        ("latin.txt", "\xe9t\xe9".encode("latin-1"), 422, "not UTF-8"),
        ("virus.exe", b"MZ", 415, "unsupported file type"),
        ("huge.txt", b"a" * 300_000, 413, "exceeds"),
        ("big.txt", b"a " * 100_001, 413, "limit"),
    ]
    for name, data, status, reason in cases:
        response = admin.put(f"{BASE}/acme/kb/documents/{name}", content=data, headers=tenant_admin_of(admin, "acme"))
        assert response.status_code == status, (name, response.text)
        assert reason in response.json()["detail"]
    listed = admin.get(f"{BASE}/acme/kb/documents", headers=tenant_admin_of(admin, "acme")).json()["documents"]
    assert [d["source"] for d in listed] == ["shipping.md"]
    found = admin.get(f"{BASE}/acme/kb/search", params={"q": "do you ship to the EU"}, headers=tenant_admin_of(admin, "acme")).json()
    assert found["results"][0]["source"] == "shipping.md"


def test_unknown_tenant_and_bad_queries(admin: TestClient) -> None:
    assert admin.get(f"{BASE}/nobody/kb/documents", headers=tenant_admin_of(admin, "acme")).status_code == 404
    assert admin.put(f"{BASE}/nobody/kb/documents/a.md", content=b"# A\n\nb\n", headers=tenant_admin_of(admin, "acme")).status_code == 404
    assert admin.get(f"{BASE}/acme/kb/search", params={"q": ""}, headers=tenant_admin_of(admin, "acme")).status_code in (400, 422)
    assert admin.get(f"{BASE}/acme/kb/search", params={"q": "x", "mode": "magic"}, headers=tenant_admin_of(admin, "acme")).status_code in (400, 422)


def test_admin_page_is_served_with_a_strict_policy(admin: TestClient) -> None:
    page = admin.get("/admin/kb")
    assert page.status_code == 200 and "Knowledge base" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = admin.get("/admin/static/kb_admin.js")
    assert script.status_code == 200 and "innerHTML" not in script.text
    assert admin.get("/admin/static/../settings.py").status_code == 404


def test_concurrent_uploads_never_exceed_the_plans_documents(admin: TestClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from gateway.billing.plans import Plan, Unit

    services = admin.app.state.services
    services.usage.plans.put(Plan(id="pair", name="Pair", monthly_fee="1", limits={Unit.KB_DOCUMENTS: 2}))
    services.usage.change_plan("acme", "pair")
    headers = tenant_admin_of(admin, "acme")

    def upload(n: int) -> int:
        body = f"# Topic {n}\n\nEverything about topic number {n} and nothing else.\n".encode()
        return admin.put(f"{BASE}/acme/kb/documents/topic{n}.md", content=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = sorted(pool.map(upload, range(5)))
    assert statuses.count(200) == 2 and statuses.count(402) == 3, statuses
    assert len(admin.get(f"{BASE}/acme/kb/documents", headers=headers).json()["documents"]) == 2
    refused = admin.put(f"{BASE}/acme/kb/documents/late.md", content=b"# Late\n\nToo late.\n", headers=headers)
    assert refused.status_code == 402 and "includes 2 knowledge-base documents" in refused.json()["detail"]
