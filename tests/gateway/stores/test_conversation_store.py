"""The conversation log: order, idempotency by client id, tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import update

from gateway.db.models import Conversation, Sender
from gateway.stores.conversation_store import (
    ConversationNotFoundError,
    ConversationStore,
    DuplicateClientIdError,
)
from tests.conftest import migrated_sessions


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    """The store on both backends (PostgreSQL writes a message or a turn in one statement, SQLite in several)."""
    for sessions in migrated_sessions(request.param, tmp_path, "conversations"):
        yield ConversationStore(sessions)


def test_messages_come_back_in_order_with_their_payloads(store: ConversationStore) -> None:
    conversation = store.create_conversation("acme", "web")
    first = store.append("acme", conversation, Sender.CUSTOMER, "hi", client_id="c1")
    store.append("acme", conversation, Sender.BOT, "hello!", {"buttons": [{"title": "A", "payload": "/a"}]},
                 in_reply_to=first.id)
    history = store.history("acme", conversation)
    assert [(m.seq, m.sender, m.text) for m in history] == [(1, Sender.CUSTOMER, "hi"), (2, Sender.BOT, "hello!")]
    assert history[1].payload == {"buttons": [{"title": "A", "payload": "/a"}]}
    assert [r.text for r in store.replies_to("acme", first.id)] == ["hello!"]


def test_same_client_id_is_stored_once(store: ConversationStore) -> None:
    conversation = store.create_conversation("acme", "web")
    store.append("acme", conversation, Sender.CUSTOMER, "hi", client_id="c1")
    with pytest.raises(DuplicateClientIdError):
        store.append("acme", conversation, Sender.CUSTOMER, "hi", client_id="c1")
    assert len(store.history("acme", conversation)) == 1


def test_other_tenant_cannot_read_or_write(store: ConversationStore) -> None:
    conversation = store.create_conversation("acme", "web")
    store.append("acme", conversation, Sender.CUSTOMER, "private")
    with pytest.raises(ConversationNotFoundError):
        store.history("globex", conversation)
    with pytest.raises(ConversationNotFoundError):
        store.append("globex", conversation, Sender.CUSTOMER, "intrusion")
    assert [m.text for m in store.history("acme", conversation)] == ["private"]


def test_concurrent_appends_get_distinct_sequence_numbers(store: ConversationStore) -> None:
    conversation = store.create_conversation("acme", "web")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: store.append("acme", conversation, Sender.CUSTOMER, f"m{i}"), range(40)))
    history = store.history("acme", conversation)
    assert [m.seq for m in history] == list(range(1, 41))
    assert sorted(m.text for m in history) == sorted(f"m{i}" for i in range(40))


def test_unknown_conversation(store: ConversationStore) -> None:
    assert not store.exists("acme", "no-such-id")
    with pytest.raises(ConversationNotFoundError):
        store.append("acme", "no-such-id", Sender.CUSTOMER, "hi")


def test_a_turn_is_recorded_whole_in_order_or_not_at_all(store: ConversationStore) -> None:
    conversation = store.create_conversation("acme", "web")
    customer = store.append("acme", conversation, Sender.CUSTOMER, "where is my order?")
    racer = store.append("acme", conversation, Sender.SYSTEM, "an agent note")  # another writer in between
    recorded = store.record_turn("acme", conversation, customer.id, {"intent": {"name": "order_status"}}, "m1",
                                 [(Sender.BOT, "Which order?", None), (Sender.BOT, None, {"buttons": []})])
    replies = recorded.replies
    assert recorded.owner == "bot"
    assert [r.seq for r in replies] == [racer.seq + 1, racer.seq + 2]
    history = store.history("acme", conversation)
    assert [m.seq for m in history] == [1, 2, 3, 4]
    assert history[0].nlu == {"intent": {"name": "order_status"}} and history[0].model_id == "m1"
    assert [r.text for r in store.replies_to("acme", customer.id)] == ["Which order?", None]
    # Another tenant's turn on this conversation stores nothing at all, not even the annotation.
    with pytest.raises(ConversationNotFoundError):
        store.record_turn("globex", conversation, customer.id, {"intent": {"name": "x"}}, "m2",
                          [(Sender.BOT, "no", None)])
    assert len(store.history("acme", conversation)) == 4
    assert store.history("acme", conversation)[0].model_id == "m1"


def test_writes_say_who_owned_the_conversation_and_silence_replies_written_after_a_takeover(
        store: ConversationStore) -> None:
    sessions = store._sessions  # to play the agent who takes the conversation
    conversation = store.create_conversation("acme", "web")
    customer, owner = store.append_with_owner("acme", conversation, Sender.CUSTOMER, "hi")
    assert owner == "bot"
    with sessions.begin() as session:  # an agent takes the conversation while the bot thinks
        session.execute(update(Conversation).where(Conversation.id == conversation).values(handoff_state="human"))
    recorded = store.record_turn("acme", conversation, customer.id, {"intent": {"name": "greet"}}, "m1",
                                 [(Sender.BOT, "Hello!", {"buttons": []}), (Sender.BOT, "Anything else?", None)],
                                 silence_if_owned=True)
    assert recorded.owner == "human"
    assert [r.payload for r in recorded.replies] == [{"buttons": [], "suppressed": "handoff"},
                                                     {"suppressed": "handoff"}]
    assert [m.payload for m in store.replies_to("acme", customer.id)] == [r.payload for r in recorded.replies]
    # Without the flag the replies are stored as given (the owner still comes back).
    second, owner = store.append_with_owner("acme", conversation, Sender.CUSTOMER, "hello?")
    assert owner == "human"
    plain = store.record_turn("acme", conversation, second.id, {}, "m1", [(Sender.BOT, "Hi", None)])
    assert plain.owner == "human" and plain.replies[0].payload is None
    # A turn without replies still stores its annotation, and says who owns the conversation.
    silent = store.record_turn("acme", conversation, second.id, {"intent": {"name": "bye"}}, "m2", [])
    assert silent.replies == [] and silent.owner == "human"
    assert [m.nlu for m in store.history("acme", conversation) if m.id == second.id] == [{"intent": {"name": "bye"}}]


def test_a_new_conversation_is_the_bots_with_its_defaults_and_a_fresh_id(store: ConversationStore) -> None:
    first, second = store.create_conversation("acme", "api"), store.create_conversation("acme", "api")
    assert first != second and store.exists("acme", first) and not store.exists("other", first)
    with store._sessions() as session:
        row = session.get(Conversation, first)
        assert row is not None
        assert (row.tenant_id, row.channel, row.last_seq, row.handoff_state, row.active_handoff_id) == (
            "acme", "api", 0, "bot", None)
        assert row.created_at is not None and row.updated_at is not None
    message, owner = store.append_with_owner("acme", first, Sender.CUSTOMER, "hi")
    assert (message.seq, owner) == (1, "bot")
