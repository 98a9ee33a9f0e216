"""Run with .venv-rasa: a long conversation through the windowed tracker store and Rasa's own, compared.

Prints one JSON object: what the windowed store retrieved and stored against the plain SQL store, and
what its in-memory trackers did when another replica wrote, a turn failed, and a conversation was erased.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet,
                                     UserUttered)

from connectors.windowed_tracker_store import EVENT_INDEX, WindowedSQLTrackerStore

DOMAIN = Domain.from_dict({
    "intents": ["greet", "inform"],
    "slots": {"order_number": {"type": "text", "mappings": [{"type": "custom"}]},
              "kb_answered": {"type": "bool", "mappings": [{"type": "custom"}]},
              "requested_slot": {"type": "text", "mappings": [{"type": "custom"}]}},
    "forms": {"order_form": {"required_slots": ["order_number"]}},
    "responses": {"utter_greet": [{"text": "hi"}]},
})


def store_options(postgres_db: str | None) -> dict:
    """The tracker store's endpoint options: a SQLite file, or a PostgreSQL database on the machine."""
    if postgres_db:
        return {"dialect": "postgresql", "host": "127.0.0.1", "port": 5432, "username": "postgres", "db": postgres_db}
    return {"dialect": "sqlite", "db": str(Path(tempfile.mkdtemp()) / "t.db")}


