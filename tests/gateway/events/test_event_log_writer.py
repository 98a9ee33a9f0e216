"""The log consumer's writer stores a batch in one statement, once per event, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import ConversationEvent
from gateway.events.event_log_writer import EventLogWriter, event_key
from gateway.stores.conversation_store import ConversationStore
from tests.conftest import migrated_sessions


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    yield from migrated_sessions(request.param, tmp_path, "sb_eventlog", ("northwind",))


def _event(conversation: str, n: int) -> bytes:
    return json.dumps({"sender_id": conversation, "event": "user", "timestamp": 1000.0 + n, "text": f"message {n}",
                       "metadata": {"model_id": "m1"}}).encode()


def test_a_batch_is_stored_in_order_once_per_event(sessions: sessionmaker[Session]) -> None:
    conversation = ConversationStore(sessions).create_conversation("northwind", "web")
    writer = EventLogWriter(sessions)
    first, second, third = (_event(conversation, n) for n in range(3))
    # The same event twice in one batch, one event of an unknown conversation, one malformed message.
    writer.write([first, second, first, _event("gone", 9), b"\xff not json", third])
    assert (writer.stats.stored, writer.stats.duplicates, writer.stats.skipped, writer.stats.malformed) == (3, 1, 1, 1)
    writer.write([second, third])  # redelivered
    assert (writer.stats.stored, writer.stats.duplicates) == (3, 3)
    with sessions() as session:
        rows = list(session.execute(select(ConversationEvent).order_by(ConversationEvent.id)).scalars())
    assert [r.event_key for r in rows] == [event_key(json.loads(e)) for e in (first, second, third)]
    assert {(r.tenant_id, r.model_id, r.event) for r in rows} == {("northwind", "m1", "user")}
    assert [r.body["text"] for r in rows] == ["message 0", "message 1", "message 2"]


def test_a_batch_of_only_unknown_conversations_writes_nothing(sessions: sessionmaker[Session]) -> None:
    writer = EventLogWriter(sessions)
    writer.write([_event("erased-1", 0), _event("erased-2", 1)])
    assert (writer.stats.stored, writer.stats.skipped) == (0, 2)


def test_a_turns_message_stores_each_of_its_events_as_rasa_would_have_published_it(
        sessions: sessionmaker[Session]) -> None:
    conversation = ConversationStore(sessions).create_conversation("northwind", "web")
    writer = EventLogWriter(sessions)
    singles = [json.loads(_event(conversation, n)) for n in range(3)]
    turn = {"sender_id": conversation, "events": [{k: v for k, v in e.items() if k != "sender_id"} for e in singles]}
    bad = [{"sender_id": conversation, "events": "not a list"},
           {"sender_id": conversation, "events": [{"text": "an event without its type"}]},
           {"events": [{"event": "user"}]}]
    writer.write([json.dumps(turn).encode(), *(json.dumps(b).encode() for b in bad)])
    assert (writer.stats.stored, writer.stats.malformed) == (3, 3)
    # The same events as Rasa's one-event messages (a replica publishing the old way) are the same events.
    writer.write([json.dumps(e).encode() for e in singles] + [json.dumps(turn).encode()])
    assert (writer.stats.stored, writer.stats.duplicates) == (3, 6)
    with sessions() as session:
        rows = list(session.execute(select(ConversationEvent).order_by(ConversationEvent.id)).scalars())
    assert [r.event_key for r in rows] == [event_key(e) for e in singles]
    assert [r.body["text"] for r in rows] == ["message 0", "message 1", "message 2"]


def test_messages_no_database_could_store_are_counted_malformed_and_the_rest_of_the_batch_is_stored(
        sessions: sessionmaker[Session]) -> None:
    conversation = ConversationStore(sessions).create_conversation("northwind", "web")
    writer = EventLogWriter(sessions)
    hostile = [b'{"sender_id": "%s", "event": "user", "text": "\\ud800 lone surrogate"}' % conversation.encode(),
               b'{"sender_id": "a\\u0000b", "event": "user"}',
               b'{"sender_id": "%s", "event": "user", "timestamp": "soon"}' % conversation.encode()]
    writer.write([*hostile, _event(conversation, 1)])  # raising here would leave the batch unacknowledged forever
    assert (writer.stats.stored, writer.stats.malformed) == (1, 3)


class _HeldTrackerEraser:
    """Rasa's tracker part of an erasure, held open until released (the erasure's transaction with it)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def erase(self, _sender_ids: list[str]) -> int:
        self.entered.set()
        assert self.release.wait(30)
        return 0

    def checkpoint(self) -> None:
        pass


@pytest.fixture
def postgres_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """PostgreSQL only: SQLite runs one writer at a time, so there is no race to lose."""
    yield from migrated_sessions("postgresql", tmp_path, "sb_eventlog_race", ("northwind",))


def test_a_batch_racing_an_erasure_never_outlives_it(postgres_sessions: sessionmaker[Session]) -> None:
    from gateway.privacy.erasure import ErasureService

    sessions = postgres_sessions
    conversation = ConversationStore(sessions).create_conversation("northwind", "web")
    writer, tracker = EventLogWriter(sessions), _HeldTrackerEraser()
    erasure = threading.Thread(target=ErasureService(sessions, tracker).erase_conversation,
                               args=("northwind", conversation, "test"))
    erasure.start()
    assert tracker.entered.wait(30)  # the conversation's events are deleted, the erasure not yet committed
    late = threading.Thread(target=writer.write, args=([_event(conversation, 7)],))
    late.start()
    try:
        late.join(0.5)
        assert late.is_alive(), "the batch did not wait for the erasure holding its conversation"
    finally:
        tracker.release.set()
        erasure.join(30)
        late.join(30)
    assert (writer.stats.stored, writer.stats.skipped) == (0, 1)
    with sessions() as session:
        assert session.execute(select(ConversationEvent)).first() is None
