"""Stores batches of Rasa events in ``conversation_events``, once each (the log consumer's writer).

* **Idempotent**: an event's key is the SHA-256 of its canonical JSON, unique in the table, so a message
  the broker redelivers, or a replayed queue, is stored once.
* **Never resurrects erased data**: events of conversations the gateway does not know (erased, or never
  started through the gateway) are skipped. On PostgreSQL the batch locks the conversations it writes
  for (``FOR KEY SHARE``) and erasure locks them first (``FOR UPDATE``), so a batch racing an erasure
  either lands before it (and is erased with the rest) or waits and finds the conversation gone.
* **One statement on PostgreSQL**: the batch travels as arrays into one data-modifying ``WITH`` in
  autocommit (one round trip, fixed SQL that psycopg prepares on the server), instead of ``BEGIN``, a
  tenant lookup, the insert and ``COMMIT``. SQLite (tests, single-machine setups) keeps the transaction.
* A message that cannot be stored as it is (not JSON, not Rasa's shape, a NUL in its sender, text that
  is not valid Unicode) is counted as malformed and skipped: it must never block the queue.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.ledger import insert_for_dialect
from gateway.db.models import Conversation, ConversationEvent
from gateway.db.session import autocommit_engine

logger = logging.getLogger(__name__)


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)


def _key(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()  # raises on a lone surrogate, which no database stores


def event_key(body: dict[str, Any]) -> str:
    """Identity of one event: the hash of its canonical JSON (sender, type, timestamp and content)."""
    return _key(_canonical(body))


def _events_of(body: Any) -> list[dict[str, Any]]:
    """The events of one message: Rasa's one event (``{"sender_id", "event", …}``), or the tracker store's
    batch of a turn (``{"sender_id", "events": [event, …]}``), each event then with its sender as Rasa
    would have published it alone, so its key is the same either way.

    Raises:
        ValueError: Neither shape (a malformed message, skipped whole).
    """
    if not isinstance(body, dict) or not isinstance(body.get("sender_id"), str):
        raise ValueError("not a Rasa event")
    if "events" in body and "event" not in body:
        batch = body["events"]
        if not isinstance(batch, list) or not all(isinstance(e, dict) and e.get("event") for e in batch):
            raise ValueError("not a batch of Rasa events")
        return [{"sender_id": body["sender_id"], **event} for event in batch]
    if not body.get("event"):
        raise ValueError("not a Rasa event")
    return [body]


@dataclass(frozen=True)
class EventRow:
    """One event as stored (its tenant comes from the gateway's conversation, at write time)."""

    event_key: str
    conversation_id: str
    event: str
    timestamp: float
    model_id: str | None
    body: dict[str, Any]
    body_json: str


def _row(body: dict[str, Any]) -> EventRow:
    """The stored form of one event.

    Raises:
        ValueError: A NUL in its sender or a timestamp that is not a number.
        UnicodeError: Text that is not valid Unicode (a lone surrogate).
    """
    text = _canonical(body)  # serialised once: the key's input is also the stored body
    key = _key(text)
    conversation_id = body["sender_id"]
    if "\x00" in conversation_id:
        raise ValueError("NUL in the sender id")
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    model_id = metadata.get("model_id")
    return EventRow(key, conversation_id[:100], str(body["event"]).replace("\x00", "")[:64],
                    float(body.get("timestamp") or 0.0), str(model_id).replace("\x00", "")[:64] if model_id else None,
                    body, text)


def parse_batch(raw_bodies: list[bytes]) -> tuple[list[EventRow], int]:
    """The rows of a batch of broker messages, and how many messages were malformed (skipped whole)."""
    rows: list[EventRow] = []
    malformed = 0
    for raw in raw_bodies:
        try:
            rows += [_row(event) for event in _events_of(json.loads(raw))]
        except (ValueError, TypeError, UnicodeError):
            malformed += 1
            logger.warning("skipping a malformed broker message (%d bytes)", len(raw))
    return rows, malformed


#: The PostgreSQL batch: the rows as arrays (fixed SQL whatever the batch's size), joined with the
#: conversations they belong to (locked against a concurrent erasure, in id order as erasure locks them,
#: so the two never deadlock), inserted in the batch's order.
_POSTGRES_BATCH = """
WITH batch AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::text[], %s::text[])
        WITH ORDINALITY AS b(event_key, conversation_id, event, ts, model_id, body, position)
), known AS (
    SELECT batch.*, c.tenant_id FROM batch JOIN conversations c ON c.id = batch.conversation_id
    ORDER BY c.id FOR KEY SHARE OF c
), stored AS (
    INSERT INTO conversation_events (event_key, tenant_id, conversation_id, event, "timestamp", model_id, body,
                                     received_at)
    SELECT event_key, tenant_id, conversation_id, event, ts, model_id, body::json, now()
    FROM known ORDER BY position
    ON CONFLICT (event_key) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM known), (SELECT count(*) FROM stored)
"""


@lru_cache(maxsize=4)
def _insert_events(dialect: str) -> Any:
    """The event rows' INSERT of the transactional path, built once (compiled once, whatever the batch's size)."""
    return (insert_for_dialect(dialect)(ConversationEvent).on_conflict_do_nothing(index_elements=["event_key"])
            .returning(ConversationEvent.id, sort_by_parameter_order=True))


@dataclass
class ConsumerStats:
    """What the consumer did since it started."""

    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    malformed: int = 0
    reconnects: int = 0

    def to_public(self) -> dict[str, int]:
        """JSON shape."""
        return dict(self.__dict__)


@dataclass
class EventLogWriter:
    """Stores batches of Rasa events, once each.

    Args:
        sessions: Gateway database.
    """

    sessions: sessionmaker[Session]
    stats: ConsumerStats = field(default_factory=ConsumerStats)

    def write(self, raw_bodies: list[bytes]) -> None:
        """Parse and store one batch atomically (raises on database errors: nothing is acknowledged)."""
        rows, malformed = parse_batch(raw_bodies)
        self.stats.malformed += malformed
        if not rows:
            return
        engine: Engine = self.sessions.kw["bind"]
        if engine.dialect.name == "postgresql":
            known, stored = self._write_postgres(engine, rows)
        else:
            known, stored = self._write_in_transaction(engine, rows)
        self.stats.skipped += len(rows) - known
        self.stats.stored += stored
        self.stats.duplicates += known - stored

    @staticmethod
    def _write_postgres(engine: Engine, rows: list[EventRow]) -> tuple[int, int]:
        columns = ([r.event_key for r in rows], [r.conversation_id for r in rows], [r.event for r in rows],
                   [r.timestamp for r in rows], [r.model_id for r in rows], [r.body_json for r in rows])
        with autocommit_engine(engine).connect() as connection:
            known, stored = connection.exec_driver_sql(_POSTGRES_BATCH, columns).one()
        return int(known), int(stored)

    @staticmethod
    def _write_in_transaction(engine: Engine, rows: list[EventRow]) -> tuple[int, int]:
        with engine.begin() as connection:
            # Asked for every batch, never cached: a conversation erased a moment ago (by another process)
            # must not get its late events stored.
            tenants = dict(connection.execute(select(Conversation.id, Conversation.tenant_id)
                                              .where(Conversation.id.in_({r.conversation_id for r in rows}))).all())
            values = [{"event_key": r.event_key, "tenant_id": tenants[r.conversation_id],
                       "conversation_id": r.conversation_id, "event": r.event, "timestamp": r.timestamp,
                       "model_id": r.model_id, "body": r.body} for r in rows if r.conversation_id in tenants]
            if not values:
                return 0, 0
            # One statement, its rows sent together (ids follow the batch's order); a key already stored, or
            # twice in the batch, is skipped by the unique index.
            stored = connection.execute(_insert_events(engine.dialect.name), values).scalars().all()
        return len(values), len(stored)
