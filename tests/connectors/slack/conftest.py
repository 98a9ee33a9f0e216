"""Slack fixtures: the gateway with Slack on, a local fake of the Slack Web API, and signed requests."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from connectors.slack.token_cipher import TokenCipher
from connectors.slack.workspace_store import SlackWorkspaceStore
from gateway.app import create_app
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore
from tests.conftest import make_settings
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, FakeSlackApi, running_fake_slack
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0001"
ESCALATION_CHANNEL = "CESC0001"
ADMIN_TOKEN = "admin-" + "x" * 40
_ids = itertools.count(1)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlackApi]:
    with running_fake_slack() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, fake_slack: FakeSlackApi) -> Settings:
    """Slack on, talking to the fake; the admin API on (the root ``sessions`` fixture migrates its database)."""
    return make_settings(tmp_path, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.url,
                         slack_client_id="1111.2222", slack_client_secret="s" * 32, admin_token=ADMIN_TOKEN)


@pytest.fixture
def engine() -> ScriptedDialogueEngine:
    return ScriptedDialogueEngine()


@pytest.fixture
def workspaces(settings: Settings, sessions: sessionmaker[Session]) -> SlackWorkspaceStore:
    return SlackWorkspaceStore(sessions, TokenCipher(settings.secret_key.get_secret_value()))


@pytest.fixture
def slack_client(settings: Settings, sessions: sessionmaker[Session], engine: ScriptedDialogueEngine,
                 workspaces: SlackWorkspaceStore) -> Iterator[TestClient]:
    """The gateway with workspace T0001 installed for tenant acme, escalations to CESC0001."""
    tenants = TenantStore(sessions)
    tenants.ensure_tenant("acme", "Acme")
    tenants.issue_widget_key("acme", WIDGET_KEY)
    workspaces.save("acme", TEAM, BOT_TOKEN, team_name="Acme HQ", bot_user_id=BOT_USER_ID, bot_id="B0001",
                    escalation_channel=ESCALATION_CHANNEL)
    with TestClient(create_app(settings, dialogue=engine)) as client:
        yield client


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's v0 request signature headers for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def event_body(event: dict[str, Any], event_id: str | None = None, team: str = TEAM) -> str:
    """An Events API envelope around ``event``."""
    return json.dumps({
        "token": "legacy", "team_id": team, "api_app_id": "A0001", "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):08d}", "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": team, "user_id": BOT_USER_ID, "is_bot": True}],
    })


def new_ts() -> str:
    return f"{int(time.time())}.{next(_ids):06d}"


def dm(user: str, text: str, channel: str = "D0000001") -> dict[str, Any]:
    """A direct message from a user to the bot."""
    return {"type": "message", "channel_type": "im", "channel": channel, "user": user, "text": text,
            "ts": new_ts(), "client_msg_id": f"cm-{next(_ids)}"}


def post_event(client: TestClient | httpx.Client, event: dict[str, Any], event_id: str | None = None,
               headers: dict[str, str] | None = None, **sign_args: Any) -> httpx.Response:
    body = event_body(event, event_id)
    return client.post("/slack/events", content=body,
                       headers={"Content-Type": "application/json", **sign(body, **sign_args), **(headers or {})})


def post_form(client: TestClient, fields: dict[str, str]) -> httpx.Response:
    body = urlencode(fields)
    return client.post("/slack/events", content=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)})


def post_action(client: TestClient, user: str, action_id: str, value: str, channel: str,
                message_ts: str | None = None, thread_ts: str | None = None) -> httpx.Response:
    """A Block Kit button click (interactivity payload)."""
    payload = {
        "type": "block_actions", "team": {"id": TEAM, "domain": "acme"}, "api_app_id": "A0001",
        "user": {"id": user, "username": user.lower(), "name": f"agent {user}", "team_id": TEAM},
        "container": {"type": "message", "channel_id": channel, "message_ts": message_ts or new_ts(),
                      **({"thread_ts": thread_ts} if thread_ts else {})},
        "channel": {"id": channel}, "trigger_id": f"tr{next(_ids)}",
        "response_url": f"{_response_url_base}/actions/{next(_ids)}",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value,
                     "text": {"type": "plain_text", "text": value}, "action_ts": new_ts()}],
    }
    return post_form(client, {"payload": json.dumps(payload)})


_response_url_base = "http://127.0.0.1:9/response"


@pytest.fixture(autouse=True)
def _response_urls(fake_slack: FakeSlackApi) -> None:
    global _response_url_base
    _response_url_base = fake_slack.url.replace("/api/", "")
