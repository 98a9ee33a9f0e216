"""The broker path of the conversation log, against the machine's real RabbitMQ.

Rasa's own tracker store and Pika event broker publish (in ``.venv-rasa``); the log consumer writes
``conversation_events``. Covered: every event stored once and in order, replays, a broker restart with
the consumer running, messages that wait in the durable queue across a restart, malformed messages and
events of unknown (e.g. erased) conversations.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pika
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import ConversationEvent
from gateway.events.event_log_writer import event_key
from gateway.events.log_consumer import RabbitEventLogConsumer
from gateway.settings import PROJECT_ROOT
from tests.conftest import service_up
from gateway.stores.conversation_store import ConversationStore
from gateway.stores.tenant_store import TenantStore

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
PUBLISHER = PROJECT_ROOT / "tests" / "support" / "rasa_broker_publisher.py"



pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not service_up(5672), reason="RabbitMQ is NOT running on 127.0.0.1:5672: the broker path is untested"),
]


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """A queue and exchange of this test only, deleted afterwards."""
    suffix = uuid.uuid4().hex[:8]
    queue, exchange = f"sb_test_events_{suffix}", f"sb-test-exchange-{suffix}"
    yield queue, exchange
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    connection.close()


@pytest.fixture
def conversations(sessions: sessionmaker[Session]) -> list[str]:
    """Three gateway conversations of tenant ``northwind``."""
    TenantStore(sessions).ensure_tenant("northwind", "Northwind Goods")
    store = ConversationStore(sessions)
    return [store.create_conversation("northwind", "web") for _ in range(3)]


def publish_with_rasa(queue: str, exchange: str, spec: list[dict[str, object]],
                      store: str = "rasa") -> list[dict[str, object]]:
    """Publish conversations through a tracker store (Rasa's in-memory one, or the product's windowed SQL
    store) and Rasa's PikaEventBroker; returns the bodies published."""
    result = subprocess.run([str(RASA_PYTHON), str(PUBLISHER)], input=json.dumps(
        {"queue": queue, "exchange": exchange, "conversations": spec, "store": store}), capture_output=True,
        text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(PROJECT_ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in reversed(result.stdout.splitlines()) if line.startswith("PUBLISHED "))
    return json.loads(line.removeprefix("PUBLISHED "))


def republish(exchange: str, bodies: list[dict[str, object]] | list[bytes]) -> None:
    """Publish raw messages to the exchange, as a replay of a queue would."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for body in bodies:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        channel.basic_publish(exchange, "", raw, pika.BasicProperties(delivery_mode=2))
    connection.close()


def queue_depth(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    depth = connection.channel().queue_declare(queue, durable=True, passive=True).method.message_count
    connection.close()
    return depth


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class RunningConsumer:
    """A consumer on its own thread."""

    def __init__(self, sessions: sessionmaker[Session], queue: str, exchange: str) -> None:
        self.consumer = RabbitEventLogConsumer(sessions, AMQP_URL, queue, exchange, batch_size=50,
                                               batch_wait_s=0.1, max_backoff_s=1.0)
        self.thread = threading.Thread(target=self.consumer.run, daemon=True)

    def __enter__(self) -> RabbitEventLogConsumer:
        self.thread.start()
        assert self.consumer.connected.wait(30), "the consumer did not connect"
        return self.consumer

    def __exit__(self, *_: object) -> None:
        self.consumer.stop()
        self.thread.join(30)


def stored(sessions: sessionmaker[Session]) -> list[ConversationEvent]:
    with sessions() as session:
        return list(session.execute(select(ConversationEvent).order_by(ConversationEvent.id)).scalars())


def test_every_rasa_event_is_stored_once_in_order(sessions: sessionmaker[Session], names: tuple[str, str],
                                                  conversations: list[str]) -> None:
    queue, exchange = names
    with RunningConsumer(sessions, queue, exchange) as consumer:
        published = publish_with_rasa(queue, exchange, [{"sender_id": c, "tenant_id": "northwind", "turns": 3}
                                                        for c in conversations[:2]])
        assert len(published) == 2 * (1 + 3 * 4)  # a new tracker starts with action_listen
        wait_for(lambda: consumer.stats.stored == len(published), what="all events stored")
    rows = stored(sessions)
    assert [r.event_key for r in rows] == [event_key(b) for b in published]
    for conversation in conversations[:2]:
        own = [r for r in rows if r.conversation_id == conversation]
        assert [r.event for r in own] == [b["event"] for b in published if b["sender_id"] == conversation]
        assert [r.event for r in own][1:] == ["user", "action", "bot", "action"] * 3
        assert [r.timestamp for r in own] == sorted(r.timestamp for r in own)
        assert {r.tenant_id for r in own} == {"northwind"}
        assert [r.body.get("text") for r in own if r.event == "user"] == [f"message {i} of {conversation}" for i in range(3)]
    assert {r.model_id for r in rows if r.event != "action" or r.body.get("name") != "action_listen"} >= {"test-model"}
    assert queue_depth(queue) == 0


def test_the_product_tracker_stores_one_message_per_turn_is_stored_as_rasas_events(
        sessions: sessionmaker[Session], names: tuple[str, str], conversations: list[str]) -> None:
    queue, exchange = names
    with RunningConsumer(sessions, queue, exchange) as consumer:
        published = publish_with_rasa(queue, exchange, [{"sender_id": conversations[0], "turns": 3}], store="windowed")
        # One message per save: the new tracker's (its first action_listen), then one per turn.
        assert [len(b["events"]) for b in published] == [1, 4, 4, 4]
        events = [{"sender_id": b["sender_id"], **e} for b in published for e in b["events"]]
        wait_for(lambda: consumer.stats.stored == len(events), what="every event of every turn stored")
        republish(exchange, events[:6])  # the same events as Rasa's one-event messages: already stored
        wait_for(lambda: consumer.stats.duplicates == 6, what="one-event replays seen")
    rows = stored(sessions)
    assert [r.event_key for r in rows] == [event_key(e) for e in events]
    assert [r.event for r in rows] == ["action"] + ["user", "action", "bot", "action"] * 3
    assert [r.body.get("text") for r in rows if r.event == "user"] == [f"message {i} of {conversations[0]}"
                                                                      for i in range(3)]
    assert consumer.stats.malformed == 0 and queue_depth(queue) == 0


def test_replayed_messages_are_not_stored_again(sessions: sessionmaker[Session], names: tuple[str, str],
                                                conversations: list[str]) -> None:
    queue, exchange = names
    with RunningConsumer(sessions, queue, exchange) as consumer:
        published = publish_with_rasa(queue, exchange, [{"sender_id": conversations[0], "turns": 5}])
        wait_for(lambda: consumer.stats.stored == len(published), what="first delivery")
        republish(exchange, published)  # the whole stream again
        republish(exchange, published[:7])  # and part of it once more
        wait_for(lambda: consumer.stats.duplicates == len(published) + 7, what="replays seen")
    assert len(stored(sessions)) == len(published) == 1 + 5 * 4
    with sessions() as session:
        distinct = session.execute(select(func.count(func.distinct(ConversationEvent.event_key)))).scalar_one()
    assert distinct == len(published)


def test_malformed_messages_and_unknown_conversations_do_not_block_the_queue(
        sessions: sessionmaker[Session], names: tuple[str, str], conversations: list[str]) -> None:
    queue, exchange = names
    with RunningConsumer(sessions, queue, exchange) as consumer:
        republish(exchange, [b"{not json", b"[]", b'{"event": "user"}', "\u00ff".encode("latin-1")])
        stranger = publish_with_rasa(queue, exchange, [{"sender_id": "not-a-gateway-conversation", "turns": 1}])
        ours = publish_with_rasa(queue, exchange, [{"sender_id": conversations[0], "turns": 1}])
        wait_for(lambda: consumer.stats.stored == len(ours), what="the good events")
        wait_for(lambda: consumer.stats.malformed == 4 and consumer.stats.skipped == len(stranger), what="counters")
    assert {r.conversation_id for r in stored(sessions)} == {conversations[0]}
    assert queue_depth(queue) == 0


def test_events_arriving_after_an_erasure_are_not_stored(sessions: sessionmaker[Session], names: tuple[str, str],
                                                         conversations: list[str]) -> None:
    from gateway.privacy.erasure import ErasureService, RasaTrackerEraser

    queue, exchange = names
    with RunningConsumer(sessions, queue, exchange) as consumer:
        first = publish_with_rasa(queue, exchange, [{"sender_id": conversations[0], "turns": 1}])
        wait_for(lambda: consumer.stats.stored == len(first), what="the first turn")
        ErasureService(sessions, RasaTrackerEraser(None)).erase_conversation("northwind", conversations[0], "test")
        late = publish_with_rasa(queue, exchange, [{"sender_id": conversations[0], "turns": 1}])
        wait_for(lambda: consumer.stats.skipped == len(late), what="the late events to be skipped")
    assert stored(sessions) == []


def _rabbitmqctl(*args: str) -> None:
    result = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def restartable_broker() -> Iterator[Callable[[], None]]:
    """Stops and starts the RabbitMQ application; always leaves it running."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is NOT available: the broker-restart drill is untested")

    def restart() -> None:
        _rabbitmqctl("stop_app")
        time.sleep(1.0)
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")

    try:
        yield restart
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], capture_output=True, timeout=120)
        subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, timeout=120)


