"""Quotas in the request path, period rollover, proration and invoices, through the gateway."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.app import create_app
from gateway.billing.plans import Plan, Unit
from gateway.db.models import Handoff, UsageRecord, WebhookDelivery
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore
from tests.conftest import make_settings
from tests.gateway.billing.conftest import Clock, utc
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine
from tests.conftest import tenant_admin_of

ADMIN_TOKEN = "admin-" + "z" * 40
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TINY_STOP = Plan(id="tiny", name="Tiny", monthly_fee=Decimal("10"), limits={Unit.CUSTOMER_MESSAGES: 3},
                 channels=["web", "api"])
TINY_STOP_HUMAN = TINY_STOP.model_copy(update={"id": "tiny-human", "handoff_on_limit": True})
TINY_OVERAGE = TINY_STOP.model_copy(update={"id": "tiny-overage", "overage": {Unit.CUSTOMER_MESSAGES: Decimal("0.25")}})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, admin_token=ADMIN_TOKEN, rate_conversation_burst=1000, rate_ip_burst=10000,
                         rate_ip_per_min=100000, rate_new_conversations_per_min=10000)


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(2026, 11, 10, 12))


@pytest.fixture
def engine() -> ScriptedDialogueEngine:
    return ScriptedDialogueEngine()


@pytest.fixture
def gateway(settings: Settings, sessions: sessionmaker[Session], engine: ScriptedDialogueEngine,
            clock: Clock) -> Iterator[TestClient]:
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    TenantStore(sessions).issue_widget_key("acme", WIDGET_KEY)
    app = create_app(settings, dialogue=engine)
    usage = app.state.services.usage
    usage.clock = clock
    with TestClient(app) as client:
        for plan in (TINY_STOP, TINY_STOP_HUMAN, TINY_OVERAGE):
            usage.plans.put(plan)
        yield client


def _say(client: TestClient, text: str, conversation: dict[str, str] | None = None,
         client_id: str | None = None) -> dict:
    body: dict = {"text": text}
    headers = {"X-Widget-Key": WIDGET_KEY}
    if conversation:
        body["conversation_id"] = conversation["conversation_id"]
        headers["X-Conversation-Token"] = conversation["conversation_token"]
    if client_id:
        body["client_id"] = client_id
    response = client.post("/api/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _plan(client: TestClient, plan: str) -> None:
    assert client.put("/api/v1/admin/tenants/acme/subscription", json={"plan": plan}, headers=ADMIN).status_code == 200


def _usage(client: TestClient, period: str | None = None) -> dict[str, dict]:
    url = "/api/v1/admin/tenants/acme/usage" + (f"?period={period}" if period else "")
    data = client.get(url, headers=tenant_admin_of(client, "acme")).json()
    assert data["reconciled"] is True
    return {u["unit"]: u for u in data["units"]}


def test_200_messages_from_20_parallel_conversations_are_counted_exactly_even_when_replayed(
        gateway: TestClient, engine: ScriptedDialogueEngine) -> None:
    _plan(gateway, "pro")
    starts = [_say(gateway, "hello", client_id="c0") for _ in range(20)]

    def converse(start: dict) -> None:
        for n in range(1, 10):
            _say(gateway, f"message {n}", start, client_id=f"c{n}")

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(converse, starts))
    usage = _usage(gateway)
    assert (usage["customer_messages"]["used"], usage["conversations"]["used"]) == (200, 20)

    def replay(start: dict) -> None:
        _say(gateway, "hello", start, client_id="c0")
        converse(start)

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(replay, starts))
    usage = _usage(gateway)
    assert (usage["customer_messages"]["used"], usage["conversations"]["used"]) == (200, 20)
    assert len(engine.calls) == 200


def test_at_a_hard_limit_the_next_message_gets_a_polite_stop_and_never_reaches_the_bot(
        gateway: TestClient, engine: ScriptedDialogueEngine, sessions: sessionmaker[Session]) -> None:
    from gateway.webhooks import WebhookStore

    WebhookStore(sessions).add("acme", "https://hooks.acme.test/usage")
    _plan(gateway, "tiny")
    first = _say(gateway, "one")
    _say(gateway, "two", first)
    _say(gateway, "three", first)
    stopped = _say(gateway, "four", first)
    assert stopped["replies"][0]["sender"] == "system"
    assert "can't take more messages" in stopped["replies"][0]["text"]
    assert stopped["replies"][0]["payload"]["quota"] == {"reason": "limit_reached", "unit": "customer_messages"}
    assert [call[1] for call in engine.calls] == ["one", "two", "three"]
    usage = _usage(gateway)
    assert usage["customer_messages"]["used"] == 3 and usage["customer_messages"]["percent"] == 100.0
    alerts = gateway.get("/api/v1/admin/tenants/acme/usage", headers=tenant_admin_of(gateway, "acme")).json()["alerts"]
    assert [a["level"] for a in alerts] == [80, 100]
    with sessions() as session:
        events = [d.event for d in session.execute(select(WebhookDelivery).order_by(WebhookDelivery.created_at)).scalars()]
    assert events == ["usage.warning", "usage.limit_reached"]  # once each, however many refusals follow


def test_a_plan_with_a_person_on_limit_hands_the_customer_over(gateway: TestClient,
                                                               sessions: sessionmaker[Session]) -> None:
    _plan(gateway, "tiny-human")
    first = _say(gateway, "one")
    for text in ("two", "three"):
        _say(gateway, text, first)
    stopped = _say(gateway, "four", first)
    assert len(stopped["replies"]) >= 2  # the stop, then the queue message
    with sessions() as session:
        handoff = session.execute(select(Handoff)).scalar_one()
    assert handoff.trigger == "quota_exceeded" and handoff.state == "queued"


def test_an_overage_plan_keeps_answering_and_bills_the_extra(gateway: TestClient, engine: ScriptedDialogueEngine,
                                                             clock: Clock) -> None:
    clock.now = utc(2026, 11, 1, 0)
    _plan(gateway, "tiny-overage")
    clock.now = utc(2026, 11, 10, 12)
    first = _say(gateway, "one")
    for n in range(2, 6):
        _say(gateway, f"n{n}", first)
    assert len(engine.calls) == 5
    still_running = gateway.post("/api/v1/admin/tenants/acme/invoices/2026-11/close", headers=ADMIN)
    assert (still_running.status_code, still_running.json()["error"]) == (409, "period_open")
    clock.now = utc(2026, 12, 1, 0, 5)
    invoice = gateway.post("/api/v1/admin/tenants/acme/invoices/2026-11/close", headers=ADMIN).json()
    overage = [line for line in invoice["lines"] if line["kind"] == "overage"]
    assert overage == [{"kind": "overage", "description": "customer messages over the 3 included", "quantity": "2",
                        "unit_price": "0.25", "amount": "0.50"}]
    assert invoice["total"] == "10.50"


def test_the_count_starts_again_in_a_new_period(gateway: TestClient, engine: ScriptedDialogueEngine,
                                                clock: Clock) -> None:
    _plan(gateway, "tiny")
    first = _say(gateway, "one")
    for text in ("two", "three", "four"):
        _say(gateway, text, first)
    assert len(engine.calls) == 3
    clock.now = utc(2026, 12, 1, 0, 0, 1)
    again = _say(gateway, "december", first)
    assert again["replies"][0]["sender"] == "bot"
    assert _usage(gateway, "2026-12")["customer_messages"]["used"] == 1
    assert _usage(gateway, "2026-11")["customer_messages"]["used"] == 3


def test_a_channel_outside_the_plan_is_refused(gateway: TestClient, engine: ScriptedDialogueEngine) -> None:
    import asyncio

    _plan(gateway, "free")
    services = gateway.app.state.services  # type: ignore[attr-defined]
    conversation = services.conversations.create_conversation("acme", "slack")

    async def slack_turn() -> object:
        return await services.router.handle_customer_message("acme", conversation, "hi from slack", "slack")

    turn = gateway.portal.call(slack_turn) if hasattr(gateway, "portal") and gateway.portal else asyncio.run(slack_turn())
    assert turn.replies[0].payload["quota"]["reason"] == "channel_not_in_plan"  # type: ignore[attr-defined]
    assert engine.calls == []


def test_an_upgrade_mid_period_is_prorated_to_the_cent(gateway: TestClient, clock: Clock) -> None:
    clock.now = utc(2026, 11, 1, 0)
    _plan(gateway, "pro")
    clock.now = utc(2026, 11, 11, 0)
    _plan(gateway, "enterprise")
    clock.now = utc(2026, 12, 1, 0, 5)
    invoice = gateway.post("/api/v1/admin/tenants/acme/invoices/2026-11/close", headers=ADMIN).json()
    fees = [(line["description"], line["amount"]) for line in invoice["lines"] if line["kind"] == "base_fee"]
    # Pro: 49.00 × 10/30 = 16.333… → 16.33; Enterprise: 499.00 × 20/30 = 332.666… → 332.67.
    assert fees == [("Pro plan, 2026-11-01 00:00 to 2026-11-11 00:00 (prorated)", "16.33"),
                    ("Enterprise plan, 2026-11-11 00:00 to 2026-12-01 00:00 (prorated)", "332.67")]
    assert invoice["total"] == "349.00"


def test_the_invoice_of_a_seeded_month_matches_the_hand_computed_one(
        gateway: TestClient, clock: Clock, sessions: sessionmaker[Session], settings: Settings) -> None:
    from gateway.stores.agent_store import AgentStore

    usage = gateway.app.state.services.usage  # type: ignore[attr-defined]
    clock.now = utc(2026, 9, 20, 0)
    _plan(gateway, "pro")  # from September: October is a whole month of Pro
    seeded = {Unit.CONVERSATIONS: 2100, Unit.CUSTOMER_MESSAGES: 20500, Unit.HANDOFFS: 510, Unit.TRAINING_RUNS: 21}
    for unit, quantity in seeded.items():
        for n, part in enumerate((quantity // 2, quantity - quantity // 2)):
            usage.meter("acme", unit, f"seed:{unit.value}:{n}", part, at=utc(2026, 10, 5 + n, 9))
    for n in range(3):
        AgentStore(sessions).create("acme", f"agent{n}@acme.test", f"Agent {n}", "correct horse battery staple")
    clock.now = utc(2026, 11, 1, 0, 5)
    invoice = gateway.post("/api/v1/admin/tenants/acme/invoices/2026-10/close", headers=ADMIN).json()
    # By hand: Pro 49.00; 100 conversations × 0.05 = 5.00; 500 messages × 0.005 = 2.50;
    # 10 handoffs × 0.50 = 5.00; 1 training run × 2.00 = 2.00. Seats (3 of 10) are included.
    assert [(line["kind"], line["amount"]) for line in invoice["lines"]] == [
        ("base_fee", "49.00"), ("overage", "5.00"), ("overage", "2.50"), ("overage", "5.00"), ("overage", "2.00")]
    assert invoice["total"] == "63.50"
    assert invoice["usage"]["agent_seats"] == 3

    again = gateway.post("/api/v1/admin/tenants/acme/invoices/2026-10/close", headers=ADMIN)
    assert again.status_code == 409 and again.json()["error"] == "already_closed"
    assert again.json()["invoice"] == invoice  # closing twice counts nothing twice
    folder = settings.invoices_dir / "acme"
    assert json.loads((folder / "2026-10.json").read_text()) == invoice
    rows = list(csv.DictReader(io.StringIO((folder / "2026-10.csv").read_text())))
    assert rows[-1]["kind"] == "total" and rows[-1]["amount"] == "63.50"
    assert gateway.get("/api/v1/admin/tenants/acme/invoices/2026-10.csv", headers=tenant_admin_of(gateway, "acme")).text == (
        folder / "2026-10.csv").read_bytes().decode()
    events = [json.loads(line) for line in (folder / "2026-10.stripe_meter_events.jsonl").read_text().splitlines()]
    messages = next(e for e in events if e["event_name"] == "switchboard_customer_messages")
    assert messages == {"event_name": "switchboard_customer_messages", "identifier": "acme:2026-10:customer_messages",
                        "timestamp": 1793491199, "payload": {"stripe_customer_id": "acme", "value": "20500"}}
    with sessions() as session:
        assert session.execute(select(UsageRecord).where(UsageRecord.unit == "agent_seats")).scalar_one().quantity == 3


def test_admins_create_tenants_issue_keys_and_read_usage(gateway: TestClient) -> None:
    created = gateway.post("/api/v1/admin/tenants", json={"id": "initech", "name": "Initech", "plan": "pro"},
                           headers=ADMIN)
    assert created.status_code == 201 and created.json()["widget_key"].startswith("wk_")
    assert gateway.post("/api/v1/admin/tenants", json={"id": "initech", "name": "Again"}, headers=ADMIN).status_code == 409
    assert gateway.post("/api/v1/admin/tenants", json={"id": "x2", "name": "X", "plan": "gold"}, headers=ADMIN).status_code == 422
    key = gateway.post("/api/v1/admin/tenants/initech/widget-keys", headers=tenant_admin_of(gateway, "initech")).json()["widget_key"]
    reply = gateway.post("/api/v1/messages", json={"text": "hi"}, headers={"X-Widget-Key": key})
    assert reply.status_code == 200
    usage = gateway.get("/api/v1/admin/tenants/initech/usage", headers=tenant_admin_of(gateway, "initech")).json()
    assert usage["plan"]["id"] == "pro"
    assert {u["unit"]: u["used"] for u in usage["units"]}["customer_messages"] == 1
    assert gateway.get("/api/v1/admin/tenants/initech/usage?period=2026-13", headers=tenant_admin_of(gateway, "initech")).status_code == 422
    assert gateway.get("/api/v1/admin/tenants/initech/usage").status_code == 401
    assert [p["id"] for p in gateway.get("/api/v1/admin/plans", headers=ADMIN).json()["plans"]][:3] == [
        "free", "tiny", "tiny-human"]


def test_seats_beyond_the_plan_are_refused(gateway: TestClient, sessions: sessionmaker[Session]) -> None:
    from gateway.stores.agent_store import AgentStore

    _plan(gateway, "free")  # two seats
    AgentStore(sessions).create("acme", "boss@acme.test", "Boss", "correct horse battery staple", role="admin")
    token = gateway.post("/api/v1/agent/login", json={"tenant": "acme", "email": "boss@acme.test",
                                                      "password": "correct horse battery staple"}).json()["token"]
    gateway.cookies.clear()
    new = {"email": "two@acme.test", "display_name": "Two", "password": "correct horse battery staple"}
    auth = {"Authorization": f"Bearer {token}"}
    assert gateway.post("/api/v1/agent/agents", json=new, headers=auth).status_code == 201
    refused = gateway.post("/api/v1/agent/agents", json={**new, "email": "three@acme.test"}, headers=auth)
    assert refused.status_code == 402 and refused.json()["error"] == "plan_limit"
    _plan(gateway, "pro")
    assert gateway.post("/api/v1/agent/agents", json={**new, "email": "three@acme.test"}, headers=auth).status_code == 201


def test_metering_runs_beside_the_bot_only_when_the_cached_plan_cannot_refuse(gateway: TestClient) -> None:
    usage = gateway.app.state.services.usage
    _plan(gateway, "pro")
    assert not usage.cannot_refuse("acme", "api")  # the change dropped the cached plan: not known without a read
    usage.plan_for("acme")
    assert usage.cannot_refuse("acme", "api") and not usage.cannot_refuse("acme", "fax")
    _plan(gateway, "tiny")
    usage.plan_for("acme")
    assert not usage.cannot_refuse("acme", "api")  # a hard stop on messages
    _plan(gateway, "tiny-overage")
    usage.plan_for("acme")
    assert usage.cannot_refuse("acme", "api")  # the extra is billed, never refused
