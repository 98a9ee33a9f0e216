"""The review inbox: customer messages worth labelling, ranked by expected value, decided in one click.

A logged customer message is a candidate when the bot was unsure (confidence below the threshold),
fell back, got a "that didn't help" on its answer, or the conversation went to a person right after
it (with the agent's resolution label as the suggested intent). Identical texts are grouped: the
expected value of labelling one is ``uncertainty × (1 + log(frequency)) + bonuses`` for the stronger
signals (escalation, negative feedback, an agent's label). Decisions are stored as training examples
(redacted text); accepted ones form versioned training data, exported as Rasa NLU YAML.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import Feedback, Handoff, Message, Sender, TrainingDataVersion, TrainingExample
from gateway.assistants.rasa_files import normalise, rasa_yaml
from gateway.errors import CodedError
from gateway.privacy.redaction import Redactor

#: Below this calibrated confidence a message is worth a reviewer's look. The probe-first classifier is
#: calibrated on out-of-fold predictions, so a message about something the bot has no intent for
#: often still scores 0.6-0.75 ("is the blue sofa back in stock" → order_status 0.75).
LOW_CONFIDENCE = 0.8
BONUS = {"escalated": 0.6, "negative_feedback": 0.5, "agent_label": 0.4, "fallback": 0.3, "low_confidence": 0.0}
_INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
#: Intents the gateway or Rasa own; reviewers never label examples with them.
RESERVED_INTENTS = {"nlu_fallback", "EXTERNAL_negative_sentiment", "EXTERNAL_handoff_resolved"}
#: Resolution labels that are outcomes, not intents.
NON_INTENT_LABELS = {"other", "returned_to_bot"}


class ReviewError(CodedError, ValueError):
    """A decision that cannot be stored."""


@dataclass
class InboxItem:
    """A group of identical customer messages waiting for a decision."""

    message_id: int  # the most recent occurrence, which the decision is recorded against
    conversation_id: str
    text: str
    predicted_intent: str | None
    confidence: float | None
    suggested_intent: str | None
    reasons: set[str] = field(default_factory=set)
    frequency: int = 1
    message_ids: list[int] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Expected value of labelling this group."""
        uncertainty = 1.0 - (self.confidence if self.confidence is not None else 0.0)
        return round(uncertainty * (1 + math.log(self.frequency)) + sum(BONUS[r] for r in self.reasons), 4)

    def to_public(self) -> dict[str, Any]:
        """JSON shape (the text redacted: the inbox is a place data leaves the log to)."""
        return {"message_id": self.message_id, "conversation_id": self.conversation_id,
                "text": Redactor()(self.text), "predicted_intent": self.predicted_intent,
                "confidence": self.confidence, "suggested_intent": self.suggested_intent or self.predicted_intent,
                "reasons": sorted(self.reasons), "frequency": self.frequency, "score": self.score}


