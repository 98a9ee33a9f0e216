"""Writes Rasa's event stream (RabbitMQ, published by Rasa's Pika event broker) into the conversation log.

At scale several Rasa replicas publish every tracker event to the ``rasa-exchange`` fanout exchange;
this consumer reads the durable queue bound to it and stores each event in ``conversation_events``.
A message is one event (Rasa's shape) or a turn's events (``{"sender_id", "events": [...]}``, what
``connectors/windowed_tracker_store.py`` publishes: one message per turn instead of about ten).

* **Idempotent**: an event's key is the SHA-256 of its canonical JSON, unique in the table, so a message
  the broker redelivers (after a consumer crash or a broker restart) or a replayed queue is stored once.
* **At least once**: messages are acknowledged only after the transaction that stores them committed.
* **Survives broker restarts**: a lost connection is re-opened with backoff; unacknowledged messages come
  back and are de-duplicated.
* **Never resurrects erased data**: events of conversations the gateway does not know (erased, or not
  started through the gateway) are acknowledged and skipped.
* Malformed messages are acknowledged, counted and logged; they never block the queue.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pika
import pika.exceptions
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.ledger import insert_for_dialect
from gateway.db.models import Conversation, ConversationEvent

logger = logging.getLogger(__name__)

#: Rasa's fanout exchange (``rasa.core.brokers.pika.RABBITMQ_EXCHANGE``).
RASA_EXCHANGE = "rasa-exchange"
DEFAULT_QUEUE = "switchboard_events"


def event_key(body: dict[str, Any]) -> str:
    """Identity of one event: the hash of its canonical JSON (sender, type, timestamp and content)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


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


@lru_cache(maxsize=4)
def _insert_events(dialect: str) -> Any:
    """The event rows' INSERT for a dialect, built once (compiled once, whatever the batch's size)."""
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

    @staticmethod
    def _tenant_of(session: Session, conversation_ids: set[str]) -> dict[str, str]:
        # Asked again for every batch (one query), never cached: a conversation erased a moment ago must
        # not get its late events stored, and erasure runs in another process.
        rows = session.execute(select(Conversation.id, Conversation.tenant_id)
                               .where(Conversation.id.in_(conversation_ids)))
        return {conversation_id: tenant_id for conversation_id, tenant_id in rows}

    def write(self, raw_bodies: list[bytes]) -> None:
        """Parse and store one batch in one transaction (raises on database errors: nothing is acknowledged)."""
        events = []
        for raw in raw_bodies:
            try:
                events += _events_of(json.loads(raw))
            except (ValueError, UnicodeDecodeError):
                self.stats.malformed += 1
                logger.warning("skipping a malformed broker message (%d bytes)", len(raw))
        if not events:
            return
        with self.sessions.begin() as session:
            tenants = self._tenant_of(session, {e["sender_id"] for e in events})
            rows = []
            for body in events:
                conversation_id = body["sender_id"]
                if conversation_id not in tenants:
                    self.stats.skipped += 1
                    continue
                metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
                rows.append({"event_key": event_key(body), "tenant_id": tenants[conversation_id],
                             "conversation_id": conversation_id[:100], "event": str(body["event"])[:64],
                             "timestamp": float(body.get("timestamp") or 0.0),
                             "model_id": metadata.get("model_id") or None, "body": body})
            if not rows:
                return
            # One statement built once, its rows sent together (SQLAlchemy's multi-row VALUES; ids follow the
            # batch's order); a key already stored, or twice in the batch, is skipped by the unique index.
            stored = session.execute(_insert_events(session.get_bind().dialect.name), rows).scalars().all()
            self.stats.stored += len(stored)
            self.stats.duplicates += len(rows) - len(stored)


class RabbitEventLogConsumer:
    """Consumes Rasa's event queue and writes it with an ``EventLogWriter``; reconnects forever.

    Args:
        sessions: Gateway database.
        url: AMQP URL, e.g. ``amqp://guest:guest@127.0.0.1:5672/%2F``.
        queue: The durable queue Rasa's broker publishes to (``queues:`` in Rasa's endpoints).
        exchange: Rasa's fanout exchange (``exchange_name:`` in Rasa's endpoints).
        batch_size: Messages stored per transaction at most.
        batch_wait_s: How long a partial batch waits for more messages.
    """

    def __init__(self, sessions: sessionmaker[Session], url: str, queue: str = DEFAULT_QUEUE,
                 exchange: str = RASA_EXCHANGE, batch_size: int = 200, batch_wait_s: float = 0.2, max_backoff_s: float = 10.0) -> None:
        self.writer = EventLogWriter(sessions)
        self.url = url
        self.queue = queue
        self.exchange = exchange
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self.connected = threading.Event()

    @property
    def stats(self) -> ConsumerStats:
        """Counters since start."""
        return self.writer.stats

    def stop(self) -> None:
        """Ask the consumer to finish its batch and return from ``run``."""
        self._stop.set()

    def _declare(self, channel: Any) -> None:
        # Same declarations as Rasa's broker (a non-durable fanout exchange, durable queues), so either side
        # may start first and both re-declare after a broker restart.
        channel.exchange_declare(self.exchange, exchange_type="fanout", durable=False)
        channel.queue_declare(self.queue, durable=True)
        channel.queue_bind(self.queue, self.exchange, routing_key="")
        channel.basic_qos(prefetch_count=self.batch_size)

    def run(self) -> None:
        """Consume until ``stop``; a lost broker connection is retried with exponential backoff."""
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._consume()
                backoff = 0.5
            except (pika.exceptions.AMQPError, OSError) as exc:
                self.connected.clear()
                if self._stop.is_set():
                    break
                self.stats.reconnects += 1
                logger.warning("broker connection lost (%s); retrying in %.1fs", exc.__class__.__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)
        self.connected.clear()

    def _consume(self) -> None:
        parameters = pika.URLParameters(self.url)
        parameters.heartbeat = 30
        parameters.blocked_connection_timeout = 30
        parameters.connection_attempts = 1
        connection = pika.BlockingConnection(parameters)
        try:
            channel = connection.channel()
            self._declare(channel)
            self.connected.set()
            logger.info("consuming %s", self.queue)
            generator = channel.consume(self.queue, inactivity_timeout=self.batch_wait_s)
            batch: list[tuple[int, bytes]] = []
            deadline = None
            for method, _properties, body in generator:
                if method is not None:
                    batch.append((method.delivery_tag, body))
                    deadline = deadline or time.monotonic() + self.batch_wait_s
                full = len(batch) >= self.batch_size
                if batch and (full or method is None or time.monotonic() >= (deadline or 0)):
                    self._flush(channel, batch)
                    batch, deadline = [], None
                if self._stop.is_set() and not batch:
                    break
            channel.cancel()
        finally:
            if connection.is_open:
                try:
                    connection.close()
                except pika.exceptions.AMQPError:
                    pass

    def _flush(self, channel: Any, batch: list[tuple[int, bytes]]) -> None:
        """Store a batch, then acknowledge it (a database error leaves it unacknowledged for redelivery)."""
        try:
            self.writer.write([body for _, body in batch])
        except Exception:
            logger.exception("could not store %d events; they will be redelivered", len(batch))
            channel.basic_nack(delivery_tag=batch[-1][0], multiple=True, requeue=True)
            time.sleep(1.0)
            return
        channel.basic_ack(delivery_tag=batch[-1][0], multiple=True)
