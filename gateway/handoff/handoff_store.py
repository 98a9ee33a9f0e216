"""Handoffs, their transitions, notes and the webhook outbox, changed atomically together.

Every state change is a compare-and-set on the handoff's ``version`` (and, for new handoffs, on
the conversation's ``handoff_state``), so two agents claiming at once cannot both win, and a
transition, the conversation's owner and the webhook deliveries it causes commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import (
    Agent,
    Conversation,
    Handoff,
    HandoffNote,
    HandoffTransition,
    aware,
    new_id,
    utcnow,
)
from gateway.webhooks import queue_event
from gateway.handoff.states import OPEN_STATES, HandoffConflictError, HandoffRuleError, HandoffState, check_move
from gateway.db.session import single_read_sessions


@dataclass(frozen=True)
class HandoffRecord:
    """A handoff as read from the database."""

    id: str
    tenant_id: str
    conversation_id: str
    state: HandoffState
    trigger: str
    detail: dict[str, Any] | None
    team: str | None
    priority: int
    agent_id: str | None
    version: int
    left_message: bool
    timeout_offered_at: datetime | None
    created_at: datetime
    queued_at: datetime
    assigned_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    resolution_label: str | None
    resolution_note: str | None

    def to_public(self) -> dict[str, Any]:
        """JSON shape for the API, the console and webhooks."""
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id, "conversation_id": self.conversation_id, "state": self.state.value,
            "trigger": self.trigger, "detail": self.detail, "team": self.team, "priority": self.priority,
            "agent_id": self.agent_id, "left_message": self.left_message, "created_at": iso(self.created_at),
            "queued_at": iso(self.queued_at), "assigned_at": iso(self.assigned_at),
            "first_response_at": iso(self.first_response_at), "resolved_at": iso(self.resolved_at),
            "resolution_label": self.resolution_label, "resolution_note": self.resolution_note,
        }


@dataclass(frozen=True)
class TransitionRecord:
    """One stored state change."""

    handoff_id: str
    from_state: str
    to_state: str
    actor: str
    reason: str
    detail: dict[str, Any] | None
    created_at: datetime

    def to_public(self) -> dict[str, Any]:
        """JSON shape."""
        return {"handoff_id": self.handoff_id, "from": self.from_state, "to": self.to_state, "actor": self.actor,
                "reason": self.reason, "detail": self.detail, "created_at": self.created_at.isoformat()}


def _record(row: Handoff) -> HandoffRecord:
    return HandoffRecord(
        id=row.id, tenant_id=row.tenant_id, conversation_id=row.conversation_id, state=HandoffState(row.state),
        trigger=row.trigger, detail=row.detail, team=row.team, priority=row.priority, agent_id=row.agent_id,
        version=row.version, left_message=row.left_message, timeout_offered_at=aware(row.timeout_offered_at),
        created_at=aware(row.created_at), queued_at=aware(row.queued_at),  # type: ignore[arg-type]
        assigned_at=aware(row.assigned_at), first_response_at=aware(row.first_response_at),
        resolved_at=aware(row.resolved_at), resolution_label=row.resolution_label,
        resolution_note=row.resolution_note,
    )


class HandoffStore:
    """The handoff part of the conversation log."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # one-statement lookups

    # ----------------------------------------------------------------- reads
    def get(self, tenant_id: str, handoff_id: str) -> HandoffRecord | None:
        """A handoff of the tenant, or None."""
        with self._reads() as session:
            row = session.get(Handoff, handoff_id)
            return _record(row) if row is not None and row.tenant_id == tenant_id else None

    def open_for_conversation(self, tenant_id: str, conversation_id: str) -> HandoffRecord | None:
        """The conversation's open handoff (queued, assigned or human), or None when the bot owns it."""
        with self._reads() as session:
            row = session.execute(
                select(Handoff).where(
                    Handoff.tenant_id == tenant_id, Handoff.conversation_id == conversation_id,
                    Handoff.state.in_([s.value for s in OPEN_STATES]),
                )
            ).scalar_one_or_none()
            return _record(row) if row else None

    def latest_for_conversation(self, tenant_id: str, conversation_id: str) -> HandoffRecord | None:
        """The conversation's most recent handoff, open or not."""
        with self._reads() as session:
            row = session.execute(
                select(Handoff).where(Handoff.tenant_id == tenant_id, Handoff.conversation_id == conversation_id)
                .order_by(Handoff.created_at.desc()).limit(1)
            ).scalar_one_or_none()
            return _record(row) if row else None

    def owner_state(self, tenant_id: str, conversation_id: str) -> HandoffState:
        """Who owns the conversation right now (``BOT`` or an open handoff state)."""
        with self._reads() as session:
            state = session.execute(
                select(Conversation.handoff_state).where(
                    Conversation.id == conversation_id, Conversation.tenant_id == tenant_id)
            ).scalar_one_or_none()
            return HandoffState(state or "bot")

    def list(self, tenant_id: str, states: list[HandoffState] | None = None, agent_id: str | None = None,
             limit: int = 200) -> list[HandoffRecord]:
        """Handoffs of a tenant, newest first, filtered by state and agent."""
        query = select(Handoff).where(Handoff.tenant_id == tenant_id)
        if states:
            query = query.where(Handoff.state.in_([s.value for s in states]))
        if agent_id:
            query = query.where(Handoff.agent_id == agent_id)
        with self._reads() as session:
            rows = session.execute(query.order_by(Handoff.created_at.desc()).limit(limit)).scalars()
            return [_record(row) for row in rows]

    def tenants_with_queue(self) -> list[str]:
        """Tenants that have queued handoffs (for the periodic monitor)."""
        with self._reads() as session:
            return list(session.execute(
                select(Handoff.tenant_id).where(Handoff.state == HandoffState.QUEUED.value).distinct()
            ).scalars())

    def agent_loads(self, tenant_id: str) -> dict[str, int]:
        """Open conversations per agent."""
        with self._reads() as session:
            rows = session.execute(
                select(Handoff.agent_id, func.count()).where(
                    Handoff.tenant_id == tenant_id, Handoff.agent_id.is_not(None),
                    Handoff.state.in_([HandoffState.ASSIGNED.value, HandoffState.HUMAN.value]),
                ).group_by(Handoff.agent_id)
            ).all()
            return {agent_id: count for agent_id, count in rows}

    def mean_handle_seconds(self, tenant_id: str, last: int = 50) -> float | None:
        """Mean time from assignment to resolution over the last resolved handoffs."""
        with self._reads() as session:
            rows = session.execute(
                select(Handoff.assigned_at, Handoff.resolved_at).where(
                    Handoff.tenant_id == tenant_id, Handoff.state == HandoffState.RESOLVED.value,
                    Handoff.assigned_at.is_not(None),
                ).order_by(Handoff.resolved_at.desc()).limit(last)
            ).all()
        spans = [(aware(done) - aware(start)).total_seconds() for start, done in rows if start and done]  # type: ignore[operator]
        return sum(spans) / len(spans) if spans else None

    def transitions(self, tenant_id: str, conversation_id: str) -> list[TransitionRecord]:
        """Every handoff transition of a conversation, oldest first."""
        with self._reads() as session:
            rows = session.execute(
                select(HandoffTransition).where(
                    HandoffTransition.tenant_id == tenant_id, HandoffTransition.conversation_id == conversation_id,
                ).order_by(HandoffTransition.id)
            ).scalars()
            return [TransitionRecord(r.handoff_id, r.from_state, r.to_state, r.actor, r.reason, r.detail,
                                     aware(r.created_at)) for r in rows]  # type: ignore[arg-type]

    def notes(self, tenant_id: str, conversation_id: str) -> list[dict[str, Any]]:
        """Internal notes of a conversation, oldest first."""
        with self._reads() as session:
            rows = session.execute(
                select(HandoffNote).where(HandoffNote.tenant_id == tenant_id,
                                          HandoffNote.conversation_id == conversation_id).order_by(HandoffNote.id)
            ).scalars()
            return [{"id": r.id, "agent_id": r.agent_id, "text": r.text, "created_at": aware(r.created_at).isoformat()}  # type: ignore[union-attr]
                    for r in rows]

    # ---------------------------------------------------------------- writes
    def open(self, tenant_id: str, conversation_id: str, trigger: str, *, actor: str, team: str | None,
             priority: int, detail: dict[str, Any] | None = None) -> HandoffRecord:
        """Hand a bot-owned conversation to the queue.

        Raises:
            HandoffConflictError: A handoff is already open (or the conversation is unknown).
        """
        handoff_id = new_id()
        now = utcnow()
        with self._sessions.begin() as session:
            claimed = session.execute(
                update(Conversation).where(
                    Conversation.id == conversation_id, Conversation.tenant_id == tenant_id,
                    Conversation.handoff_state == HandoffState.BOT.value,
                ).values(handoff_state=HandoffState.QUEUED.value, active_handoff_id=handoff_id)
            ).rowcount
            if claimed != 1:
                raise HandoffConflictError("the conversation already has an open handoff (or does not exist)")
            row = Handoff(id=handoff_id, tenant_id=tenant_id, conversation_id=conversation_id,
                          state=HandoffState.QUEUED.value, trigger=trigger, detail=detail, team=team,
                          priority=priority, version=0, left_message=False, created_at=now, queued_at=now)
            session.add(row)
            session.flush()
            self._log(session, row, HandoffState.BOT.value, actor, trigger, detail)
            return _record(row)

    def discard(self, tenant_id: str, handoff_id: str) -> None:
        """Undo a handoff opened a moment ago that the plan does not allow (nobody was told of it yet)."""
        with self._sessions.begin() as session:
            session.execute(update(Conversation).where(
                Conversation.tenant_id == tenant_id, Conversation.active_handoff_id == handoff_id,
            ).values(handoff_state=HandoffState.BOT.value, active_handoff_id=None))
            session.execute(delete(HandoffTransition).where(HandoffTransition.handoff_id == handoff_id))
            session.execute(delete(Handoff).where(Handoff.tenant_id == tenant_id, Handoff.id == handoff_id))

    def assign(self, tenant_id: str, handoff_id: str, agent_id: str, *, actor: str, reason: str,
               expect: HandoffState | None = None, capacity_check: bool = True) -> HandoffRecord:
        """Give a handoff to an agent (claim, automatic assignment or transfer).

        Args:
            expect: The state the caller saw (claims expect ``QUEUED``); None accepts any open state.
            capacity_check: Refuse when the agent already holds ``capacity`` conversations.

        Raises:
            HandoffConflictError: Someone moved the handoff first (the other claim won).
            HandoffRuleError: The agent is unknown, inactive or at capacity.
        """
        now = utcnow()
        with self._sessions.begin() as session:
            # The write to the agent row comes first: it serialises assignments to one agent, so
            # the capacity count below cannot be raced past.
            locked = session.execute(
                update(Agent).where(Agent.id == agent_id, Agent.tenant_id == tenant_id, Agent.active.is_(True))
                .values(last_assigned_at=now)
            ).rowcount
            if locked != 1:
                raise HandoffRuleError("unknown_agent", "no such active agent in this tenant")
            row = self._current(session, tenant_id, handoff_id)
            current = HandoffState(row.state)
            if expect is not None and current != expect:
                raise HandoffConflictError(f"the conversation is already {current.value}", current.value)
            check_move(current, HandoffState.ASSIGNED)
            if row.agent_id == agent_id:
                raise HandoffConflictError("the conversation is already with this agent", current.value)
            from_state = row.state
            self._cas(session, row, state=HandoffState.ASSIGNED.value, agent_id=agent_id, assigned_at=now)
            if capacity_check:
                agent = session.get(Agent, agent_id)
                load = session.execute(
                    select(func.count()).select_from(Handoff).where(
                        Handoff.agent_id == agent_id,
                        Handoff.state.in_([HandoffState.ASSIGNED.value, HandoffState.HUMAN.value]))
                ).scalar_one()
                if agent is not None and load > agent.capacity:
                    raise HandoffRuleError("capacity_full", f"the agent already has {agent.capacity} conversations")
            self._set_owner(session, row)
            self._log(session, row, from_state, actor, reason, {"agent_id": agent_id})
            return _record(row)

    def mark_human(self, tenant_id: str, handoff_id: str, agent_id: str) -> HandoffRecord | None:
        """The assigned agent answered: the human owns the conversation. None if already human."""
        now = utcnow()
        with self._sessions.begin() as session:
            row = self._current(session, tenant_id, handoff_id)
            if row.agent_id != agent_id:
                raise HandoffRuleError("not_owner", "only the assigned agent can answer this conversation")
            if row.state == HandoffState.HUMAN.value:
                return None
            check_move(HandoffState(row.state), HandoffState.HUMAN)
            from_state = row.state
            self._cas(session, row, state=HandoffState.HUMAN.value,
                      first_response_at=row.first_response_at or now)
            self._set_owner(session, row)
            self._log(session, row, from_state, f"agent:{agent_id}", "agent_replied", None)
            return _record(row)

    def requeue(self, tenant_id: str, handoff_id: str, *, actor: str, reason: str, team: str | None,
                expect_agent: str | None = None) -> HandoffRecord:
        """Send an assigned conversation back to the queue (transfer to a team, agent gives it back)."""
        with self._sessions.begin() as session:
            row = self._current(session, tenant_id, handoff_id)
            if expect_agent is not None and row.agent_id != expect_agent:
                raise HandoffRuleError("not_owner", "only the assigned agent (or a supervisor) can transfer it")
            check_move(HandoffState(row.state), HandoffState.QUEUED)
            from_state = row.state
            self._cas(session, row, state=HandoffState.QUEUED.value, agent_id=None, team=team)
            self._set_owner(session, row)
            self._log(session, row, from_state, actor, reason, {"team": team})
            return _record(row)

    def resolve(self, tenant_id: str, handoff_id: str, *, actor: str, reason: str, label: str,
                note: str | None = None, expect_agent: str | None = None) -> HandoffRecord:
        """Close a handoff; the bot owns the conversation again."""
        now = utcnow()
        with self._sessions.begin() as session:
            row = self._current(session, tenant_id, handoff_id)
            if expect_agent is not None and row.agent_id != expect_agent:
                raise HandoffRuleError("not_owner", "only the assigned agent (or a supervisor) can resolve it")
            check_move(HandoffState(row.state), HandoffState.RESOLVED)
            from_state = row.state
            self._cas(session, row, state=HandoffState.RESOLVED.value, resolved_at=now, resolution_label=label,
                      resolution_note=note)
            session.execute(update(Conversation).where(Conversation.id == row.conversation_id)
                            .values(handoff_state=HandoffState.BOT.value, active_handoff_id=None))
            self._log(session, row, from_state, actor, reason, {"label": label})
            return _record(row)

    def flag(self, tenant_id: str, handoff_id: str, **values: Any) -> HandoffRecord:
        """Set ``left_message`` / ``timeout_offered_at`` without a state change."""
        assert set(values) <= {"left_message", "timeout_offered_at"}
        with self._sessions.begin() as session:
            row = self._current(session, tenant_id, handoff_id)
            for key, value in values.items():
                setattr(row, key, value)
            return _record(row)

    def add_note(self, tenant_id: str, conversation_id: str, agent_id: str, text: str) -> dict[str, Any]:
        """Store an internal note."""
        with self._sessions.begin() as session:
            row = HandoffNote(tenant_id=tenant_id, conversation_id=conversation_id, agent_id=agent_id, text=text)
            session.add(row)
            session.flush()
            return {"id": row.id, "agent_id": agent_id, "text": text, "created_at": aware(row.created_at).isoformat()}  # type: ignore[union-attr]

    # --------------------------------------------------------------- helpers
    @staticmethod
    def _current(session: Session, tenant_id: str, handoff_id: str) -> Handoff:
        row = session.get(Handoff, handoff_id, populate_existing=True)
        if row is None or row.tenant_id != tenant_id:
            raise HandoffRuleError("unknown_handoff", "no such handoff")
        return row

    @staticmethod
    def _cas(session: Session, row: Handoff, **values: Any) -> None:
        """Write ``values`` only if nobody changed the row since it was read."""
        changed = session.execute(
            update(Handoff).where(Handoff.id == row.id, Handoff.version == row.version)
            .values(version=row.version + 1, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            raise HandoffConflictError("someone else changed this conversation first", None)
        session.refresh(row)

    @staticmethod
    def _set_owner(session: Session, row: Handoff) -> None:
        session.execute(update(Conversation).where(Conversation.id == row.conversation_id)
                        .values(handoff_state=row.state, active_handoff_id=row.id))

    def _log(self, session: Session, row: Handoff, from_state: str, actor: str, reason: str,
             detail: dict[str, Any] | None) -> None:
        """Store the transition and queue its webhook deliveries in the same transaction."""
        now = utcnow()
        session.add(HandoffTransition(handoff_id=row.id, tenant_id=row.tenant_id, conversation_id=row.conversation_id,
                                      from_state=from_state, to_state=row.state, actor=actor, reason=reason,
                                      detail=detail, created_at=now))
        event = f"handoff.{row.state}" if from_state != row.state else f"handoff.{row.state}.transferred"
        data = {"handoff": _record(row).to_public(),
                "transition": {"from": from_state, "to": row.state, "actor": actor, "reason": reason,
                               "detail": detail, "at": now.isoformat()}}
        queue_event(session, row.tenant_id, event, data, now)
