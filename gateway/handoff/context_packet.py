"""What an agent needs to take over a conversation without asking the customer to repeat themselves."""

from __future__ import annotations

from typing import Any

from gateway.db.models import Sender
from gateway.stores.conversation_store import StoredMessage
from gateway.handoff.handoff_store import HandoffRecord, TransitionRecord


def build_context(info: dict[str, Any], handoff: HandoffRecord | None, transcript: list[StoredMessage],
                  transitions: list[TransitionRecord], notes: list[dict[str, Any]]) -> dict[str, Any]:
    """The context packet: customer, channel, intent and sentiment trail, KB answers seen, why escalated."""
    trail = []
    kb_answers = []
    for message in transcript:
        if message.sender == Sender.CUSTOMER and message.nlu:
            intent = message.nlu.get("intent") or {}
            sentiment = message.nlu.get("sentiment") or {}
            trail.append({"seq": message.seq, "text": message.text, "intent": intent.get("name"),
                          "confidence": intent.get("confidence"), "sentiment": sentiment.get("label"),
                          "sentiment_score": sentiment.get("score")})
        kb = ((message.payload or {}).get("custom") or {}).get("kb") or {}
        if message.sender == Sender.BOT and kb.get("answerable"):
            for citation in kb.get("citations") or []:
                kb_answers.append({"seq": message.seq, "title": citation.get("title"), "url": citation.get("url"),
                                   "score": citation.get("score")})
    escalation = None
    if handoff is not None:
        escalation = {"trigger": handoff.trigger, "detail": handoff.detail, "team": handoff.team,
                      "priority": handoff.priority, "queued_at": handoff.queued_at.isoformat()}
    return {
        "conversation": info,
        "handoff": handoff.to_public() if handoff else None,
        "escalation": escalation,
        "intent_trail": trail,
        "kb_answers": kb_answers,
        "transcript": [m.to_public() for m in transcript],
        "transitions": [t.to_public() for t in transitions],
        "notes": notes,
    }
