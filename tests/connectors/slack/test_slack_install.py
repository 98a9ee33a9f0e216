"""Installing the Slack app for a tenant: signed link → state (URL + cookie) → code exchange → workspace."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.slack.workspace_store import SlackWorkspaceStore
from gateway.db.models import SlackWorkspace
from tests.connectors.slack.conftest import ADMIN_TOKEN
from tests.fakes.slack_api import FakeSlackApi
from tests.conftest import tenant_admin_of

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NEW_TOKEN = "xoxb-installed-9999-secret"


def _grant(team: str = "T0NEW001") -> dict[str, object]:
    return {"ok": True, "access_token": NEW_TOKEN, "token_type": "bot", "scope": "chat:write,commands",
            "bot_user_id": "UBOTNEW1", "app_id": "A0001", "team": {"id": team, "name": "New Co"},
            "authed_user": {"id": "UADMIN01"}}


def _start_install(client: TestClient, tenant: str = "acme") -> str:
    link = client.post(f"/api/v1/admin/tenants/{tenant}/slack/install-link", headers=tenant_admin_of(client, tenant))
    assert link.status_code == 200, link.text
    url = urlsplit(link.json()["url"])
    response = client.get(f"{url.path}?{url.query}", follow_redirects=False)
    assert response.status_code == 302
    authorize = urlsplit(response.headers["location"])
    query = parse_qs(authorize.query)
    assert authorize.netloc == "slack.com" and query["client_id"] == ["1111.2222"]
    assert "chat:write" in query["scope"][0]
    return query["state"][0]


def test_install_stores_the_workspace_for_the_tenant_with_an_encrypted_token(
        slack_client: TestClient, fake_slack: FakeSlackApi, sessions: sessionmaker[Session],
        workspaces: SlackWorkspaceStore) -> None:
    state = _start_install(slack_client)
    fake_slack.oauth_codes["code-1"] = _grant()
    done = slack_client.get(f"/slack/oauth_redirect?code=code-1&state={state}")
    assert done.status_code == 200, done.text
    assert "New Co" in done.text
    exchange = fake_slack.of("oauth.v2.access")[0]
    assert exchange.args["code"] == "code-1"

    record = workspaces.get("T0NEW001")
    assert record is not None and record.tenant_id == "acme" and record.bot_token == NEW_TOKEN
    with sessions() as session:
        stored = session.execute(select(SlackWorkspace.bot_token_encrypted)
                                 .where(SlackWorkspace.team_id == "T0NEW001")).scalar_one()
    assert NEW_TOKEN not in stored
    listed = slack_client.get("/api/v1/admin/tenants/acme/slack/workspaces", headers=tenant_admin_of(slack_client, "acme")).json()["workspaces"]
    assert {w["team_id"] for w in listed} == {"T0001", "T0NEW001"}
    assert NEW_TOKEN not in str(listed)

    # The state is single-use.
    fake_slack.oauth_codes["code-2"] = _grant()
    again = slack_client.get(f"/slack/oauth_redirect?code=code-2&state={state}")
    assert again.status_code == 400


def test_a_callback_without_the_browsers_state_cookie_or_with_a_forged_link_is_refused(
        slack_client: TestClient, fake_slack: FakeSlackApi, workspaces: SlackWorkspaceStore) -> None:
    state = _start_install(slack_client)
    slack_client.cookies.clear()
    fake_slack.oauth_codes["code-1"] = _grant()
    assert slack_client.get(f"/slack/oauth_redirect?code=code-1&state={state}").status_code == 400
    assert fake_slack.of("oauth.v2.access") == []
    assert slack_client.get("/slack/install?ticket=YWNtZQ.9999999999.forged", follow_redirects=False).status_code == 400
    assert workspaces.get("T0NEW001") is None


def test_a_workspace_cannot_be_taken_over_by_another_tenant(
        slack_client: TestClient, fake_slack: FakeSlackApi, sessions: sessionmaker[Session],
        workspaces: SlackWorkspaceStore) -> None:
    from gateway.stores.tenant_store import TenantStore

    TenantStore(sessions).ensure_tenant("globex", "Globex")
    state = _start_install(slack_client, "globex")
    fake_slack.oauth_codes["code-1"] = _grant(team="T0001")  # already Acme's
    assert slack_client.get(f"/slack/oauth_redirect?code=code-1&state={state}").status_code == 409
    record = workspaces.get("T0001")
    assert record is not None and record.tenant_id == "acme"


def test_admins_choose_the_escalation_channel(slack_client: TestClient, workspaces: SlackWorkspaceStore) -> None:
    changed = slack_client.put("/api/v1/admin/tenants/acme/slack/workspaces/T0001", headers=tenant_admin_of(slack_client, "acme"),
                               json={"escalation_channel": "CNEW0001"})
    assert changed.status_code == 200 and changed.json()["escalation_channel"] == "CNEW0001"
    assert slack_client.put("/api/v1/admin/tenants/acme/slack/workspaces/T0001",
                            json={"escalation_channel": "C1"}).status_code == 401
    assert slack_client.put("/api/v1/admin/tenants/acme/slack/workspaces/TNOPE001", headers=tenant_admin_of(slack_client, "acme"),
                            json={"escalation_channel": "C1"}).status_code == 404