async def main(turns: int, window: int, postgres_db: str | None = None) -> dict:
    options = store_options(postgres_db)
    windowed = WindowedSQLTrackerStore(DOMAIN, window=window, **options)
    plain = SQLTrackerStore(DOMAIN, **options)
    sender = "drill"
    tracker = await windowed.get_or_create_tracker(sender)
    opening = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    for event in opening:
        tracker.update(event)
    await windowed.save(tracker)
    sizes = []
    for n in range(turns):
        tracker = await windowed.retrieve(sender)
        sizes.append(len(tracker.events))
        tracker.update(UserUttered(f"message {n}", {"name": "inform", "confidence": 1.0}))
        if n == 1:  # set early, never again: must survive any window
            tracker.update(SlotSet("order_number", "A1234"))
            tracker.update(ActiveLoop("order_form"))
        tracker.update(SlotSet("kb_answered", n % 2 == 0))
        tracker.update(ActionExecuted("utter_greet"))
        tracker.update(BotUttered(f"reply {n}"))
        tracker.update(ActionExecuted("action_listen"))
        await windowed.save(tracker)
    windowed_tracker = await windowed.retrieve(sender)
    full = await plain.retrieve(sender)
    memory = await memory_drill(windowed, options)
    second = await second_session(windowed, window)
    return {
        "memory": memory,
        "second_session": second,
        "event_index": any(index["name"] == EVENT_INDEX for index in sa.inspect(windowed.engine).get_indexes("events")),
        "stored_events": len(full.events),
        "expected_events": 1 + len(opening) + turns * 5,  # Rasa's first action_listen, the opening, 5 a turn
        "retrieved_sizes": [sizes[0], sizes[len(sizes) // 2], sizes[-1]],
        "slots_match": windowed_tracker.current_slot_values() == full.current_slot_values(),
        "slots": windowed_tracker.current_slot_values(),
        "active_loop": windowed_tracker.active_loop_name,
        "latest_message": windowed_tracker.latest_message.text,
        "first_event": windowed_tracker.events[0].type_name,
    }


async def second_session(store: WindowedSQLTrackerStore, window: int) -> list[str]:
    """Texts of the user messages retrieved after a long first session and a short second one."""
    sender = "two-sessions"
    tracker = await store.get_or_create_tracker(sender)
    for session, turns in (("first", window), ("second", 2)):
        tracker = await store.retrieve(sender)
        for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
            tracker.update(event)
        for n in range(turns):
            tracker.update(UserUttered(f"{session} {n}", {"name": "inform", "confidence": 1.0}))
            tracker.update(ActionExecuted("utter_greet"))
            tracker.update(ActionExecuted("action_listen"))
        await store.save(tracker)
        store.memory.forget(sender)  # read from the database, not the held tracker
    tracker = await store.retrieve(sender)
    return [event.text for event in tracker.events if isinstance(event, UserUttered)]


async def memory_drill(store: WindowedSQLTrackerStore, options: dict) -> dict:
    """What the held trackers do when nothing changed, another replica wrote, a turn failed, an erasure."""
    sender = "memory"
    await store.get_or_create_tracker(sender)  # a new conversation, saved Rasa's way
    tracker = await store.retrieve(sender)
    tracker.update(UserUttered("hello", {"name": "greet", "confidence": 1.0}))
    await store.save(tracker)
    unchanged_is_held = (await store.retrieve(sender)) is tracker
    # Another replica (its own store and memory) adds a turn: this process must read it.
    other = WindowedSQLTrackerStore(DOMAIN, **options)
    theirs = await other.retrieve(sender)
    theirs.update(UserUttered("from the other replica", {"name": "inform", "confidence": 1.0}))
    await other.save(theirs)
    after_other = await store.retrieve(sender)
    other_replica_seen = after_other.latest_message.text
    # A turn that failed after changing the tracker (never saved) must not leak into the next turn.
    after_other.update(UserUttered("never saved", {"name": "inform", "confidence": 1.0}))
    after_failure = await store.retrieve(sender)
    # A domain swap (a tenant's new model) rebuilds the tracker with the new domain's slots.
    store.domain = Domain.from_dict({**DOMAIN.as_dict(), "slots": {**DOMAIN.as_dict()["slots"],
                                     "new_slot": {"type": "text", "mappings": [{"type": "custom"}]}}})
    after_swap = await store.retrieve(sender)
    held_before_erasure = len(store.memory)
    # Erasure deletes the rows behind the store's back: the sweep drops the held tracker.
    with other.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM events WHERE sender_id = :sender"), {"sender": sender})
    held_after_sweep = store.memory.sweep(store._newest_ids)
    # A new conversation's tracker made and saved Rasa's way (not by this store) is held once the
    # database holds exactly its events; a tracker missing stored events is not.
    fresh = store.init_tracker("rasa-made")
    for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
        fresh.update(event)
    await store.save(fresh)
    rasa_made_is_held = (await store.retrieve("rasa-made")) is fresh
    partial = store.init_tracker("rasa-made")
    partial.update(UserUttered("a tracker that lacks the stored events", {"name": "greet", "confidence": 1.0}))
    await store.save(partial)
    again = await store.retrieve("rasa-made")
    # Rasa's processor makes a new conversation's tracker empty and saves it before its session starts:
    # that save writes nothing, and the turn's save then stores every event once and holds the tracker.
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001 - SQLAlchemy's event signature
        statements.append(statement)

    for engine in {store.engine, store._autocommit}:
        sa.event.listen(engine, "before_cursor_execute", count)
    empty = store.init_tracker("new-empty")
    await store.save(empty)
    empty_save_statements = len(statements)
    for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
                  UserUttered("hi", {"name": "greet", "confidence": 1.0})):
        empty.update(event)
    await store.save(empty)
    with store.engine.connect() as connection:
        new_empty_stored = [row[0] for row in connection.execute(
            sa.text("SELECT type_name FROM events WHERE sender_id = 'new-empty' ORDER BY id"))]
    return {
        "empty_save_statements": empty_save_statements,
        "new_empty_stored": new_empty_stored,
        "new_empty_is_held": (await store.retrieve("new-empty")) is empty,
        "rasa_made_is_held": rasa_made_is_held,
        "partial_not_held": again is not partial,
        "partial_read_back": [e.type_name for e in again.events],
        "unchanged_is_held": unchanged_is_held,
        "other_replica_seen": other_replica_seen,
        "after_failure": after_failure.latest_message.text,
        "after_failure_is_new_object": after_failure is not after_other,
        "swap_has_new_slot": "new_slot" in after_swap.slots,
        "held_before_erasure": held_before_erasure,
        "held_after_sweep": held_after_sweep,
        "after_erasure": None if await store.retrieve(sender) is None else "still there",
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:4]))))
