"""Actions that hand the conversation to people.

They do not change any state themselves: they answer with a ``{"handoff": {...}}`` custom payload
and the gateway, which owns the handoff state machine, opens the handoff when it stores the reply.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

# What the bot said just before the customer asked for (or accepted) a person -> the trigger.
_TRIGGER_AFTER = {
    "utter_offer_human_sentiment": "negative_sentiment",
    "action_answer_question": "kb_no_answer",
    "utter_kb_sorry": "kb_no_answer",
    "utter_complaint": "complaint",
    "action_payment_problem": "payment_problem",
}
_DISPUTE = re.compile(
    r"\b(dispute\w*|charge ?back\w*|fraud\w*|unauthori[sz]ed|stolen card|did ?n[o']?t (make|authori[sz]e)\w*)\b",
    re.IGNORECASE,
)


def previous_bot_action(tracker: Tracker) -> str | None:
    """The last bot action before the latest customer message (``action_listen`` skipped)."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                return None
            seen_user = True
        elif seen_user and event.get("event") == "action" and event.get("name") != "action_listen":
            return event.get("name")
    return None


def handoff_payload(reason: str, tracker: Tracker, team: str | None = None) -> dict[str, Any]:
    """The custom payload that asks the gateway for a person."""
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    request: dict[str, Any] = {"reason": reason, "intent": intent}
    if team:
        request["team"] = team
    return {"handoff": request}


class ActionRequestHuman(Action):
    """The customer asked for a person or accepted an offer: say so and ask the gateway to queue them."""

    def name(self) -> str:
        return "action_request_human"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        previous = previous_bot_action(tracker)
        reason = _TRIGGER_AFTER.get(previous or "", "customer_request")
        if reason == "kb_no_answer" and previous == "action_answer_question" and tracker.get_slot("kb_answered"):
            reason = "customer_request"  # the answer was found; the customer simply wants a person
        team = "billing" if reason == "payment_problem" else None
        # Only the request: the gateway's own message tells the customer what happens next (queue
        # position, offline hours, or the agent who joined), so they read one message, not two.
        dispatcher.utter_message(json_message=handoff_payload(reason, tracker, team))
        return []


class ActionPaymentProblem(Action):
    """Payment trouble: self-help for declines and double charges; disputes go straight to billing people."""

    def name(self) -> str:
        return "action_payment_problem"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        text = (tracker.latest_message or {}).get("text") or ""
        if _DISPUTE.search(text):
            dispatcher.utter_message(
                text="A disputed or unauthorised payment needs someone from our billing team, so I'm bringing one in "
                     "now. Please don't type full card numbers in this chat.",
                json_message=handoff_payload("payment_dispute", tracker, "billing"),
            )
            return []
        dispatcher.utter_message(response="utter_payment_problem")
        return []
