"""Rasa's SQL tracker store with a bounded event window: a turn costs the same at message 200 as at 2.

Imported by the Rasa process (``.venv-rasa``): Rasa, SQLAlchemy and the standard library only.

Rasa's ``SQLTrackerStore`` loads every event of the conversation session on each retrieval, replays
them into a tracker, and the policies then compute states over all of them; saving counts them all
again to find the new ones, and with an event broker it retrieves the whole tracker once more. A turn
therefore cost more the longer the conversation was (82 ms at turn 5, 1 s at turn 195).

This store retrieves what the dialogue needs, whatever the conversation's length:

* the session's opening events (up to its first ``action_listen``),
* the latest value of every slot and the latest active loop set before the window (one indexed
  query; a form or a slot set 100 turns ago is still there),
* the last ``window`` events, starting at a turn boundary (``action_listen``).

Rules and memoization look a few turns back at most; the gateway logs the whole conversation. The
tracker remembers how many events came from the database, so saving writes (and streams to the event
broker) exactly the events the turn added, without counting or retrieving anything. A full tracker
(``retrieve_full_tracker``, Rasa's HTTP API) is still the whole story.

Between turns the tracker stays in memory (a bounded LRU shared by every tenant's view of the store):
a retrieve first asks the database for the conversation's newest event id (one indexed lookup) and
hands back the tracker it already holds when nothing was written since, by this process or another
replica; otherwise it reads the window again. A turn used to retrieve twice (the channel's "already
ran?" check and Rasa's own) and to parse and replay the window each time. A held tracker is dropped
when a turn changed it without saving (a failed turn), when its events outgrow the window by a turn or two, after
``IDLE_S`` without use, and within ``SWEEP_S`` of the conversation's erasure (a background sweep drops
every held tracker whose newest event id is no longer the database's).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Optional, Text

import sqlalchemy as sa
from rasa.core.brokers.pika import PikaEventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.tracker_memory import STORED_EVENTS_ATTR as _STORED
from connectors.tracker_memory import TrackerMemory
from connectors.tracker_statements import SAVED_COLUMNS, statements_for

logger = logging.getLogger(__name__)

WINDOW_ENV = "SWITCHBOARD_TRACKER_WINDOW"
# 30 events are four to six turns, more than any rule looks back. Against 60, two runs of the 200-turn
# conversation each: turns 190-200 took 0.97x / 1.07x turns 1-11 (60: 1.4x / 1.3x) and 80-83 ms (60: 92-117 ms).
DEFAULT_WINDOW = 30
_HEADER_LIMIT = 12
#: Events a held tracker may gain beyond a fresh window (one or two turns) before it is read again.
_HELD_EXTRA = 10
#: Attribute on a retrieved tracker: how many events the window held when it was read.
_LOADED = "_switchboard_loaded_events"
CACHE_ENV = "SWITCHBOARD_TRACKER_CACHE"
#: Conversations held in memory per Rasa process (0 turns the cache off).
DEFAULT_CACHE = 2000
#: The index the window's statements need besides Rasa's own on ``sender_id``: a sender's rows of one
#: type (its session starts, its slots) without walking the whole conversation. Created at start-up
#: when missing (Rasa creates the table; an existing database gains it on its first start).
EVENT_INDEX = "ix_events_sender_type_action"

def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA secure_delete=ON")  # erased conversations do not linger in free pages
    cursor.close()


def _pooled_engine(url: Any, pool_size: int, **options: Any) -> Any:
    """An engine with a small pool; a SQLite file's connections get the pragmas above and may cross threads."""
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite:
        options["connect_args"] = {"check_same_thread": False}
    engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=pool_size, max_overflow=8, **options)
    if sqlite:
        # WAL with synchronous=NORMAL: a commit no longer waits for the disk (11 % of Rasa's busy
        # time); a crashed process loses nothing committed, a power cut at most the last turns.
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class WindowedSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that retrieves a bounded window of each conversation (see the module doc).

    Args:
        window: Events kept after the session's opening and its slots (``SWITCHBOARD_TRACKER_WINDOW``).
        **kwargs: ``SQLTrackerStore``'s (dialect, host, db, …), from ``endpoints.yml``.
    """

    def __init__(self, *args: Any, window: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = int(window or os.environ.get(WINDOW_ENV) or DEFAULT_WINDOW)
        cache = os.environ.get(CACHE_ENV)
        self.memory = TrackerMemory(int(cache) if cache not in (None, "") else DEFAULT_CACHE)
        if self.engine.dialect.name == "sqlite":
            # SQLAlchemy 1.4 gives a SQLite file no pool: every retrieve and save opened a connection,
            # set its pragmas and closed it again (8 % of Rasa's busy time under load). A small pool
            # keeps them open (Rasa calls the store from its event loop and from worker threads).
            url = self.engine.url
            self.engine.dispose()
            self.engine = _pooled_engine(url, pool_size=4)
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        # Its own small pool, always in autocommit, for statements that need no transaction (the held-tracker
        # check; a save on PostgreSQL): switching a pooled psycopg2 connection in and out of autocommit
        # costs a SET round trip of its own.
        self._autocommit = _pooled_engine(self.engine.url, pool_size=2, isolation_level="AUTOCOMMIT")
        self._ensure_index()
        # PostgreSQL and SQLite: the turn's check and save as fixed statements (tracker_statements.py).
        self._statements = statements_for(self.engine.dialect.name, self.SQLEvent.__tablename__)

    def _ensure_index(self) -> None:
        """Create :data:`EVENT_INDEX` unless it exists (without it a window costs a scan of the conversation)."""
        table = self.SQLEvent.__tablename__
        statement = sa.text(f'CREATE INDEX IF NOT EXISTS {EVENT_INDEX} ON "{table}" (sender_id, type_name, action_name, id)')
        try:
            with self._autocommit.connect() as connection:
                connection.execute(statement)
        except sa.exc.DBAPIError as e:  # a replica starting at the same moment created it first
            logger.info("tracker event index not created here (%s)", e.__class__.__name__)

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The tracker of the latest session, bounded (see the module doc); None for an unknown sender."""
        if self.memory.holds(sender_id):
            # One statement outside a transaction: on PostgreSQL a session would add BEGIN and ROLLBACK
            # round trips to the turn's most common path.
            with self._autocommit.connect() as connection:
                last_id = (self._statements.newest_id(connection, sender_id) if self._statements is not None
                           else connection.execute(self._last_id_query(sender_id)).scalar())
            held = self.memory.get(sender_id, last_id, self.domain)
            if held is not None:
                return held
        # The caller holds the conversation's lock, so nothing writes it while its window is read. On
        # PostgreSQL a READ COMMITTED transaction gave each statement its own snapshot anyway: autocommit
        # reads the same and saves BEGIN and COMMIT, two round trips on every new conversation's first
        # turn. SQLite keeps one read transaction (in process: nothing to save).
        window_reads = (self._autocommit.connect() if self.engine.dialect.name == "postgresql"
                        else self.engine.begin())
        with window_reads as connection:
            rows = self._windowed_rows(connection, sender_id)
        if not rows or not self.domain:
            return None
        last_id = max(row.id for row in rows)  # the session's newest event is the conversation's newest
        events = [json.loads(row.data) for row in rows]
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        setattr(tracker, _STORED, len(tracker.events))
        setattr(tracker, _LOADED, len(tracker.events))
        self.memory.put(sender_id, tracker, last_id, self.domain, self._max_held_events(tracker))
        self.memory.start_sweeping(self._newest_ids)
        return tracker

    def _newest_ids(self, sender_ids: List[Text]) -> Dict[Text, int]:
        event = self.SQLEvent
        with self.session_scope() as session:
            return dict(session.query(event.sender_id, sa.func.max(event.id))
                        .filter(event.sender_id.in_(sender_ids)).group_by(event.sender_id).all())

    def _max_held_events(self, tracker: DialogueStateTracker) -> int:
        # Past this a held tracker is read again as a window, so the policies (whose cost grows with
        # the tracker's events) never walk much more than one. The bound counts from what the window
        # held when it was read (slots carried from long ago too).
        loaded = getattr(tracker, _LOADED, 0)
        return max(self.window + _HEADER_LIMIT, loaded) + _HELD_EXTRA

    def _last_id_query(self, sender_id: Text) -> Any:
        event = self.SQLEvent.__table__
        return sa.select(sa.func.max(event.c.id)).where(event.c.sender_id == sender_id)

    def _last_id(self, session: Any, sender_id: Text) -> Optional[int]:
        return session.execute(self._last_id_query(sender_id)).scalar()

    def _windowed_rows(self, connection: Any, sender_id: Text) -> List[Any]:
        """The window's rows (``id``, ``type_name``, ``action_name``, ``data``) in id order: three statements.

        Every statement is bounded by an index (:data:`EVENT_INDEX` and Rasa's ``sender_id``), so the
        cost does not grow with the conversation: the session's start is found among the sender's
        ``session_started`` rows, the slots carried from before the window among its slot rows.
        """
        table = self.SQLEvent.__table__
        columns = (table.c.id, table.c.type_name, table.c.action_name, table.c.data)
        # Rasa's definition of the latest session: events stamped at or after its last session_started.
        start = (sa.select(sa.func.max(table.c.timestamp))
                 .where(table.c.sender_id == sender_id, table.c.type_name == SessionStarted.type_name)
                 .scalar_subquery())
        in_session = sa.and_(table.c.sender_id == sender_id, sa.or_(table.c.timestamp >= start, start.is_(None)))
        latest = connection.execute(sa.select(*columns).where(in_session)
                                    .order_by(table.c.id.desc()).limit(self.window)).all()
        if not latest:
            return []
        latest.reverse()
        if len(latest) < self.window:  # the whole session fits
            return latest
        # Start the window at a turn boundary, so the policies see whole turns.
        first = next((i for i, row in enumerate(latest)
                      if row.type_name == "action" and row.action_name == ACTION_LISTEN_NAME), 0)
        window = latest[first:]
        header: List[Any] = []
        for row in connection.execute(sa.select(*columns).where(in_session, table.c.id < window[0].id)
                                      .order_by(table.c.id).limit(_HEADER_LIMIT)):
            header.append(row)
            if row.type_name == "action" and row.action_name == ACTION_LISTEN_NAME:
                break
        # The latest value of each slot and the latest active loop from before the window.
        lower = header[-1].id if header else 0
        newest = (sa.select(sa.func.max(table.c.id))
                  .where(table.c.sender_id == sender_id, table.c.id > lower, table.c.id < window[0].id,
                         table.c.type_name.in_(("slot", "active_loop")))
                  .group_by(table.c.type_name, table.c.action_name))
        carried = connection.execute(sa.select(*columns).where(table.c.id.in_(newest))).all()
        rows: Dict[int, Any] = {r.id: r for r in header + carried + window}
        return [rows[key] for key in sorted(rows)]

    async def create_tracker(self, sender_id: Text, append_action_listen: bool = True) -> DialogueStateTracker:
        """A new conversation's tracker, marked as holding nothing stored yet (its first save inserts all)."""
        tracker = self.init_tracker(sender_id)
        setattr(tracker, _STORED, 0)
        if append_action_listen:
            tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
        await self.save(tracker)
        return tracker

    def _adopt(self, tracker: DialogueStateTracker) -> None:
        """Hold a tracker saved Rasa's way when it is the whole stored conversation (a new one).

        Rasa creates a new conversation's tracker itself (not through ``create_tracker`` of this
        store), so its first saves went Rasa's way and the next turn read the window back. When the
        database holds exactly the tracker's events (one statement checks), it is what a retrieve
        would build: it is marked and held like a retrieved one.
        """
        if not tracker.events:
            return  # nothing stored yet (Rasa saves a new tracker before its session starts)
        table = self.SQLEvent.__table__
        query = sa.select(sa.func.max(table.c.id), sa.func.count()).where(table.c.sender_id == tracker.sender_id)
        with self._autocommit.connect() as connection:
            last_id, count = connection.execute(query).one()
        if last_id is None or count != len(tracker.events) or count > self.window + _HEADER_LIMIT:
            return  # not the whole conversation, or a long one (a full tracker): the window reads it
        setattr(tracker, _STORED, count)
        setattr(tracker, _LOADED, count)
        self.memory.put(tracker.sender_id, tracker, last_id, self.domain, self._max_held_events(tracker))

    async def _stream_new_events(self, event_broker: Any, new_events: List[Any], sender_id: Text) -> None:
        """Publish a save's events to RabbitMQ as one message, ``{"sender_id": …, "events": [event, …]}``.

        Rasa publishes one message per event; a turn adds about ten, and each one costs this process's
        event loop, the broker and the log consumer on its own. The log consumer stores every event of a
        batch as it stores Rasa's one-event messages (same key, same order). Other brokers (Kafka, SQL)
        keep Rasa's one message per event: their readers expect it.
        """
        if not isinstance(event_broker, PikaEventBroker):
            await super()._stream_new_events(event_broker, new_events, sender_id)
        elif new_events:
            event_broker.publish({"sender_id": sender_id, "events": [event.as_dict() for event in new_events]})

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store (and stream) the events added since the tracker was retrieved."""
        stored = getattr(tracker, _STORED, None)
        if stored is None and not tracker.events and self.domain:
            # A new conversation's tracker, empty: Rasa makes it (after this store's retrieve found no
            # event of the sender; with a domain that is the only None it returns) and saves it before
            # its session starts. Rasa's way would retrieve, count and commit to write nothing; marked as
            # holding nothing stored, its first events go the one-statement way below.
            self.memory.forget(tracker.sender_id)
            setattr(tracker, _STORED, 0)
            setattr(tracker, _LOADED, 0)
            return
        if stored is None:  # a tracker this store did not hand out: Rasa's own way
            self.memory.forget(tracker.sender_id)
            await super().save(tracker)
            self._adopt(tracker)
            return
        new_events = list(tracker.events)[stored:]
        if not new_events:  # nothing to write; a held tracker stays valid
            return
        if self.event_broker is not None:
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)
        rows = []
        for event in new_events:
            data = event.as_dict()
            intent = data.get("parse_data", {}).get("intent", {}).get("name")
            rows.append({"sender_id": tracker.sender_id, "type_name": event.type_name,
                         "timestamp": data.get("timestamp"), "intent_name": intent,
                         "action_name": data.get("name"), "data": json.dumps(data)})
        self.memory.forget(tracker.sender_id)  # until the write is known to have landed
        table = self.SQLEvent.__table__
        if self._statements is not None:
            # One statement, atomic on its own, that also returns the ids: one round trip instead of
            # BEGIN, INSERT, the newest-id query and COMMIT. Turns of a conversation hold its lock, so the
            # newest id returned is the conversation's newest. On PostgreSQL the rows go as one array per
            # column into a statement prepared once per connection (tracker_statements.py).
            columns = [[row[name] for row in rows] for name in SAVED_COLUMNS]
            with self._autocommit.connect() as connection:
                last_id = max(self._statements.insert(connection, columns))
        else:
            with self.session_scope() as session:
                # One multi-row insert instead of the ORM's one statement (and identity map) per event.
                session.execute(table.insert(), rows)
                last_id = self._last_id(session, tracker.sender_id)
                session.commit()
        setattr(tracker, _STORED, stored + len(new_events))
        self.memory.put(tracker.sender_id, tracker, last_id, self.domain, self._max_held_events(tracker))
