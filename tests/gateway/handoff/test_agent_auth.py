"""Agent login: hashed passwords, expiring sessions, CSRF on cookie sessions, roles, brute-force throttle."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.db.models import Agent
from gateway.stores.agent_store import AgentRecord, AgentStore
from tests.gateway.handoff.conftest import PASSWORD, bearer, login


def test_passwords_are_stored_hashed(alice: AgentRecord, sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        stored = session.execute(select(Agent.password_hash).where(Agent.id == alice.id)).scalar_one()
    assert PASSWORD not in stored and stored.startswith("scrypt$")


def test_login_sets_an_httponly_strict_cookie_and_cookie_writes_need_the_csrf_token(
    client: TestClient, alice: AgentRecord
) -> None:
    response = client.post("/api/v1/agent/login", json={"tenant": "acme", "email": "ALICE@acme.test", "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = response.json()["csrf_token"]
    assert client.get("/api/v1/agent/me").status_code == 200  # reads need no CSRF token
    refused = client.put("/api/v1/agent/me/status", json={"status": "away"})
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    wrong = client.put("/api/v1/agent/me/status", json={"status": "away"}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    ok = client.put("/api/v1/agent/me/status", json={"status": "away"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200
    assert client.post("/api/v1/agent/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/api/v1/agent/me").status_code == 401


def test_bad_credentials_are_refused_and_repeated_failures_throttled(client: TestClient, alice: AgentRecord) -> None:
    for tenant, email, password in (("acme", "alice@acme.test", "wrong password!"), ("acme", "nobody@acme.test", PASSWORD),
                                    ("globex", "alice@acme.test", PASSWORD)):
        response = client.post("/api/v1/agent/login", json={"tenant": tenant, "email": email, "password": password})
        assert response.status_code == 401 and response.json()["error"] == "bad_credentials"
    for _ in range(4):
        client.post("/api/v1/agent/login", json={"tenant": "acme", "email": "alice@acme.test", "password": "nope nope"})
    blocked = client.post("/api/v1/agent/login", json={"tenant": "acme", "email": "alice@acme.test", "password": PASSWORD})
    assert blocked.status_code == 429


def test_failures_from_one_address_lock_out_nobody_else(client: TestClient, alice: AgentRecord) -> None:
    # Someone behind the same address guesses at accounts that do not exist (and at alice's neighbour's).
    for n in range(30):
        client.post("/api/v1/agent/login", json={"tenant": "acme", "email": f"ghost{n}@acme.test", "password": "x" * 12})
    for _ in range(6):
        client.post("/api/v1/agent/login", json={"tenant": "acme", "email": "bob@acme.test", "password": "x" * 12})
    # Alice, at the same address, still gets in with her password.
    ok = client.post("/api/v1/agent/login", json={"tenant": "acme", "email": "alice@acme.test", "password": PASSWORD})
    assert ok.status_code == 200


def test_sessions_expire_and_deactivated_agents_are_logged_out(sessions, alice: AgentRecord) -> None:  # type: ignore[no-untyped-def]
    short = AgentStore(sessions, idle_timeout=timedelta(seconds=-1))
    grant = short.start_session(alice)
    assert short.resolve_session(grant.token) is None
    store = AgentStore(sessions)
    grant = store.start_session(alice)
    assert store.resolve_session(grant.token) is not None
    store.update("acme", alice.id, active=False)
    assert store.resolve_session(grant.token) is None
    assert store.authenticate("acme", "alice@acme.test", PASSWORD) is None


def test_roles_guard_admin_operations(client: TestClient, alice: AgentRecord, agent_store: AgentStore) -> None:
    token = login(client, "alice@acme.test")
    new_agent = {"email": "carol@acme.test", "display_name": "Carol", "password": PASSWORD}
    assert client.post("/api/v1/agent/agents", json=new_agent, headers=bearer(token)).status_code == 403
    assert client.post("/api/v1/agent/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=bearer(token)).status_code == 403
    agent_store.create("acme", "root@acme.test", "Root", PASSWORD, role="admin")
    admin = login(client, "root@acme.test")
    created = client.post("/api/v1/agent/agents", json=new_agent, headers=bearer(admin))
    assert created.status_code == 201 and created.json()["role"] == "agent"
    again = client.post("/api/v1/agent/agents", json=new_agent, headers=bearer(admin))
    assert again.status_code == 409
    weak = client.post("/api/v1/agent/agents", json={**new_agent, "email": "d@acme.test", "password": "short"},
                       headers=bearer(admin))
    assert weak.status_code == 422


def test_agents_only_see_their_own_tenant(client: TestClient, alice: AgentRecord, agent_store: AgentStore) -> None:
    from tests.gateway.handoff.conftest import Customer

    customer = Customer(client)
    customer.say("hello")
    agent_store.create("globex", "eve@globex.test", "Eve", PASSWORD, role="admin")
    eve = login(client, "eve@globex.test", tenant="globex")
    response = client.get(f"/api/v1/agent/conversations/{customer.conversation_id}", headers=bearer(eve))
    assert response.status_code == 404
    taken = client.post(f"/api/v1/agent/conversations/{customer.conversation_id}/takeover", headers=bearer(eve))
    assert taken.status_code == 404


def test_signing_in_to_configure_does_not_put_an_admin_into_the_handoff_rotation(
    client: TestClient, alice: AgentRecord
) -> None:
    body = {"tenant": "acme", "email": "alice@acme.test", "password": PASSWORD}
    admin_pages = client.post("/api/v1/agent/login", json={**body, "available": False})
    assert admin_pages.status_code == 200 and admin_pages.json()["agent"]["status"] != "online"
    client.cookies.clear()
    me = client.get("/api/v1/agent/me", headers=bearer(admin_pages.json()["token"])).json()
    assert me["agent"]["status"] != "online"
    console = client.post("/api/v1/agent/login", json=body)  # the console takes conversations
    assert console.json()["agent"]["status"] == "online"
