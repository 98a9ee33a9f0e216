"""Nothing is lost across a gateway restart; handoff events reach webhooks, signed."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway import webhooks
from gateway.settings import Settings
from gateway.stores.agent_store import AgentRecord
from tests.gateway.conftest import ScriptedDialogueEngine
from tests.gateway.handoff.conftest import HANDOFF_TEXT, Customer, bearer, login
from tests.conftest import run_async


def test_a_restart_mid_conversation_keeps_queue_owner_transcript_and_sessions(
    client: TestClient, settings: Settings, handoff_engine: ScriptedDialogueEngine, alice: AgentRecord
) -> None:
    waiting = Customer(client)
    waiting.say(HANDOFF_TEXT)                     # stays queued (nobody online yet)
    client.app.state.services.agents.update("acme", alice.id, capacity=1)  # type: ignore[attr-defined]
    talking = Customer(client)
    talking.say(HANDOFF_TEXT)
    token = login(client, "alice@acme.test")      # Alice gets the first one
    services = client.app.state.services  # type: ignore[attr-defined]
    owned = services.handoff.handoffs.list("acme", agent_id=alice.id)[0]
    client.post(f"/api/v1/agent/conversations/{owned.conversation_id}/messages", json={"text": "I'm here"},
                headers=bearer(token))
    before = client.get("/api/v1/agent/queue", headers=bearer(token)).json()
    transcript_before = client.get(f"/api/v1/agent/conversations/{owned.conversation_id}",
                                   headers=bearer(token)).json()["transcript"]

    engine = ScriptedDialogueEngine()
    with TestClient(create_app(settings, dialogue=engine)) as restarted:  # a new process on the same database
        after = restarted.get("/api/v1/agent/queue", headers=bearer(token))
        assert after.status_code == 200  # the session survived
        assert [h["id"] for h in after.json()["waiting"]] == [h["id"] for h in before["waiting"]]
        assert [(h["id"], h["state"], h["agent_id"]) for h in after.json()["active"]] == [
            (h["id"], h["state"], h["agent_id"]) for h in before["active"]]
        packet = restarted.get(f"/api/v1/agent/conversations/{owned.conversation_id}", headers=bearer(token)).json()
        assert packet["transcript"] == transcript_before
        customer = Customer(restarted, owned.conversation_id, talking.token if owned.conversation_id ==
                            talking.conversation_id else waiting.token)
        customer.say("still there?")
        assert engine.calls == []  # the human still owns it after the restart
        reply = restarted.post(f"/api/v1/agent/conversations/{owned.conversation_id}/messages",
                               json={"text": "yes"}, headers=bearer(token))
        assert reply.status_code == 200


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    fail_first = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.fail_first > 0:
            _Receiver.fail_first -= 1
            self.send_response(500)
            self.end_headers()
            return
        _Receiver.received.append(({k: v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    _Receiver.received = []
    _Receiver.fail_first = 0
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_handoff_events_are_delivered_signed_and_retried(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, agent_store, receiver  # type: ignore[no-untyped-def]
) -> None:
    agent_store.create("acme", "root@acme.test", "Root", "correct horse battery staple", role="admin")
    admin = login(client, "root@acme.test")
    url = f"http://127.0.0.1:{receiver.server_port}/hooks"
    # By default the gateway's own machine and network are out of a tenant's reach.
    for private in (url, "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/x", "http://[::1]:8000/x",
                    "http://localhost:5432/"):
        refused = client.post("/api/v1/agent/webhooks", json={"url": private}, headers=bearer(admin))
        assert refused.status_code == 422 and "private or local" in refused.json()["detail"], private
    client.app.state.services.webhooks.allow_private = True  # the operator's setting for this test's receiver
    created = client.post("/api/v1/agent/webhooks", json={"url": url}, headers=bearer(admin))
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert client.post("/api/v1/agent/webhooks", json={"url": "ftp://x"}, headers=bearer(admin)).status_code == 422
    _Receiver.fail_first = 1  # the first attempt fails: it is retried, not lost
    customer = Customer(client)
    customer.say(HANDOFF_TEXT)  # queued, then auto-assigned to the online admin
    services = client.app.state.services  # type: ignore[attr-defined]

    async def send_once() -> None:
        dispatcher = webhooks.WebhookDispatcher(services.webhooks)
        await dispatcher.send_due()
        await dispatcher.aclose()

    deadline = time.monotonic() + 30
    while len(_Receiver.received) < 2 and time.monotonic() < deadline:
        run_async(send_once())
        with services.sessions.begin() as session:  # make retries due now instead of after the backoff
            from sqlalchemy import update

            from gateway.db.models import WebhookDelivery, utcnow

            session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
        time.sleep(0.2)
    events = []
    for headers, body in _Receiver.received:
        delivery = headers["X-Switchboard-Delivery"]
        assert webhooks.verify(secret, headers["X-Switchboard-Signature"], delivery, body)
        assert not webhooks.verify("whsec_wrong", headers["X-Switchboard-Signature"], delivery, body)
        assert not webhooks.verify(secret, headers["X-Switchboard-Signature"], delivery, body + b" ")
        payload = json.loads(body)
        assert payload["id"] == delivery
        events.append(payload["event"])
    assert sorted(events) == ["handoff.assigned", "handoff.queued"]
    statuses = {d["event"]: (d["status"], d["attempts"]) for d in services.webhooks.deliveries("acme")}
    assert all(status == "delivered" for status, _ in statuses.values())
    assert max(attempts for _, attempts in statuses.values()) == 2


def test_signatures_expire() -> None:
    body = b'{"id":"d1"}'
    header = webhooks.sign("whsec_abc", int(time.time()) - 3600, "d1", body)
    assert not webhooks.verify("whsec_abc", header, "d1", body)
    fresh = webhooks.sign("whsec_abc", int(time.time()), "d1", body)
    assert webhooks.verify("whsec_abc", fresh, "d1", body)
    assert not webhooks.verify("whsec_abc", fresh, "d2", body)  # bound to the delivery id
    assert not webhooks.verify("whsec_abc", "garbage", "d1", body)
