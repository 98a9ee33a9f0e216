"""Billing fixtures: the ledger contract runs on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.session import create_db_engine, create_session_factory
from gateway.migrate import upgrade_database
from gateway.stores.tenant_store import TenantStore
from tests.conftest import postgres_database



class Clock:
    """A settable clock for the usage service."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


@pytest.fixture(params=["sqlite", "postgresql"])
def billing_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A migrated gateway database with tenants acme and globex, on each backend."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'billing.db'}"])
    else:
        urls = postgres_database("sb_billing")
    url = next(urls)
    upgrade_database(url)
    engine = create_db_engine(url)
    sessions = create_session_factory(engine)
    for tenant in ("acme", "globex"):
        TenantStore(sessions).ensure_tenant(tenant, tenant.title())
    yield sessions
    engine.dispose()
    next(urls, None)  # drops the PostgreSQL database
