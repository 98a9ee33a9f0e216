"""The order-status form: validate the order number, then look the order up for the tenant."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import order_store, tenant_of
from gateway.stores.order_store import OrderRecord

ORDER_NUMBER = re.compile(r"^[A-Z][0-9]{4,6}$")

STATUS_TEXT = {
    "processing": "is being prepared in our warehouse",
    "shipped": "has shipped",
    "delivered": "was delivered",
    "cancelled": "was cancelled",
}


def normalise_order_number(value: Any) -> str | None:
    """Upper-case, trimmed order number, or None when it has the wrong shape."""
    if not isinstance(value, str):
        return None
    candidate = value.strip().upper()
    return candidate if ORDER_NUMBER.match(candidate) else None


def describe_order(order: OrderRecord) -> str:
    """One customer-facing sentence (or two) about an order."""
    text = f"Order {order.number} ({order.items}) {STATUS_TEXT.get(order.status, 'is ' + order.status)}."
    if order.status == "shipped" and order.carrier:
        text += f" It is travelling with {order.carrier}, tracking code {order.tracking_code}."
    if order.estimated_delivery and order.status in ("processing", "shipped"):
        text += f" Estimated delivery: {order.estimated_delivery:%A, %d %B}."
    if order.status == "delivered" and order.estimated_delivery:
        text = f"Order {order.number} ({order.items}) was delivered on {order.estimated_delivery:%A, %d %B}."
    return text


class ValidateOrderStatusForm(FormValidationAction):
    """Accepts only well-formed order numbers."""

    def name(self) -> str:
        return "validate_order_status_form"

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        number = normalise_order_number(slot_value)
        if number is None:
            dispatcher.utter_message(response="utter_invalid_order_number")
        return {"order_number": number}


class ActionOrderStatus(Action):
    """Answers with the order's status from the tenant's orders, then clears the slot."""

    def name(self) -> str:
        return "action_order_status"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        number = normalise_order_number(tracker.get_slot("order_number"))
        tenant = tenant_of(tracker)
        order = order_store().find(tenant, number) if tenant and number else None
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_number=number or "")
        else:
            dispatcher.utter_message(text=describe_order(order))
        return [SlotSet("order_number", None)]
