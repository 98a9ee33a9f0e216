"""Installing the Slack app into a workspace for a tenant (OAuth v2), without Slack knowing our tenants.

The tenant's admin gets a signed, expiring install link from the admin API. Opening it issues a
single-use ``state`` bound to the tenant (database) and to the browser (cookie), then redirects to
Slack. Slack's callback must bring the same state in the URL and the cookie; the code is exchanged
with ``oauth.v2.access`` and the workspace is stored for the tenant with its bot token encrypted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import SlackOAuthState, aware, utcnow

STATE_TTL = timedelta(minutes=10)
STATE_COOKIE = "sb_slack_oauth_state"


class InstallLinkSigner:
    """Signs ``tenant + expiry`` so only links made by an admin start an install for that tenant."""

    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(b"switchboard:slack-install:" + secret_key.encode()).digest()

    def _sig(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def sign(self, tenant_id: str, ttl_s: int = 3600) -> str:
        """A ticket for ``tenant_id``, valid ``ttl_s`` seconds."""
        payload = f"{base64.urlsafe_b64encode(tenant_id.encode()).decode()}.{int(time.time()) + ttl_s}"
        return f"{payload}.{self._sig(payload)}"

    def verify(self, ticket: str) -> str | None:
        """The tenant of a valid, unexpired ticket; None otherwise."""
        payload, _, sig = ticket.rpartition(".")
        if not payload or not hmac.compare_digest(self._sig(payload), sig):
            return None
        encoded, _, expiry = payload.partition(".")
        try:
            if int(expiry) < time.time():
                return None
            return base64.urlsafe_b64decode(encoded.encode()).decode()
        except ValueError:
            return None


class OAuthStateStore:
    """Single-use OAuth states, each bound to the tenant that asked for the install."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def issue(self, tenant_id: str) -> str:
        """A new random state for one install attempt of ``tenant_id``."""
        state = secrets.token_urlsafe(32)
        with self._sessions.begin() as session:
            session.add(SlackOAuthState(state=state, tenant_id=tenant_id))
        return state

    def consume(self, state: str) -> str | None:
        """The tenant of a fresh, unused state, marking it used; None for unknown, used or stale states."""
        if not state or len(state) > 64:
            return None
        with self._sessions.begin() as session:
            row = session.get(SlackOAuthState, state)
            if row is None or row.consumed_at is not None or aware(row.created_at) < utcnow() - STATE_TTL:
                return None
            used = session.execute(update(SlackOAuthState).where(SlackOAuthState.state == state,
                                                                 SlackOAuthState.consumed_at.is_(None))
                                   .values(consumed_at=utcnow()))
            return row.tenant_id if used.rowcount == 1 else None
