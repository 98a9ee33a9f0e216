"""Help-centre questions through the whole stack: gateway → Rasa → action server → FAISS → gateway."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.stack import Stack


@pytest.fixture(scope="module")
def api(running_stack: Stack) -> httpx.Client:
    settings = running_stack.settings
    with httpx.Client(base_url=settings.gateway_url, timeout=90, headers={"X-Widget-Key": settings.demo_widget_key}) as client:
        yield client


def say(api: httpx.Client, text: str, conversation: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    headers = {}
    if conversation:
        body["conversation_id"] = conversation["conversation_id"]
        headers["X-Conversation-Token"] = conversation["conversation_token"]
    response = api.post("/api/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def history(api: httpx.Client, conversation: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/conversations/{conversation['conversation_id']}/messages",
                       headers={"X-Conversation-Token": conversation["conversation_token"]})
    assert response.status_code == 200
    return response.json()["messages"]


def stored_log(stack: Stack, conversation_id: str) -> list[Any]:
    """The gateway's conversation log, read from its database (with NLU results)."""
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.stores.conversation_store import ConversationStore

    engine = create_db_engine(stack.settings.database_url)
    try:
        return ConversationStore(create_session_factory(engine)).history(stack.settings.demo_tenant, conversation_id)
    finally:
        engine.dispose()


def test_help_centre_question_is_answered_with_its_citation_and_logged(running_stack: Stack, api: httpx.Client) -> None:
    turn = say(api, "do you sell gift cards?")
    answer = next(r for r in turn["replies"] if r["text"] and "gift card" in r["text"].lower())
    assert "https://help.northwind.example/gift-cards" in answer["text"]
    assert [b["payload"] for b in answer["payload"]["buttons"]] == ["/kb_helpful", "/kb_not_helpful"]
    stored = [m for m in history(api, turn) if m["sender"] == "bot"]
    citations = stored[0]["payload"]["custom"]["kb"]["citations"]
    assert citations[0]["url"] == "https://help.northwind.example/gift-cards"
    assert citations[0]["source"] == "gift-cards.md"

    # "Was this helpful?" → the answer is logged as the customer's message with its intent.
    feedback = say(api, "/kb_helpful", turn)
    assert any("Glad that helped" in (r["text"] or "") for r in feedback["replies"])
    logged = [m for m in stored_log(running_stack, turn["conversation_id"]) if m.sender.value == "customer"]
    assert logged[-1].text == "/kb_helpful" and logged[-1].nlu["intent"]["name"] == "kb_helpful"


def open_handoff(stack: Stack, conversation_id: str) -> tuple[str, str] | None:
    """(state, trigger) of the conversation's open handoff."""
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.handoff.handoff_store import HandoffStore

    engine = create_db_engine(stack.settings.database_url)
    try:
        handoff = HandoffStore(create_session_factory(engine)).open_for_conversation(stack.settings.demo_tenant,
                                                                                    conversation_id)
    finally:
        engine.dispose()
    return (handoff.state.value, handoff.trigger) if handoff else None


def test_unanswerable_question_offers_a_person(running_stack: Stack, api: httpx.Client) -> None:
    turn = say(api, "do you have a student discount?")
    reply = turn["replies"][0]
    assert "couldn't find an answer" in reply["text"]
    assert [b["payload"] for b in reply["payload"]["buttons"]] == ["/affirm", "/deny"]
    accepted = say(api, "yes please", turn)
    # One message: the gateway queued the conversation for a person, with the reason the action named.
    texts = [r["text"] or "" for r in accepted["replies"]]
    assert len(texts) == 1 and "connecting you with a person" in texts[0] and "in the queue" in texts[0], texts
    assert open_handoff(running_stack, turn["conversation_id"]) == ("queued", "kb_no_answer")


def test_unhelpful_answer_leads_to_the_offer_of_a_person(api: httpx.Client) -> None:
    turn = say(api, "what does your warranty cover?")
    assert "warranty" in (turn["replies"][0]["text"] or "").lower()
    follow = say(api, "/kb_not_helpful", turn)
    assert any("connect you with a person" in (r["text"] or "") for r in follow["replies"])
