"""Serialising one tenant's writers where a check and a write must not interleave (limits, registry)."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gateway.db.models import Tenant


def lock_tenant(session: Session, tenant_id: str) -> None:
    """Hold the tenant's lock until the session's transaction ends.

    PostgreSQL locks the tenant row. SQLite has no row locks: a no-op write as the transaction's first
    statement takes the database's write lock (waiting for it) before the reads it guards.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"UPDATE {Tenant.__tablename__} SET id = id WHERE id = :tenant"), {"tenant": tenant_id})
    else:
        session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())
