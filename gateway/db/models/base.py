"""Declarative base, the clock and ids every gateway table uses."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone

from sqlalchemy.orm import DeclarativeBase


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the models use."""
    return datetime.now(timezone.utc)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone-aware columns; they are UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def new_id() -> str:
    """A random UUID4 as text: conversation ids must not be guessable."""
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    """Declarative base of every gateway table."""


class Sender(str, enum.Enum):
    """Who said a message."""

    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"
