"""Order-status actions against the real gateway database (orders seeded per tenant)."""

from __future__ import annotations

from datetime import date

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session, sessionmaker

from actions import context
from actions.order_status import ActionOrderStatus, ValidateOrderStatusForm, describe_order, normalise_order_number
from gateway.demo_seed import seed_demo
from gateway.stores.order_store import OrderStore
from gateway.stores.tenant_store import TenantStore


def tracker_for(tenant: str | None, order_number: str | None) -> Tracker:
    metadata = {"tenant_id": tenant} if tenant else {}
    events = [{"event": "user", "text": "where is my order", "metadata": metadata, "parse_data": {}}]
    return Tracker("conv-1", {"order_number": order_number}, {}, events, False, None, None, "action_listen")


@pytest.fixture(autouse=True)
def orders(sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> OrderStore:
    seed_demo(sessions, "northwind", "wk_demo", today=date(2026, 11, 22))
    TenantStore(sessions).ensure_tenant("globex", "Globex")
    store = OrderStore(sessions)
    monkeypatch.setattr(context, "order_store", lambda: store)
    monkeypatch.setattr("actions.order_status.order_store", lambda: store)
    return store


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("A1234", "A1234"), (" a1234 ", "A1234"), ("B5521999", None), ("B552199", "B552199"), ("1234", None), ("AB1234", None), (None, None), ("", None)],
)
def test_normalise_order_number(raw: object, expected: str | None) -> None:
    assert normalise_order_number(raw) == expected


def test_shipped_order_is_described_with_carrier_and_eta(orders: OrderStore) -> None:
    dispatcher = CollectingDispatcher()
    events = ActionOrderStatus().run(dispatcher, tracker_for("northwind", "a1234"), {})
    text = dispatcher.messages[0]["text"]
    assert "A1234" in text and "has shipped" in text and "UPS" in text and "Tuesday, 24 November" in text
    assert events == [{"event": "slot", "timestamp": None, "name": "order_number", "value": None}]


def test_orders_of_other_tenants_are_invisible() -> None:
    dispatcher = CollectingDispatcher()
    ActionOrderStatus().run(dispatcher, tracker_for("globex", "A1234"), {})
    assert dispatcher.messages[0]["response"] == "utter_order_not_found"


def test_missing_tenant_finds_nothing() -> None:
    dispatcher = CollectingDispatcher()
    ActionOrderStatus().run(dispatcher, tracker_for(None, "A1234"), {})
    assert dispatcher.messages[0]["response"] == "utter_order_not_found"


def test_form_validation_rejects_malformed_numbers() -> None:
    dispatcher = CollectingDispatcher()
    form = ValidateOrderStatusForm()
    assert form.validate_order_number("nonsense", dispatcher, tracker_for("northwind", None), {}) == {"order_number": None}
    assert dispatcher.messages[0]["response"] == "utter_invalid_order_number"
    assert form.validate_order_number("c7302", dispatcher, tracker_for("northwind", None), {}) == {"order_number": "C7302"}


def test_delivered_order_mentions_the_delivery_date(orders: OrderStore) -> None:
    record = orders.find("northwind", "C7302")
    assert record is not None
    assert describe_order(record) == "Order C7302 (Rain jacket (L)) was delivered on Thursday, 19 November."
