"""The tracker store's two per-turn PostgreSQL statements, prepared once per server connection.

Imported by the Rasa process (``.venv-rasa``): SQLAlchemy, psycopg2 and the standard library only.

Every turn runs the held-tracker check (the conversation's newest event id) and the save (the turn's
events as one array per column). Rasa's driver, psycopg2, sends each as text, so PostgreSQL parsed and
planned them anew every time: the save's statement carries the turn's events, several kilobytes of
literal arrays. ``PREPARE`` makes the server parse and plan each once per connection; a turn then
sends ``EXECUTE`` with its parameters (measured on this machine: 0.20 → 0.10 ms for the check, 0.64 →
0.51 ms for a save of eight events).

A connection prepares both the first time it is used for them (one round trip, remembered in the pool's
record of the connection, which lives as long as the server session). A server that lost them (a
``DISCARD ALL``, a pooler that moved the session) answers "prepared statement does not exist": the
statement is prepared again and run once more. ``SWITCHBOARD_TRACKER_PREPARE=0`` sends plain statements,
for a transaction-mode pooler (PgBouncer) that cannot keep named statements at all.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Text

PREPARE_ENV = "SWITCHBOARD_TRACKER_PREPARE"
#: The event columns a save writes, in the order of the insert's arrays.
SAVED_COLUMNS = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
_ARRAY_TYPES = ("text[]", "text[]", "float8[]", "text[]", "text[]", "text[]")
_NEWEST = "sb_newest_event_id"
_INSERT = "sb_insert_events"
#: Key in a pooled connection's ``info``: its server session has both statements prepared.
_PREPARED_KEY = "switchboard_tracker_prepared"
#: SQLSTATE of "prepared statement does not exist".
_MISSING_STATEMENT = "26000"


def insert_events_sql(table: Text, placeholders: Sequence[Text]) -> Text:
    """Insert a save's events from one array per column, returning their ids (in order)."""
    columns = ", ".join(SAVED_COLUMNS)
    arrays = ", ".join(f"{p}::{t}" for p, t in zip(placeholders, _ARRAY_TYPES))
    return (f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM unnest({arrays}) '
            f"WITH ORDINALITY AS e({columns}, n) ORDER BY n RETURNING id")


def prepare_enabled() -> bool:
    """Whether the environment allows named prepared statements (see the module doc)."""
    return os.environ.get(PREPARE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class PreparedTrackerStatements:
    """The held-tracker check and the save on one PostgreSQL events table.

    Args:
        table: The events table's name.
        prepare: Use named prepared statements; False sends the same statements as plain text.
    """

    def __init__(self, table: Text, prepare: bool = True) -> None:
        self.prepare = prepare
        self._newest_sql = f'SELECT max(id) FROM "{table}" WHERE sender_id = %s'
        self._insert_sql = insert_events_sql(table, ["%s"] * len(SAVED_COLUMNS))
        newest = f'PREPARE {_NEWEST} (text) AS SELECT max(id) FROM "{table}" WHERE sender_id = $1'
        insert = (f"PREPARE {_INSERT} ({', '.join(_ARRAY_TYPES)}) AS "
                  + insert_events_sql(table, [f"${i + 1}" for i in range(len(SAVED_COLUMNS))]))
        self._prepare_sql = f"{newest}; {insert}"

    def newest_id(self, connection: Any, sender_id: Text) -> Optional[int]:
        """The conversation's newest event id (None: no event), on an autocommit SQLAlchemy connection."""
        rows = self._run(connection, f"EXECUTE {_NEWEST} (%s)", self._newest_sql, (sender_id,))
        return rows[0][0] if rows else None

    def insert(self, connection: Any, columns: List[List[Any]]) -> List[int]:
        """Insert a save's events (one list per :data:`SAVED_COLUMNS` entry); their ids in order."""
        rows = self._run(connection, f"EXECUTE {_INSERT} (%s, %s, %s, %s, %s, %s)", self._insert_sql, columns)
        return [row[0] for row in rows]

    def _run(self, connection: Any, executed: Text, plain: Text, parameters: Sequence[Any]) -> List[Any]:
        cursor = connection.connection.cursor()
        try:
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
        finally:
            cursor.close()
