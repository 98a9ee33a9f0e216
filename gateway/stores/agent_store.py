"""Agents of a tenant and their login sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.auth.passwords import check_password_strength, hash_password, verify_password
from gateway.db.locks import lock_tenant
from gateway.db.models import Agent, AgentSession, aware, utcnow
from gateway.db.session import single_read_sessions

ROLES = ("agent", "supervisor", "admin")
STATUSES = ("online", "away", "offline")
# A fixed hash to verify against when the account does not exist, so timing does not reveal accounts.
_DUMMY_HASH = hash_password("not-a-real-account-password")


@dataclass(frozen=True)
class AgentRecord:
    """An agent as the rest of the gateway sees it (never the password hash)."""

    id: str
    tenant_id: str
    email: str
    display_name: str
    role: str
    teams: tuple[str, ...]
    capacity: int
    status: str
    active: bool

    def at_least(self, role: str) -> bool:
        """Whether the agent's role is ``role`` or above (agent < supervisor < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def to_public(self) -> dict[str, object]:
        """JSON shape for the API and the console."""
        return {"id": self.id, "email": self.email, "display_name": self.display_name, "role": self.role,
                "teams": list(self.teams), "capacity": self.capacity, "status": self.status, "active": self.active}


@dataclass(frozen=True)
class SessionGrant:
    """A new login session: the token is only ever known to the client."""

    token: str
    csrf_token: str
    expires_at: datetime
    agent: AgentRecord


def _record(row: Agent) -> AgentRecord:
    return AgentRecord(row.id, row.tenant_id, row.email, row.display_name, row.role, tuple(row.teams or ()),
                       row.capacity, row.status, row.active)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AgentExistsError(ValueError):
    """An agent with this e-mail already exists in the tenant."""


class SeatLimitError(ValueError):
    """Every agent seat of the plan is in use."""

    def __init__(self, limit: int, in_use: int) -> None:
        super().__init__(f"the plan includes {limit} agent seats and {in_use} are in use; upgrade the plan or "
                         "deactivate an agent to add another")
        self.limit = limit
        self.in_use = in_use


