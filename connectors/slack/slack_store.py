"""Slack bookkeeping that makes delivery exactly-once: event receipts, posted messages, escalation threads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import SlackEscalation, SlackEventReceipt, SlackPost, utcnow

RECEIPT_TTL = timedelta(days=2)  # Slack retries for minutes; two days is generous


@dataclass(frozen=True)
class EscalationRecord:
    """A handoff's announcement in a Slack escalation channel."""

    handoff_id: str
    tenant_id: str
    conversation_id: str
    team_id: str
    channel: str
    ts: str | None


def _escalation(row: SlackEscalation) -> EscalationRecord:
    return EscalationRecord(row.handoff_id, row.tenant_id, row.conversation_id, row.team_id, row.channel, row.ts)


class SlackStore:
    """Atomic claims in the gateway database, so several replicas and Slack's retries agree."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # ------------------------------------------------------------ receipts
    def claim_event(self, event_id: str, team_id: str) -> bool:
        """True the first time an event id is seen; False for every retry of it."""
        try:
            with self._sessions.begin() as session:
                session.add(SlackEventReceipt(event_id=event_id[:64], team_id=team_id[:32]))
            return True
        except IntegrityError:
            return False

    def prune_receipts(self) -> int:
        """Drop receipts older than Slack's retry window."""
        with self._sessions.begin() as session:
            result = session.execute(delete(SlackEventReceipt).where(SlackEventReceipt.received_at < utcnow() - RECEIPT_TTL))
            return result.rowcount or 0

    # --------------------------------------------------------------- posts
    def claim_post(self, message_id: int, channel: str) -> bool:
        """True when this gateway message has not been posted to Slack yet (the caller posts it)."""
        try:
            with self._sessions.begin() as session:
                session.add(SlackPost(message_id=message_id, channel=channel))
            return True
        except IntegrityError:
            return False

    def posted(self, message_id: int, ts: str | None) -> None:
        """Remember the Slack timestamp of a posted message."""
        with self._sessions.begin() as session:
            session.execute(update(SlackPost).where(SlackPost.message_id == message_id).values(ts=ts))

    def unclaim_post(self, message_id: int) -> None:
        """Posting failed for good: let a later attempt try again."""
        with self._sessions.begin() as session:
            session.execute(delete(SlackPost).where(SlackPost.message_id == message_id))

    # --------------------------------------------------------- escalations
    def claim_escalation(self, handoff_id: str, tenant_id: str, conversation_id: str, team_id: str,
                         channel: str) -> bool:
        """True for the one caller that should announce this handoff in Slack."""
        try:
            with self._sessions.begin() as session:
                session.add(SlackEscalation(handoff_id=handoff_id, tenant_id=tenant_id, conversation_id=conversation_id,
                                            team_id=team_id, channel=channel))
            return True
        except IntegrityError:
            return False

    def escalation_posted(self, handoff_id: str, ts: str | None) -> None:
        """The announcement's timestamp: its thread is where agents talk to the customer."""
        with self._sessions.begin() as session:
            session.execute(update(SlackEscalation).where(SlackEscalation.handoff_id == handoff_id).values(ts=ts))

    def escalation(self, handoff_id: str) -> EscalationRecord | None:
        """The announcement of a handoff, if it was announced."""
        with self._sessions() as session:
            row = session.get(SlackEscalation, handoff_id)
            return None if row is None else _escalation(row)

    def escalation_for_thread(self, team_id: str, channel: str, ts: str) -> EscalationRecord | None:
        """The handoff whose announcement is the root of this thread."""
        with self._sessions() as session:
            row = session.execute(select(SlackEscalation).where(
                SlackEscalation.team_id == team_id, SlackEscalation.channel == channel, SlackEscalation.ts == ts)
            ).scalar_one_or_none()
            return None if row is None else _escalation(row)

    def escalations_for_conversation(self, tenant_id: str, conversation_id: str) -> list[EscalationRecord]:
        """Every announcement of the conversation's handoffs, newest first."""
        with self._sessions() as session:
            rows = session.execute(select(SlackEscalation).where(
                SlackEscalation.tenant_id == tenant_id, SlackEscalation.conversation_id == conversation_id)
                .order_by(SlackEscalation.created_at.desc())).scalars()
            return [_escalation(row) for row in rows]
