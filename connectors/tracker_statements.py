"""The tracker store's two per-turn statements as fixed SQL: prepared once per connection on PostgreSQL.

Imported by the Rasa process (``.venv-rasa``): the DB-API drivers and the standard library only.

Every turn runs the held-tracker check (the conversation's newest event id) and the save (the turn's
events). Through SQLAlchemy 1.4 each cost more in Python than in the database: building, compiling and
reading back a ``select()`` and an ``insert()`` per turn. These classes send fixed SQL text straight to
the driver on an autocommit connection; each statement is atomic on its own.

On PostgreSQL, Rasa's driver psycopg2 sends statements as text, so the server also parsed and planned
them anew every time (the save carries the turn's events, kilobytes of literal arrays). ``PREPARE``
makes it parse and plan each once per connection; a turn then sends ``EXECUTE`` with its parameters
(measured on this machine: 0.20 → 0.10 ms for the check, 0.64 → 0.51 ms for a save of eight events).
A connection prepares both the first time it is used for them (one round trip, remembered in the
pool's record of the connection, which lives as long as the server session). A server that lost them
(``DISCARD ALL``, a pooler that moved the session) answers "prepared statement does not exist": they
are prepared again and the statement runs once more. ``SWITCHBOARD_TRACKER_PREPARE=0`` sends the plain
statements instead, for a transaction-mode pooler (PgBouncer) that cannot keep named statements.

On SQLite (``make run``'s default) SQLite's own statement cache keeps the fixed statements compiled.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Text

PREPARE_ENV = "SWITCHBOARD_TRACKER_PREPARE"
#: The event columns a save writes, in the order of the insert's columns.
SAVED_COLUMNS = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
_ARRAY_TYPES = ("text[]", "text[]", "float8[]", "text[]", "text[]", "text[]")
_NEWEST = "sb_newest_event_id"
_INSERT = "sb_insert_events"
#: Key in a pooled connection's ``info``: its server session has both statements prepared.
_PREPARED_KEY = "switchboard_tracker_prepared"
#: SQLSTATE of "prepared statement does not exist".
_MISSING_STATEMENT = "26000"


def statements_for(dialect: Text, table: Text) -> Optional["TrackerStatements"]:
    """The statements for an engine's dialect; None where the store keeps SQLAlchemy's generic way."""
    if dialect == "postgresql":
        return PostgresTrackerStatements(table, prepare=prepare_enabled())
    if dialect == "sqlite":
        return SqliteTrackerStatements(table)
    return None


def prepare_enabled() -> bool:
    """Whether the environment allows named prepared statements (see the module doc)."""
    return os.environ.get(PREPARE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def newest_id_sql(table: Text, placeholder: Text) -> Text:
    """The conversation's newest event id."""
    return f'SELECT max(id) FROM "{table}" WHERE sender_id = {placeholder}'


def insert_events_sql(table: Text, placeholders: Sequence[Text]) -> Text:
    """PostgreSQL: insert a save's events from one array per column, returning their ids (in order)."""
    columns = ", ".join(SAVED_COLUMNS)
    arrays = ", ".join(f"{p}::{t}" for p, t in zip(placeholders, _ARRAY_TYPES))
    return (f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM unnest({arrays}) '
            f"WITH ORDINALITY AS e({columns}, n) ORDER BY n RETURNING id")


class TrackerStatements:
    """The check and the save as fixed SQL on an autocommit SQLAlchemy connection (base of the dialects').

    Each call runs on a driver cursor of its own, closed here; the dialects only execute and fetch.
    """

    def newest_id(self, connection: Any, sender_id: Text) -> Optional[int]:
        """The conversation's newest event id (None: no event)."""
        cursor = connection.connection.cursor()
        try:
            rows = self._newest(cursor, connection, sender_id)
        finally:
            cursor.close()
        return rows[0][0] if rows else None

    def insert(self, connection: Any, columns: List[List[Any]]) -> List[int]:
        """Insert a save's events (one list per :data:`SAVED_COLUMNS` entry); their ids."""
        cursor = connection.connection.cursor()
        try:
            return [row[0] for row in self._insert(cursor, connection, columns)]
        finally:
            cursor.close()

    def _newest(self, cursor: Any, connection: Any, sender_id: Text) -> List[Any]:
        raise NotImplementedError

    def _insert(self, cursor: Any, connection: Any, columns: List[List[Any]]) -> List[Any]:
        raise NotImplementedError


class SqliteTrackerStatements(TrackerStatements):
    """SQLite: the save is one multi-row ``INSERT … RETURNING id`` (SQLite 3.35+)."""

    def __init__(self, table: Text) -> None:
        self._table = table
        self._newest_sql = newest_id_sql(table, "?")
        self._row = "(" + ", ".join("?" * len(SAVED_COLUMNS)) + ")"

    def _newest(self, cursor: Any, connection: Any, sender_id: Text) -> List[Any]:
        return cursor.execute(self._newest_sql, (sender_id,)).fetchall()

    def _insert(self, cursor: Any, connection: Any, columns: List[List[Any]]) -> List[Any]:
        count = len(columns[0])
        sql = (f'INSERT INTO "{self._table}" ({", ".join(SAVED_COLUMNS)}) VALUES '
               f'{", ".join([self._row] * count)} RETURNING id')
        return cursor.execute(sql, [column[i] for i in range(count) for column in columns]).fetchall()


class PostgresTrackerStatements(TrackerStatements):
    """PostgreSQL (psycopg2): prepared once per connection, or plain text with ``prepare=False``.

    Args:
        table: The events table's name.
        prepare: Use named prepared statements (see the module doc).
    """

    def __init__(self, table: Text, prepare: bool = True) -> None:
        self.prepare = prepare
        self._newest_sql = newest_id_sql(table, "%s")
        self._insert_sql = insert_events_sql(table, ["%s"] * len(SAVED_COLUMNS))
        newest = f"PREPARE {_NEWEST} (text) AS {newest_id_sql(table, '$1')}"
        insert = (f"PREPARE {_INSERT} ({', '.join(_ARRAY_TYPES)}) AS "
                  + insert_events_sql(table, [f"${i + 1}" for i in range(len(SAVED_COLUMNS))]))
        self._prepare_sql = f"{newest}; {insert}"

    def _newest(self, cursor: Any, connection: Any, sender_id: Text) -> List[Any]:
        return self._run(cursor, connection, f"EXECUTE {_NEWEST} (%s)", self._newest_sql, (sender_id,))

    def _insert(self, cursor: Any, connection: Any, columns: List[List[Any]]) -> List[Any]:
        return self._run(cursor, connection, f"EXECUTE {_INSERT} (%s, %s, %s, %s, %s, %s)", self._insert_sql,
                         columns)

    def _run(self, cursor: Any, connection: Any, executed: Text, plain: Text, parameters: Sequence[Any]) -> List[Any]:
        if not self.prepare:
            cursor.execute(plain, parameters)
            return cursor.fetchall()
        info = connection.info  # per server connection, kept across checkouts
        if not info.get(_PREPARED_KEY):
            cursor.execute(self._prepare_sql)
            info[_PREPARED_KEY] = True
        try:
            cursor.execute(executed, parameters)
        except Exception as error:  # noqa: BLE001 - only the missing statement is handled here
            if getattr(error, "pgcode", None) != _MISSING_STATEMENT:
                raise
            # Autocommit: the failed EXECUTE left no transaction behind. Whatever else the session
            # still holds goes first, so both statements can be prepared again.
            cursor.execute(f"DEALLOCATE ALL; {self._prepare_sql}")
            cursor.execute(executed, parameters)
        return cursor.fetchall()