class AgentStore:
    """Creates agents, checks passwords and keeps expiring, server-side sessions.

    Args:
        sessions: Database session factory.
        idle_timeout: A session unused this long expires.
        max_age: A session expires this long after login, used or not.
    """

    def __init__(self, sessions: sessionmaker[Session], idle_timeout: timedelta = timedelta(hours=8),
                 max_age: timedelta = timedelta(hours=24)) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # one-statement reads: autocommit on PostgreSQL
        self._idle = idle_timeout
        self._max_age = max_age

    def create(self, tenant_id: str, email: str, display_name: str, password: str, role: str = "agent",
               teams: list[str] | None = None, capacity: int = 3, seat_limit: int | None = None) -> AgentRecord:
        """Create an agent.

        Args:
            seat_limit: Active agents the tenant's plan allows (None: no limit). Checked and written in one
                transaction under the tenant's lock, so racing creations never exceed it.

        Raises:
            ValueError: Unknown role, bad capacity or weak password.
            AgentExistsError: The e-mail is taken in this tenant.
            SeatLimitError: The plan's seats are all in use.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if not 1 <= capacity <= 50:
            raise ValueError("capacity must be between 1 and 50")
        email = email.strip().lower()
        if "@" not in email or len(email) > 254:
            raise ValueError("email must be an e-mail address")
        check_password_strength(password)
        row = Agent(tenant_id=tenant_id, email=email, display_name=display_name.strip()[:100] or email,
                    role=role, teams=list(teams or []), capacity=capacity, status="offline",
                    password_hash=hash_password(password), active=True)
        try:
            with self._sessions.begin() as session:
                if seat_limit is not None:
                    lock_tenant(session, tenant_id)
                    in_use = session.execute(select(func.count()).select_from(Agent).where(
                        Agent.tenant_id == tenant_id, Agent.active.is_(True))).scalar_one()
                    if in_use >= seat_limit:
                        raise SeatLimitError(seat_limit, in_use)
                session.add(row)
                session.flush()
                return _record(row)
        except IntegrityError as exc:
            raise AgentExistsError(f"{email} already exists") from exc

    def ensure_external(self, tenant_id: str, email: str, display_name: str, teams: list[str]) -> AgentRecord:
        """An agent who works from another tool (Slack) and never logs into the console.

        Created on first use with an unusable password and status "away", so automatic assignment
        leaves them alone: they take conversations by claiming them.
        """
        email = email.strip().lower()
        with self._reads() as session:
            row = session.execute(select(Agent).where(Agent.tenant_id == tenant_id, Agent.email == email)).scalar_one_or_none()
            if row is not None:
                return _record(row)
        row = Agent(tenant_id=tenant_id, email=email, display_name=display_name.strip()[:100] or email, role="agent",
                    teams=list(teams), capacity=10, status="away", active=True,
                    password_hash="!external:" + secrets.token_hex(16))  # no scrypt hash: no password works
        try:
            with self._sessions.begin() as session:
                session.add(row)
                session.flush()
                return _record(row)
        except IntegrityError:
            with self._sessions() as session:
                found = session.execute(select(Agent).where(Agent.tenant_id == tenant_id, Agent.email == email)).scalar_one()
                return _record(found)

    def get(self, tenant_id: str, agent_id: str) -> AgentRecord | None:
        """An agent of the tenant, or None."""
        with self._reads() as session:
            row = session.get(Agent, agent_id)
            return _record(row) if row is not None and row.tenant_id == tenant_id else None

    def list(self, tenant_id: str) -> list[AgentRecord]:
        """All agents of a tenant."""
        with self._reads() as session:
            rows = session.execute(select(Agent).where(Agent.tenant_id == tenant_id).order_by(Agent.email)).scalars()
            return [_record(row) for row in rows]

    def update(self, tenant_id: str, agent_id: str, **changes: object) -> AgentRecord | None:
        """Change status, teams, capacity, role, display name or active flag."""
        allowed = {"status", "teams", "capacity", "role", "display_name", "active"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
        if "status" in changes and changes["status"] not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        if "role" in changes and changes["role"] not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        with self._sessions.begin() as session:
            row = session.get(Agent, agent_id)
            if row is None or row.tenant_id != tenant_id:
                return None
            for key, value in changes.items():
                setattr(row, key, list(value) if key == "teams" else value)  # type: ignore[arg-type]
            if changes.get("active") is False:
                session.execute(delete(AgentSession).where(AgentSession.agent_id == agent_id))
            session.flush()
            return _record(row)

    def authenticate(self, tenant_id: str, email: str, password: str) -> AgentRecord | None:
        """The agent if the password is right and the account active; None otherwise."""
        with self._sessions() as session:
            row = session.execute(
                select(Agent).where(Agent.tenant_id == tenant_id, Agent.email == email.strip().lower())
            ).scalar_one_or_none()
        if row is None:
            verify_password(password, _DUMMY_HASH)
            return None
        if not verify_password(password, row.password_hash) or not row.active:
            return None
        return _record(row)

    def start_session(self, agent: AgentRecord) -> SessionGrant:
        """Open a session for an authenticated agent."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        now = utcnow()
        expires = now + self._max_age
        with self._sessions.begin() as session:
            session.add(AgentSession(token_hash=_token_hash(token), agent_id=agent.id, csrf_token=csrf,
                                     created_at=now, last_seen_at=now, expires_at=expires))
        return SessionGrant(token, csrf, expires, agent)

    def resolve_session(self, token: str) -> tuple[AgentRecord, str] | None:
        """The agent and CSRF token of a live session (and it is touched), or None when expired."""
        if not token or len(token) > 200:
            return None
        now = utcnow()
        with self._sessions.begin() as session:
            row = session.get(AgentSession, _token_hash(token))
            if row is None:
                return None
            if aware(row.expires_at) <= now or aware(row.last_seen_at) + self._idle <= now:
                session.delete(row)
                return None
            agent = session.get(Agent, row.agent_id)
            if agent is None or not agent.active:
                return None
            if (now - aware(row.last_seen_at)).total_seconds() > 60:  # avoid a write per request
                row.last_seen_at = now
            return _record(agent), row.csrf_token

    def end_session(self, token: str) -> None:
        """Log out."""
        with self._sessions.begin() as session:
            session.execute(delete(AgentSession).where(AgentSession.token_hash == _token_hash(token)))

    def set_status(self, tenant_id: str, agent_id: str, status: str) -> None:
        """Set presence (online / away / offline)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        with self._sessions.begin() as session:
            session.execute(update(Agent).where(Agent.id == agent_id, Agent.tenant_id == tenant_id)
                            .values(status=status))

