"""Writes Rasa's event stream (RabbitMQ, published by Rasa's Pika event broker) into the conversation log.

At scale several Rasa replicas publish every tracker event to the ``rasa-exchange`` fanout exchange;
this consumer reads the durable queue bound to it and stores each event in ``conversation_events``.
A message is one event (Rasa's shape) or a turn's events (``{"sender_id", "events": [...]}``, what
``connectors/windowed_tracker_store.py`` publishes: one message per turn instead of about ten).

* **Idempotent** (``gateway/events/event_log_writer.py``): an event's key is the SHA-256 of its canonical
  JSON, unique in the table, so a message the broker redelivers (after a consumer crash or a broker
  restart) or a replayed queue is stored once.
* **At least once**: messages are acknowledged only after the transaction that stores them committed.
* **Survives broker restarts**: a lost connection is re-opened with backoff; unacknowledged messages come
  back and are de-duplicated.
* **Never resurrects erased data**: events of conversations the gateway does not know (erased, or not
  started through the gateway) are acknowledged and skipped.
* Malformed messages are acknowledged, counted and logged; they never block the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pika
import pika.exceptions
from sqlalchemy.orm import Session, sessionmaker

from gateway.events.event_log_writer import ConsumerStats, EventLogWriter

logger = logging.getLogger(__name__)

#: Rasa's fanout exchange (``rasa.core.brokers.pika.RABBITMQ_EXCHANGE``).
RASA_EXCHANGE = "rasa-exchange"
DEFAULT_QUEUE = "switchboard_events"


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
