"""Rasa splits an answer with citations into a text and a custom message; the gateway re-joins them."""

from __future__ import annotations

from gateway.reply_merging import merge_custom_payloads, only_handoff_request


def test_custom_only_reply_joins_the_answer_before_it() -> None:
    messages = [
        {"recipient_id": "c", "text": "Refunds take 5 days.", "buttons": [{"title": "Yes", "payload": "/kb_helpful"}]},
        {"recipient_id": "c", "custom": {"kb": {"citations": [{"title": "Refund timing"}]}}},
        {"recipient_id": "c", "text": "Anything else?"},
    ]
    merged = merge_custom_payloads(messages)
    assert len(merged) == 2
    assert merged[0]["custom"]["kb"]["citations"][0]["title"] == "Refund timing"
    assert merged[0]["buttons"][0]["payload"] == "/kb_helpful"
    assert messages[0].get("custom") is None  # inputs are not mutated


def test_a_leading_custom_message_stays_alone() -> None:
    assert merge_custom_payloads([{"custom": {"a": 1}}, {"text": "hi"}]) == [{"custom": {"a": 1}}, {"text": "hi"}]


def test_only_a_bare_handoff_request_counts_as_one() -> None:
    assert only_handoff_request({"recipient_id": "c", "custom": {"handoff": {"reason": "asked"}}})
    assert not only_handoff_request({"text": "A person will join.", "custom": {"handoff": {}}})
    assert not only_handoff_request({"custom": {"handoff": {}, "citations": []}})
    assert not only_handoff_request({"text": "hi"})
