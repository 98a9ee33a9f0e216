"""The general-question action answers from the tenant's knowledge base with a citation."""

from __future__ import annotations

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import knowledge
from actions.knowledge import ActionAnswerQuestion

pytestmark = pytest.mark.slow


def tracker_for(tenant: str | None, text: str) -> Tracker:
    metadata = {"tenant_id": tenant} if tenant else {}
    events = [{"event": "user", "text": text, "metadata": metadata, "parse_data": {}}]
    return Tracker("conv-1", {}, {"text": text, "intent": {"name": "ask_question"}}, events, False, None, None, "action_listen")


@pytest.fixture(autouse=True)
def help_desk(kb, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    kb.ingest_bytes("northwind", "gift-cards.md",
                    b"---\ntitle: Gift cards\nurl: https://help.example/gift-cards\n---\n# Gift cards\n\n"
                    b"Digital gift cards from 10 to 500 are delivered by email and are valid for two years.\n")
    monkeypatch.setattr(knowledge, "knowledge_base", lambda: kb)
    return kb


def test_answer_carries_the_passage_the_citation_and_feedback_buttons() -> None:
    dispatcher = CollectingDispatcher()
    events = ActionAnswerQuestion().run(dispatcher, tracker_for("northwind", "how long is a gift card valid?"), {})
    message = dispatcher.messages[0]
    assert "valid for two years" in message["text"]
    assert "Source: Gift cards – https://help.example/gift-cards" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/kb_helpful", "/kb_not_helpful"]
    citation = message["custom"]["kb"]["citations"][0]
    assert citation["url"] == "https://help.example/gift-cards" and citation["source"] == "gift-cards.md"
    assert events == [{"event": "slot", "timestamp": None, "name": "kb_answered", "value": True}]


def test_unknown_question_says_so_and_offers_a_person() -> None:
    dispatcher = CollectingDispatcher()
    events = ActionAnswerQuestion().run(dispatcher, tracker_for("northwind", "what is the capital of Peru?"), {})
    message = dispatcher.messages[0]
    assert "couldn't find an answer" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]
    assert message["custom"]["kb"]["answerable"] is False
    assert events[0]["value"] is False


def test_other_tenants_and_missing_tenants_get_no_answer_from_this_knowledge_base() -> None:
    for tenant in ("globex", None):
        dispatcher = CollectingDispatcher()
        ActionAnswerQuestion().run(dispatcher, tracker_for(tenant, "how long is a gift card valid?"), {})
        assert dispatcher.messages[0]["custom"]["kb"]["answerable"] is False


def test_a_broken_knowledge_base_degrades_to_the_honest_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken():  # type: ignore[no-untyped-def]
        raise RuntimeError("index unreadable")

    monkeypatch.setattr(knowledge, "knowledge_base", broken)
    dispatcher = CollectingDispatcher()
    events = ActionAnswerQuestion().run(dispatcher, tracker_for("northwind", "gift card validity"), {})
    assert "couldn't find" in dispatcher.messages[0]["text"] and events[0]["value"] is False
