"""Sentiment in dialogue: logged with each customer message; negative streaks offer a human."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gateway.sentiment_trigger import NegativeSentimentTrigger
from gateway.services import GatewayServices
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine


def neg(score: float = 0.7) -> dict:
    return {"intent": {"name": "x"}, "sentiment": {"label": "negative", "score": score, "scores": {"negative": score}}}


NEUTRAL = {"intent": {"name": "x"}, "sentiment": {"label": "neutral", "score": 0.9, "scores": {"negative": 0.05}}}


def test_rules() -> None:
    trigger = NegativeSentimentTrigger(very_negative=0.9, cooldown_messages=3)
    assert trigger.should_offer(neg(0.95), [], None, []) == "very_negative_message"
    assert trigger.should_offer(neg(0.7), [neg(0.6)], None, []) == "negative_twice_in_a_row"
    assert trigger.should_offer(neg(0.7), [NEUTRAL, neg(0.8)], None, []) is None
    assert trigger.should_offer(NEUTRAL, [neg(0.99)], None, []) is None
    # Not twice within the cool-down, not when the answer already offers a person.
    assert trigger.should_offer(neg(0.95), [], 2, []) is None
    assert trigger.should_offer(neg(0.95), [], 3, []) == "very_negative_message"
    handoff_button = [{"text": "?", "buttons": [{"title": "Yes", "payload": "/human_handoff"}]}]
    assert trigger.should_offer(neg(0.95), [], None, handoff_button) is None
    complaint = {**neg(0.99), "intent": {"name": "complaint"}}
    assert trigger.should_offer(complaint, [], None, []) is None


def say(client: TestClient, body: dict | None, text: str) -> dict:
    payload = {"text": text}
    headers = {"X-Widget-Key": WIDGET_KEY}
    if body:
        payload["conversation_id"] = body["conversation_id"]
        headers["X-Conversation-Token"] = body["conversation_token"]
    response = client.post("/api/v1/messages", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_sentiment_is_logged_and_two_negatives_offer_a_human(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    engine.sentiments = {"this is bad": ("negative", 0.7), "still bad": ("negative", 0.75)}
    body = say(client, None, "hello")
    body = say(client, body, "this is bad")
    assert engine.triggered == []
    body = say(client, body, "still bad")
    assert engine.triggered == [(body["conversation_id"], "EXTERNAL_negative_sentiment")]
    assert body["replies"][-1]["text"] == "want a person?"
    assert body["replies"][-1]["payload"]["custom"]["trigger"] == "negative_twice_in_a_row"

    services: GatewayServices = client.app.state.services
    log = services.conversations.history("acme", body["conversation_id"])
    customer = [m for m in log if m.sender.value == "customer"]
    assert [m.nlu["sentiment"]["label"] for m in customer] == ["neutral", "negative", "negative"]
    assert customer[-1].nlu["handoff_offer"] == "negative_twice_in_a_row"
    assert all(m.model_id == "scripted-model" for m in log)
    # Still negative right after the offer: no second offer during the cool-down.
    say(client, body, "still bad")
    assert len(engine.triggered) == 1


def test_one_very_negative_message_is_enough(client: TestClient, engine: ScriptedDialogueEngine) -> None:
    engine.sentiments = {"I am furious": ("negative", 0.97)}
    body = say(client, None, "I am furious")
    assert engine.triggered and body["replies"][-1]["payload"]["custom"]["trigger"] == "very_negative_message"
