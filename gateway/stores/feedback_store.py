"""Customer feedback: CSAT after a resolved handoff and helpful / not helpful on a bot answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import Conversation, Feedback, Handoff, Message, Sender
from gateway.errors import CodedError

KINDS = {"csat": (1, 5), "helpful": (0, 1)}
MAX_COMMENT_CHARS = 2000


class FeedbackError(CodedError, ValueError):
    """Feedback that cannot be stored (unknown kind, score out of range, unknown conversation)."""


@dataclass(frozen=True)
class FeedbackRecord:
    """One stored rating."""

    conversation_id: str
    kind: str
    target: str
    score: int
    comment: str | None
    channel: str

    def to_public(self) -> dict[str, Any]:
        """JSON shape."""
        return {"conversation_id": self.conversation_id, "kind": self.kind, "target": self.target,
                "score": self.score, "comment": self.comment, "channel": self.channel}


class FeedbackStore:
    """Stores one rating per (conversation, kind, target); a second one for the same target is refused."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, tenant_id: str, conversation_id: str, kind: str, target: str, score: object,
               channel: str, comment: object = None) -> tuple[FeedbackRecord, bool]:
        """Store a rating; returns it and whether it is new (False: this target was already rated).

        Raises:
            FeedbackError: Bad kind / score / target or a conversation of another tenant.
        """
        if kind not in KINDS:
            raise FeedbackError("unknown_feedback_kind", f"kind must be one of {', '.join(KINDS)}")
        low, high = KINDS[kind]
        if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
            raise FeedbackError("bad_score", f"{kind} scores are whole numbers from {low} to {high}")
        if not isinstance(target, str) or not 0 < len(target) <= 64:
            raise FeedbackError("bad_target", "feedback needs the id of what it rates")
        text = comment.strip()[:MAX_COMMENT_CHARS] if isinstance(comment, str) and comment.strip() else None
        try:
            with self._sessions.begin() as session:
                conversation = session.get(Conversation, conversation_id)
                if conversation is None or conversation.tenant_id != tenant_id:
                    raise FeedbackError("unknown_conversation", "no such conversation")
                if not _rateable(session, conversation_id, kind, target):
                    raise FeedbackError("unknown_target", "rate a resolved handoff (csat) or a bot answer (helpful) "
                                                          "of this conversation")
                session.add(Feedback(tenant_id=tenant_id, conversation_id=conversation_id, kind=kind, target=target,
                                     score=score, comment=text, channel=channel))
            return FeedbackRecord(conversation_id, kind, target, score, text, channel), True
        except IntegrityError:
            existing = self.get(tenant_id, conversation_id, kind, target)
            assert existing is not None
            return existing, False

    def get(self, tenant_id: str, conversation_id: str, kind: str, target: str) -> FeedbackRecord | None:
        """The rating of one target, if any."""
        with self._sessions() as session:
            row = session.execute(select(Feedback).where(
                Feedback.tenant_id == tenant_id, Feedback.conversation_id == conversation_id,
                Feedback.kind == kind, Feedback.target == target)).scalar_one_or_none()
            return None if row is None else FeedbackRecord(row.conversation_id, row.kind, row.target, row.score,
                                                            row.comment, row.channel)

    def for_conversation(self, tenant_id: str, conversation_id: str) -> list[FeedbackRecord]:
        """Every rating of a conversation, oldest first."""
        with self._sessions() as session:
            rows = session.execute(select(Feedback).where(
                Feedback.tenant_id == tenant_id, Feedback.conversation_id == conversation_id).order_by(Feedback.id)
            ).scalars()
            return [FeedbackRecord(r.conversation_id, r.kind, r.target, r.score, r.comment, r.channel) for r in rows]


def _rateable(session: Session, conversation_id: str, kind: str, target: str) -> bool:
    """CSAT rates a resolved handoff of the conversation; votes rate one of its bot answers."""
    if kind == "csat":
        handoff = session.get(Handoff, target)
        return handoff is not None and handoff.conversation_id == conversation_id and handoff.state == "resolved"
    if not target.isdigit():
        return False
    message = session.get(Message, int(target))
    return message is not None and message.conversation_id == conversation_id and message.sender == Sender.BOT