class ReviewInbox:
    """Builds the inbox from the log and stores reviewers' decisions."""

    def __init__(self, sessions: sessionmaker[Session], known_intents: set[str] | None = None) -> None:
        self._sessions = sessions
        self.known_intents = known_intents or set()

    # ----------------------------------------------------------------- inbox
    def items(self, tenant_id: str, limit: int = 50) -> list[InboxItem]:
        """Undecided candidates, best first."""
        with self._sessions() as session:
            decided = set(session.execute(select(TrainingExample.message_id).where(
                TrainingExample.tenant_id == tenant_id)).scalars())
            customer = session.execute(select(Message).where(
                Message.tenant_id == tenant_id, Message.sender == Sender.CUSTOMER, Message.nlu.is_not(None))
                .order_by(Message.id)).scalars().all()
            bot_replies = session.execute(select(Message.id, Message.in_reply_to).where(
                Message.tenant_id == tenant_id, Message.sender == Sender.BOT, Message.in_reply_to.is_not(None))).all()
            negative = {int(t) for t in session.execute(select(Feedback.target).where(
                Feedback.tenant_id == tenant_id, Feedback.kind == "helpful", Feedback.score == 0)).scalars()
                if t.isdigit()}
            handoffs = session.execute(select(Handoff).where(Handoff.tenant_id == tenant_id)).scalars().all()
        answer_to = {reply: question for reply, question in bot_replies}
        # The customer message a "that didn't help" is about: the question the rated answer replied to.
        disliked_questions = {answer_to[r] for r in negative if r in answer_to}
        by_conversation: defaultdict[str, list[Message]] = defaultdict(list)
        for m in customer:
            by_conversation[m.conversation_id].append(m)
        escalated: dict[int, str | None] = {}
        for h in handoffs:
            before = [m for m in by_conversation.get(h.conversation_id, [])
                      if m.created_at <= h.created_at and not (m.text or "").startswith("/")]
            if before:
                label = h.resolution_label if h.resolution_label not in NON_INTENT_LABELS else None
                escalated[before[-1].id] = label
        groups: dict[str, InboxItem] = {}
        for m in customer:
            text = (m.text or "").strip()
            if m.id in decided or not text or text.startswith("/"):
                continue
            nlu = m.nlu or {}
            intent = nlu.get("intent") or {}
            confidence = intent.get("confidence")
            reasons = set()
            if confidence is not None and confidence < LOW_CONFIDENCE:
                reasons.add("low_confidence")
            if nlu.get("fallback") or intent.get("name") == "nlu_fallback":
                reasons.add("fallback")
            if m.id in disliked_questions:
                reasons.add("negative_feedback")
            if m.id in escalated:
                reasons.add("escalated")
                if escalated[m.id]:
                    reasons.add("agent_label")
            if not reasons:
                continue
            key = normalise(text)
            item = groups.get(key)
            if item is None:
                item = groups[key] = InboxItem(m.id, m.conversation_id, text, intent.get("name"), confidence,
                                               escalated.get(m.id))
            else:
                item.frequency += 1
                item.message_id, item.conversation_id = m.id, m.conversation_id
                item.suggested_intent = escalated.get(m.id) or item.suggested_intent
                if confidence is not None and (item.confidence is None or confidence < item.confidence):
                    item.confidence = confidence
            item.reasons |= reasons
            item.message_ids.append(m.id)
        return sorted(groups.values(), key=lambda i: (-i.score, -i.message_id))[:limit]

    # ------------------------------------------------------------- decisions
    def decide(self, tenant_id: str, message_id: int, action: str, reviewer: str,
               intent: str | None = None) -> dict[str, Any]:
        """Accept (the suggestion), correct (with ``intent``) or discard a candidate; one decision per message.

        Raises:
            ReviewError: Unknown message, bad action or intent, or already decided.
        """
        if action not in ("accept", "correct", "discard"):
            raise ReviewError("bad_action", "action is accept, correct or discard")
        item = next((i for i in self.items(tenant_id, limit=10_000) if message_id in i.message_ids), None)
        with self._sessions() as session:
            message = session.get(Message, message_id)
        if message is None or message.tenant_id != tenant_id or message.sender != Sender.CUSTOMER:
            raise ReviewError("unknown_message", "no such customer message")
        predicted = ((message.nlu or {}).get("intent") or {}).get("name")
        if action == "accept":
            intent = (item.suggested_intent if item else None) or predicted
        if action != "discard":
            if not intent or not _INTENT_NAME.match(intent) or intent in RESERVED_INTENTS:
                raise ReviewError("bad_intent", "intents are lower_snake_case names, not a reserved one")
        status = {"accept": "accepted", "correct": "corrected", "discard": "discarded"}[action]
        ids = item.message_ids if item else [message_id]  # the decision covers the identical texts
        try:
            with self._sessions.begin() as session:
                for mid in ids:
                    session.add(TrainingExample(
                        tenant_id=tenant_id, message_id=mid, conversation_id=message.conversation_id,
                        text=Redactor()(message.text or ""), intent=None if action == "discard" else intent,
                        status=status, predicted_intent=predicted,
                        reasons=sorted(item.reasons) if item else None, reviewer=reviewer[:100]))
        except IntegrityError as exc:
            raise ReviewError("already_decided", "this message was already decided") from exc
        return {"message_id": message_id, "status": status, "intent": intent, "covers": len(ids),
                "new_intent": bool(intent and self.known_intents and intent not in self.known_intents)}

    # ------------------------------------------------------------ training data
    def accepted(self, tenant_id: str) -> list[TrainingExample]:
        """Accepted and corrected examples, one per distinct text and intent, oldest first."""
        with self._sessions() as session:
            rows = session.execute(select(TrainingExample).where(
                TrainingExample.tenant_id == tenant_id, TrainingExample.status.in_(("accepted", "corrected")))
                .order_by(TrainingExample.id)).scalars().all()
        seen: set[tuple[str, str]] = set()
        unique = []
        for row in rows:
            key = (normalise(row.text), row.intent or "")
            if key not in seen:
                seen.add(key)
                unique.append(row)
        return unique

    def freeze(self, tenant_id: str, created_by: str) -> dict[str, Any]:
        """Record the current accepted examples as a training-data version (reused when nothing changed)."""
        examples = self.accepted(tenant_id)
        content = json.dumps([[e.text, e.intent] for e in examples], ensure_ascii=False)
        digest = hashlib.sha256(content.encode()).hexdigest()
        with self._sessions.begin() as session:
            latest = session.execute(select(TrainingDataVersion).where(TrainingDataVersion.tenant_id == tenant_id)
                                     .order_by(TrainingDataVersion.id.desc()).limit(1)).scalar_one_or_none()
            if latest is None or latest.content_hash != digest:
                latest = TrainingDataVersion(tenant_id=tenant_id, content_hash=digest, examples=len(examples),
                                             intents=sorted({e.intent or "" for e in examples}),
                                             example_ids=[e.id for e in examples], created_by=created_by[:100])
                session.add(latest)
                session.flush()
            return {"version": latest.id, "hash": latest.content_hash, "examples": latest.examples,
                    "intents": latest.intents}

    def version_examples(self, tenant_id: str, version_id: int) -> list[tuple[str, str]]:
        """The (text, intent) pairs a frozen training-data version holds (erased examples are gone)."""
        with self._sessions() as session:
            version = session.get(TrainingDataVersion, version_id)
            if version is None or version.tenant_id != tenant_id:
                raise ReviewError("unknown_version", f"no training-data version {version_id}")
            rows = session.execute(select(TrainingExample).where(
                TrainingExample.tenant_id == tenant_id, TrainingExample.id.in_(version.example_ids or []))
                .order_by(TrainingExample.id)).scalars().all()
        return [(row.text, row.intent) for row in rows if row.intent]

    def nlu_yaml(self, tenant_id: str) -> str:
        """The accepted examples as Rasa NLU training data (YAML, format 3.1)."""
        by_intent: defaultdict[str, list[str]] = defaultdict(list)
        for example in self.accepted(tenant_id):
            by_intent[example.intent or ""].append(example.text)
        nlu = [{"intent": intent, "examples": "".join(f"- {text}\n" for text in texts)}
               for intent, texts in sorted(by_intent.items())]
        return rasa_yaml({"version": "3.1", "nlu": nlu})
