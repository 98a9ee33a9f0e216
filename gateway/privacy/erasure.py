"""Erasure of one end user's data, and retention per tenant.

Erasing a conversation (or every conversation of a customer id) removes, in one gateway transaction,
its messages, feedback and CSAT, reviewed training examples, handoffs with their transitions and internal notes, Slack delivery
bookkeeping, the events the broker consumer logged (``conversation_events``) and the conversation itself; then Rasa's tracker events for the conversation (the
tracker store's ``events`` table, keyed by the conversation id as Rasa's sender id). The erasure is
recorded with a hash of the subject, never the data. Usage-ledger rows stay (billing needs them):
they hold random ids and counts only.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, MetaData, Table, create_engine, delete, event, func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import (
    Conversation,
    ConversationEvent,
    Erasure,
    Feedback,
    Handoff,
    HandoffNote,
    HandoffTransition,
    Message,
    PrivacyPolicyRow,
    SlackEscalation,
    SlackPost,
    TrainingExample,
    WebhookDelivery,
    utcnow,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasureReport:
    """What one erasure removed."""

    conversations: int
    messages: int
    tracker_events: int

    def to_public(self) -> dict[str, int]:
        """JSON shape."""
        return {"conversations": self.conversations, "messages": self.messages, "tracker_events": self.tracker_events}


class RasaTrackerEraser:
    """Deletes a conversation's events from Rasa's SQL tracker store (SQLite file or PostgreSQL URL)."""

    def __init__(self, url: str | None) -> None:
        self._engine: Engine | None = create_engine(url) if url else None
        if self._engine is not None and self._engine.dialect.name == "sqlite":
            @event.listens_for(self._engine, "connect")
            def _secure_delete(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
                dbapi_connection.execute("PRAGMA secure_delete=ON")  # erased events are overwritten on disk

    def erase(self, sender_ids: list[str]) -> int:
        """Delete the events of these conversations; returns how many rows went."""
        if self._engine is None or not sender_ids or not inspect(self._engine).has_table("events"):
            return 0
        events = Table("events", MetaData(), autoload_with=self._engine)
        with self._engine.begin() as connection:
            return connection.execute(delete(events).where(events.c.sender_id.in_(sender_ids))).rowcount or 0

    def count(self, sender_ids: list[str]) -> int:
        """How many events these conversations still have (tests, audits)."""
        if self._engine is None or not inspect(self._engine).has_table("events"):
            return 0
        events = Table("events", MetaData(), autoload_with=self._engine)
        with self._engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(events)
                                      .where(events.c.sender_id.in_(sender_ids))).scalar_one()

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database and empty it (the old pages held the text)."""
        if self._engine is not None and self._engine.dialect.name == "sqlite":
            with self._engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Release the tracker store's connections."""
        if self._engine is not None:
            self._engine.dispose()


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class ErasureService:
    """Erases conversations and applies retention.

    Args:
        sessions: The gateway database.
        tracker: Rasa's tracker store.
    """

    def __init__(self, sessions: sessionmaker[Session], tracker: RasaTrackerEraser) -> None:
        self._sessions = sessions
        self._tracker = tracker

    def close(self) -> None:
        """Release the tracker store's connections."""
        self._tracker.close()

    def conversations_of(self, tenant_id: str, customer_id: str) -> list[str]:
        """The conversations whose customer metadata carries this id."""
        with self._sessions() as session:
            rows = session.execute(select(Conversation.id, Conversation.customer)
                                   .where(Conversation.tenant_id == tenant_id)).all()
        return [cid for cid, customer in rows if str((customer or {}).get("id", "")) == customer_id]

    def erase_conversation(self, tenant_id: str, conversation_id: str, actor: str) -> ErasureReport:
        """Erase one conversation of the tenant (nothing happens for another tenant's id)."""
        return self._erase(tenant_id, [conversation_id], "conversation", conversation_id, actor)

    def _checkpoint(self) -> None:
        """Empty the gateway database's write-ahead log after an erasure (SQLite; PostgreSQL: see README)."""
        engine = self._sessions.kw.get("bind")
        if engine is not None and engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def erase_customer(self, tenant_id: str, customer_id: str, actor: str) -> ErasureReport:
        """Erase every conversation of one customer id."""
        return self._erase(tenant_id, self.conversations_of(tenant_id, customer_id), "customer", customer_id, actor)

    def _erase(self, tenant_id: str, conversation_ids: list[str], subject: str, subject_id: str,
               actor: str) -> ErasureReport:
        with self._sessions.begin() as session:
            # Locked first, in id order (PostgreSQL; SQLite writers are serial anyway): the log consumer's
            # batch for one of them waits for this erasure and then finds it gone, instead of landing after
            # its events went; it locks in the same order, so the two cannot deadlock.
            owned = list(session.execute(select(Conversation.id).where(
                Conversation.tenant_id == tenant_id, Conversation.id.in_(conversation_ids))
                .order_by(Conversation.id).with_for_update()).scalars()) if conversation_ids else []
            messages = 0
            if owned:
                message_ids = list(session.execute(select(Message.id).where(Message.conversation_id.in_(owned))).scalars())
                handoff_ids = list(session.execute(select(Handoff.id).where(Handoff.conversation_id.in_(owned))).scalars())
                if message_ids:
                    session.execute(delete(SlackPost).where(SlackPost.message_id.in_(message_ids)))
                session.execute(delete(Feedback).where(Feedback.conversation_id.in_(owned)))
                session.execute(delete(TrainingExample).where(TrainingExample.conversation_id.in_(owned)))
                session.execute(delete(HandoffNote).where(HandoffNote.conversation_id.in_(owned)))
                if handoff_ids:
                    session.execute(delete(HandoffTransition).where(HandoffTransition.handoff_id.in_(handoff_ids)))
                session.execute(delete(SlackEscalation).where(SlackEscalation.conversation_id.in_(owned)))
                session.execute(delete(Handoff).where(Handoff.conversation_id.in_(owned)))
                session.execute(delete(ConversationEvent).where(ConversationEvent.conversation_id.in_(owned)))
                # Webhook events about these conversations (a resolution note with the customer's e-mail …):
                # gone from the outbox, so they are never sent, whatever their status.
                for conversation_id in owned:
                    session.execute(delete(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id,
                                                                  WebhookDelivery.body.contains(conversation_id)))
                messages = session.execute(delete(Message).where(Message.conversation_id.in_(owned))).rowcount or 0
                session.execute(delete(Conversation).where(Conversation.id.in_(owned)))
            events = self._tracker.erase(owned)
            session.add(Erasure(tenant_id=tenant_id, subject=subject, subject_hash=_hash(subject_id),
                                conversations=len(owned), messages=messages, tracker_events=events, actor=actor[:100]))
        if owned:
            self._checkpoint()
            self._tracker.checkpoint()
        logger.info("erased %d conversations (%d messages, %d tracker events) of tenant %s for %s", len(owned),
                    messages, events, tenant_id, actor)
        return ErasureReport(len(owned), messages, events)

    # ------------------------------------------------------------- retention
    def set_retention(self, tenant_id: str, days: int | None) -> None:
        """Keep conversations ``days`` after their last activity (None: keep them)."""
        if days is not None and days < 1:
            raise ValueError("retention is at least one day")
        with self._sessions.begin() as session:
            row = session.get(PrivacyPolicyRow, tenant_id)
            if row is None:
                session.add(PrivacyPolicyRow(tenant_id=tenant_id, retention_days=days))
            else:
                row.retention_days, row.updated_at = days, utcnow()

    def retention(self, tenant_id: str) -> int | None:
        """The tenant's retention in days (None: unlimited)."""
        with self._sessions() as session:
            row = session.get(PrivacyPolicyRow, tenant_id)
            return row.retention_days if row else None

    def apply_retention(self) -> dict[str, int]:
        """Erase conversations older than their tenant's retention; returns conversations erased per tenant."""
        now = utcnow()
        done: dict[str, int] = {}
        with self._sessions() as session:
            policies = session.execute(select(PrivacyPolicyRow).where(PrivacyPolicyRow.retention_days.is_not(None))).scalars().all()
        for policy in policies:
            cutoff = now - timedelta(days=policy.retention_days or 0)
            with self._sessions() as session:
                old = list(session.execute(select(Conversation.id).where(
                    Conversation.tenant_id == policy.tenant_id, Conversation.updated_at < cutoff)).scalars())
            if old:
                report = self._erase(policy.tenant_id, old, "retention", f"{policy.tenant_id}:{cutoff.date()}",
                                     f"retention:{policy.retention_days}d")
                done[policy.tenant_id] = report.conversations
        return done

    def history(self, tenant_id: str) -> list[dict[str, object]]:
        """The tenant's erasure records, newest first."""
        with self._sessions() as session:
            rows = session.execute(select(Erasure).where(Erasure.tenant_id == tenant_id)
                                   .order_by(Erasure.id.desc())).scalars().all()
            return [{"subject": r.subject, "subject_hash": r.subject_hash, "conversations": r.conversations,
                     "messages": r.messages, "tracker_events": r.tracker_events, "actor": r.actor,
                     "at": r.created_at.isoformat()} for r in rows]
