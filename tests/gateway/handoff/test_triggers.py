"""Every trigger opens a handoff with its reason: customer request, an action, sentiment, repeated fallback."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gateway.handoff.triggers import requested_by_bot, streak_request, was_fallback
from tests.gateway.conftest import ScriptedDialogueEngine
from tests.gateway.handoff.conftest import HANDOFF_TEXT, Customer


def open_handoff(client: TestClient, conversation_id: str) -> dict | None:
    services = client.app.state.services  # type: ignore[attr-defined]
    handoff = services.handoff.handoffs.open_for_conversation("acme", conversation_id)
    return handoff.to_public() if handoff else None


def test_customer_request_opens_a_queued_handoff(client: TestClient, handoff_engine: ScriptedDialogueEngine) -> None:
    customer = Customer(client)
    customer.say(HANDOFF_TEXT)
    handoff = open_handoff(client, customer.conversation_id)
    assert handoff is not None and handoff["state"] == "queued" and handoff["trigger"] == "customer_request"


def test_an_action_decides_with_its_own_reason_and_team(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    engine.replies["someone charged my card, I dispute it"] = [
        {"text": "A disputed payment needs our billing team."},
        {"custom": {"handoff": {"reason": "payment_dispute", "team": "billing", "intent": "payment_problem"}}},
    ]
    customer = Customer(client)
    customer.say("someone charged my card, I dispute it")
    handoff = open_handoff(client, customer.conversation_id)
    assert handoff is not None
    assert (handoff["trigger"], handoff["team"]) == ("payment_dispute", "billing")
    assert handoff["priority"] >= 2  # disputes go first


def test_kb_no_answer_accepted_is_recorded_as_such(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    engine.replies["yes please"] = [{"text": "Bringing someone in."},
                                   {"custom": {"handoff": {"reason": "kb_no_answer", "intent": "affirm"}}}]
    customer = Customer(client)
    customer.say("yes please")
    assert open_handoff(client, customer.conversation_id)["trigger"] == "kb_no_answer"  # type: ignore[index]


def test_sentiment_that_stays_negative_hands_over_without_asking(
    client: TestClient, engine: ScriptedDialogueEngine
) -> None:
    for text in ("this is bad", "still bad", "awful service"):
        engine.sentiments[text] = ("negative", 0.7)
    customer = Customer(client)
    first = customer.say("this is bad")
    assert open_handoff(client, customer.conversation_id) is None
    second = customer.say("still bad")  # two in a row: the bot offers a person (existing trigger)
    assert engine.triggered and open_handoff(client, customer.conversation_id) is None
    third = customer.say("awful service")
    handoff = open_handoff(client, customer.conversation_id)
    assert handoff is not None and handoff["trigger"] == "negative_sentiment"
    assert handoff["detail"] == {"consecutive": 3}
    # The bot's reply to the third message is kept in the log but not shown: the handoff message replaces it.
    assert [r["sender"] for r in third["replies"]] == ["system"]
    assert all(r["text"].startswith("echo") for r in first["replies"][:1] + second["replies"][:1])
    logged = client.app.state.services.conversations.history("acme", customer.conversation_id, include_suppressed=True)  # type: ignore[attr-defined]
    assert any((m.payload or {}).get("suppressed") for m in logged)


def test_repeated_fallback_hands_over(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    for text in ("blorp", "zzzt"):
        engine.intents[text] = "nlu_fallback"
        engine.replies[text] = [{"text": "I couldn't find an answer.",
                                 "custom": {"kb": {"answerable": False, "citations": []}}}]
    customer = Customer(client)
    customer.say("blorp")
    assert open_handoff(client, customer.conversation_id) is None
    customer.say("zzzt")
    handoff = open_handoff(client, customer.conversation_id)
    assert handoff is not None and handoff["trigger"] == "repeated_fallback"


def test_a_fallback_answered_by_the_knowledge_base_is_not_a_fallback() -> None:
    nlu = {"intent": {"name": "nlu_fallback"}}
    assert was_fallback(nlu, [{"text": "x", "custom": {"kb": {"answerable": False}}}])
    assert not was_fallback(nlu, [{"text": "x", "custom": {"kb": {"answerable": True}}}])
    assert not was_fallback({"intent": {"name": "greet"}}, [])


def test_streaks_stop_at_messages_the_bot_never_saw() -> None:
    negative = {"sentiment": {"label": "negative"}}
    assert streak_request(negative, [negative, negative], 2, 3) is not None
    # None = a message sent while people owned the conversation: the streak starts again after it.
    assert streak_request(negative, [negative, None, negative], 2, 3) is None


def test_requested_by_bot_reads_the_custom_payload() -> None:
    assert requested_by_bot([{"text": "hi"}]) is None
    request = requested_by_bot([{"custom": {"handoff": {"reason": "complaint", "team": "general", "intent": "x"}}}])
    assert request is not None and (request.trigger, request.team, request.detail) == ("complaint", "general", {"intent": "x"})