def test_consumer_survives_a_broker_restart_and_queued_messages_survive_it_too(
        sessions: sessionmaker[Session], names: tuple[str, str], conversations: list[str],
        restartable_broker: Callable[[], None]) -> None:
    queue, exchange = names
    with RunningConsumer(sessions, queue, exchange) as consumer:
        before = publish_with_rasa(queue, exchange, [{"sender_id": conversations[0], "turns": 2}])
        wait_for(lambda: consumer.stats.stored == len(before), what="events before the restart")
        reconnects = consumer.stats.reconnects
        restartable_broker()
        wait_for(lambda: consumer.stats.reconnects > reconnects and consumer.connected.is_set(), timeout_s=90,
                 what="the consumer to reconnect")
        after = publish_with_rasa(queue, exchange, [{"sender_id": conversations[1], "turns": 2}])
        wait_for(lambda: consumer.stats.stored == len(before) + len(after), what="events after the restart")

    # Nobody consuming: messages wait in the durable queue, survive a restart, and are stored once later.
    waiting = publish_with_rasa(queue, exchange, [{"sender_id": conversations[2], "turns": 3}])
    assert queue_depth(queue) == len(waiting)
    restartable_broker()
    assert queue_depth(queue) == len(waiting)
    with RunningConsumer(sessions, queue, exchange) as consumer:
        wait_for(lambda: consumer.stats.stored == len(waiting), what="the waiting events")
    rows = stored(sessions)
    assert len(rows) == len(before) + len(after) + len(waiting)
    assert len({r.event_key for r in rows}) == len(rows)
