"""Billing fixtures: the ledger contract runs on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import migrated_sessions

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
    yield from migrated_sessions(request.param, tmp_path, "sb_billing")
