"""Actions that ask the gateway for a person: the reason follows what the bot said before."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import ActionPaymentProblem, ActionRequestHuman, previous_bot_action


def tracker(text: str, intent: str, before: list[str], slots: dict[str, Any] | None = None) -> Tracker:
    events: list[dict[str, Any]] = [{"event": "user", "text": "earlier", "parse_data": {}}]
    events += [{"event": "action", "name": name} for name in before] + [{"event": "action", "name": "action_listen"}]
    events.append({"event": "user", "text": text, "parse_data": {}})
    return Tracker("conv-1", slots or {}, {"text": text, "intent": {"name": intent}}, events, False, None, None,
                   "action_listen")


@pytest.mark.parametrize(
    ("before", "slots", "reason", "team"),
    [
        ([], {}, "customer_request", None),
        (["utter_offer_human_sentiment"], {}, "negative_sentiment", None),
        (["action_answer_question"], {"kb_answered": False}, "kb_no_answer", None),
        (["action_answer_question"], {"kb_answered": True}, "customer_request", None),
        (["utter_kb_sorry"], {}, "kb_no_answer", None),
        (["utter_complaint"], {}, "complaint", None),
        (["action_payment_problem"], {}, "payment_problem", "billing"),
    ],
)
def test_request_human_names_the_trigger(before: list[str], slots: dict[str, Any], reason: str, team: str | None) -> None:
    dispatcher = CollectingDispatcher()
    ActionRequestHuman().run(dispatcher, tracker("yes", "affirm", before, slots), {})
    message = dispatcher.messages[0]
    assert not message.get("response") and not message.get("text")  # the gateway's handoff message is the one
    assert message["custom"]["handoff"]["reason"] == reason
    assert message["custom"]["handoff"].get("team") == team


def test_previous_bot_action_skips_listen_and_stops_at_the_earlier_turn() -> None:
    assert previous_bot_action(tracker("x", "affirm", ["utter_complaint"])) == "utter_complaint"
    assert previous_bot_action(tracker("x", "affirm", [])) is None


@pytest.mark.parametrize("text", ["I want to dispute a charge", "there's an unauthorized payment on my card",
                                  "I'll file a chargeback", "I didn't authorise this payment"])
def test_payment_disputes_go_straight_to_billing(text: str) -> None:
    dispatcher = CollectingDispatcher()
    ActionPaymentProblem().run(dispatcher, tracker(text, "payment_problem", []), {})
    handoff = dispatcher.messages[0]["custom"]["handoff"]
    assert (handoff["reason"], handoff["team"]) == ("payment_dispute", "billing")


def test_other_payment_problems_get_self_help_first() -> None:
    dispatcher = CollectingDispatcher()
    ActionPaymentProblem().run(dispatcher, tracker("my card was declined", "payment_problem", []), {})
    assert dispatcher.messages[0]["response"] == "utter_payment_problem"
    assert "custom" not in dispatcher.messages[0] or not dispatcher.messages[0].get("custom")
