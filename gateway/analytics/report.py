"""Conversation analytics per tenant and period, computed from the conversation log.

Definitions (a conversation counts in the period it started, when the customer wrote at least once):

* containment: conversations that never had a handoff, over all conversations;
* escalation rate by trigger: handoffs with that trigger over all conversations; by intent: of the
  conversations where an intent occurred, the share that escalated right after a message with it;
* fallback rate: customer messages the bot did not understand (NLU fallback), over the messages it read;
* knowledge base: answer rate = answered over attempted questions; helpfulness = "it helped" votes over votes;
* CSAT: mean rating (1-5), share of 4-5, number of ratings;
* first response / handle time of human conversations: queued → first agent reply, assigned → resolved;
* false containment: contained conversations whose customer (known customer id) started another
  conversation within 24 hours.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import Conversation, Feedback, Handoff, Message, Sender, aware

FALSE_CONTAINMENT_WINDOW = timedelta(hours=24)


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median_s": None, "p90_s": None, "count": 0}
    ordered = sorted(values)
    return {"median_s": round(statistics.median(ordered), 1),
            "p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1), "count": len(ordered)}


@dataclass
class _Conversation:
    id: str
    created_at: datetime
    customer_id: str | None
    messages: list[Message]
    handoffs: list[Handoff]


class AnalyticsReport:
    """Builds the analytics of one tenant over ``[start, end)``."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def _load(self, tenant_id: str, start: datetime, end: datetime) -> tuple[list[_Conversation], list[Feedback],
                                                                             dict[str, list[datetime]]]:
        with self._sessions() as session:
            conversations = session.execute(select(Conversation).where(
                Conversation.tenant_id == tenant_id, Conversation.created_at >= start,
                Conversation.created_at < end)).scalars().all()
            ids = [c.id for c in conversations]
            messages: defaultdict[str, list[Message]] = defaultdict(list)
            handoffs: defaultdict[str, list[Handoff]] = defaultdict(list)
            feedback: list[Feedback] = []
            for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
                for m in session.execute(select(Message).where(Message.conversation_id.in_(chunk))
                                         .order_by(Message.seq)).scalars():
                    messages[m.conversation_id].append(m)
                for h in session.execute(select(Handoff).where(Handoff.conversation_id.in_(chunk))).scalars():
                    handoffs[h.conversation_id].append(h)
                feedback += session.execute(select(Feedback).where(Feedback.conversation_id.in_(chunk))).scalars().all()
            # Later conversations of the same customers (for false containment), up to a day after the period.
            starts: defaultdict[str, list[datetime]] = defaultdict(list)
            for c in session.execute(select(Conversation).where(
                    Conversation.tenant_id == tenant_id, Conversation.created_at >= start,
                    Conversation.created_at < end + FALSE_CONTAINMENT_WINDOW)).scalars():
                customer_id = (c.customer or {}).get("id")
                if customer_id:
                    starts[str(customer_id)].append(aware(c.created_at))  # type: ignore[arg-type]
        loaded = [_Conversation(c.id, aware(c.created_at), (c.customer or {}).get("id"),  # type: ignore[arg-type]
                                messages[c.id], handoffs[c.id]) for c in conversations]
        return [c for c in loaded if any(m.sender == Sender.CUSTOMER for m in c.messages)], feedback, starts

    def build(self, tenant_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Every figure of the period, plus a per-day series for charts."""
        conversations, feedback, starts = self._load(tenant_id, start, end)
        total = len(conversations)
        contained = [c for c in conversations if not c.handoffs]
        handoffs = [h for c in conversations for h in c.handoffs]

        by_trigger = Counter(h.trigger for h in handoffs)
        intent_seen: Counter[str] = Counter()
        intent_escalated: Counter[str] = Counter()
        read = fallbacks = 0
        kb_attempts = kb_answered = 0
        for c in conversations:
            intents = set()
            for m in c.messages:
                if m.sender == Sender.CUSTOMER and m.nlu:
                    read += 1
                    fallbacks += bool(m.nlu.get("fallback"))
                    name = (m.nlu.get("intent") or {}).get("name")
                    if name:
                        intents.add(name)
                kb = ((m.payload or {}).get("custom") or {}).get("kb") if m.sender == Sender.BOT else None
                if isinstance(kb, dict) and not (m.payload or {}).get("suppressed"):
                    kb_attempts += 1
                    kb_answered += bool(kb.get("answerable"))
            intent_seen.update(intents)
            for h in c.handoffs:
                before = [m for m in c.messages if m.sender == Sender.CUSTOMER and m.nlu
                          and aware(m.created_at) <= aware(h.created_at)]  # type: ignore[operator]
                if before:
                    intent_escalated[(before[-1].nlu.get("intent") or {}).get("name") or "unknown"] += 1

        votes = [f.score for f in feedback if f.kind == "helpful"]
        ratings = [f.score for f in feedback if f.kind == "csat"]
        first_response = [(aware(h.first_response_at) - aware(h.queued_at)).total_seconds()  # type: ignore[operator]
                          for h in handoffs if h.first_response_at and h.queued_at]
        handle = [(aware(h.resolved_at) - aware(h.assigned_at)).total_seconds()  # type: ignore[operator]
                  for h in handoffs if h.resolved_at and h.assigned_at]
        false_contained = [c for c in contained if c.customer_id and any(
            c.created_at < later <= c.created_at + FALSE_CONTAINMENT_WINDOW for later in starts[str(c.customer_id)])]

        days: dict[str, dict[str, int]] = {}
        day = start
        while day < end:
            days[day.date().isoformat()] = {"conversations": 0, "contained": 0, "escalated": 0}
            day += timedelta(days=1)
        for c in conversations:
            bucket = days.setdefault(c.created_at.date().isoformat(), {"conversations": 0, "contained": 0, "escalated": 0})
            bucket["conversations"] += 1
            bucket["contained" if not c.handoffs else "escalated"] += 1

        return {
            "tenant_id": tenant_id, "from": start.isoformat(), "to": end.isoformat(),
            "conversations": total,
            "containment": {"contained": len(contained), "rate": _ratio(len(contained), total)},
            "escalation": {
                "handoffs": len(handoffs), "rate": _ratio(len({h.conversation_id for h in handoffs}), total),
                "by_trigger": {t: {"handoffs": n, "rate": _ratio(n, total)} for t, n in by_trigger.most_common()},
                "by_intent": {i: {"escalated": n, "conversations": intent_seen.get(i, 0),
                                  "rate": _ratio(n, intent_seen.get(i, 0))} for i, n in intent_escalated.most_common()},
            },
            "fallback": {"messages": read, "fallbacks": fallbacks, "rate": _ratio(fallbacks, read)},
            "knowledge_base": {"attempts": kb_attempts, "answered": kb_answered,
                               "answer_rate": _ratio(kb_answered, kb_attempts), "votes": len(votes),
                               "helpful_rate": _ratio(sum(votes), len(votes))},
            "csat": {"ratings": len(ratings), "mean": round(statistics.mean(ratings), 2) if ratings else None,
                     "satisfied_rate": _ratio(sum(1 for r in ratings if r >= 4), len(ratings)),
                     "distribution": {str(s): ratings.count(s) for s in range(1, 6)}},
            "human": {"first_response": _seconds(first_response), "handle_time": _seconds(handle)},
            "false_containment": {"conversations": len(false_contained),
                                  "rate": _ratio(len(false_contained), len(contained))},
            "daily": days,
        }
