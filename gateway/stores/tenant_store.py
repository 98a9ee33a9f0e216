"""Tenants and their widget keys."""

from __future__ import annotations

import secrets
import time

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import Tenant, WidgetKey
from gateway.db.session import single_read_sessions


#: How long a widget key's tenant is remembered: every widget message presents the key, and a key removed
#: through another gateway process stops working within this (the widget settings are as fresh).
KEY_CACHE_S = 5.0
#: Keys remembered at most (a full cache starts over; unknown keys are never remembered).
KEY_CACHE_SIZE = 10_000


class TenantExistsError(ValueError):
    """A tenant with that id exists already."""


class TenantStore:
    """Creates tenants, issues widget keys and resolves a key to its tenant."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # one-statement lookups
        self._keys: dict[str, tuple[float, str]] = {}  # key -> (when read, tenant)

    def ensure_tenant(self, tenant_id: str, name: str) -> Tenant:
        """Create the tenant if it does not exist yet and return it."""
        with self._sessions.begin() as session:
            tenant = session.get(Tenant, tenant_id)
            if tenant is None:
                tenant = Tenant(id=tenant_id, name=name)
                session.add(tenant)
            return tenant

    def create(self, tenant_id: str, name: str) -> None:
        """Create a new tenant; two racing creations of one id: exactly one succeeds.

        Raises:
            TenantExistsError: The id is taken.
        """
        try:
            with self._sessions.begin() as session:
                session.add(Tenant(id=tenant_id, name=name))
                session.flush()
        except IntegrityError as exc:
            raise TenantExistsError(f"tenant {tenant_id!r} already exists") from exc

    def delete(self, tenant_id: str) -> None:
        """Remove a tenant that onboarding could not finish (with its keys; nothing else exists yet)."""
        with self._sessions.begin() as session:
            session.execute(delete(WidgetKey).where(WidgetKey.tenant_id == tenant_id))
            session.execute(delete(Tenant).where(Tenant.id == tenant_id))
        self._keys = {key: hit for key, hit in self._keys.items() if hit[1] != tenant_id}

    def issue_widget_key(self, tenant_id: str, key: str | None = None) -> str:
        """Register a widget key for a tenant (random unless given) and return it."""
        key = key or f"wk_{secrets.token_urlsafe(24)}"
        with self._sessions.begin() as session:
            if session.get(WidgetKey, key) is None:
                session.add(WidgetKey(key=key, tenant_id=tenant_id))
        return key

    def widget_keys(self, tenant_id: str) -> list[str]:
        """The tenant's active widget keys, oldest first."""
        with self._sessions() as session:
            return list(session.execute(select(WidgetKey.key).where(WidgetKey.tenant_id == tenant_id,
                                                                    WidgetKey.revoked.is_(False))
                                        .order_by(WidgetKey.created_at)).scalars())

    def tenant_for_key(self, key: str) -> str | None:
        """Return the tenant id of an active widget key, or None for unknown / revoked keys.

        A key found in the last ``KEY_CACHE_S`` seconds is answered from memory.
        """
        if not key or len(key) > 128:
            return None
        cached = self.cached_tenant_for_key(key)
        if cached is not None:
            return cached
        with self._reads() as session:
            row = session.execute(
                select(WidgetKey.tenant_id).where(WidgetKey.key == key, WidgetKey.revoked.is_(False))
            ).first()
        if row is None:
            return None
        if len(self._keys) >= KEY_CACHE_SIZE:
            self._keys = {}
        self._keys[key] = (time.monotonic(), row[0])
        return row[0]

    def cached_tenant_for_key(self, key: str) -> str | None:
        """The tenant of an active key read in the last ``KEY_CACHE_S`` seconds; None when not known that
        recently (no database read: an async caller can answer without a worker thread)."""
        hit = self._keys.get(key)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < KEY_CACHE_S else None

    def get(self, tenant_id: str) -> Tenant | None:
        """The tenant (detached), None when unknown."""
        with self._sessions() as session:
            tenant = session.get(Tenant, tenant_id)
            if tenant is not None:
                session.expunge(tenant)
            return tenant

    def exists(self, tenant_id: str) -> bool:
        """Whether the tenant exists."""
        with self._sessions() as session:
            return session.get(Tenant, tenant_id) is not None
