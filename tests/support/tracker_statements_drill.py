"""Run by ``tests/connectors/test_tracker_statements.py`` in Rasa's environment (SQLAlchemy 1.4, psycopg2).

``python tracker_statements_drill.py DATABASE``: saves and checks through the prepared statements, makes
the server forget them on the very connection that prepared them, and checks again; then the same with
plain statements. Prints one JSON report.
"""

from __future__ import annotations

import json
import sys

import sqlalchemy as sa

from connectors.tracker_statements import SAVED_COLUMNS, PostgresTrackerStatements


def _columns(sender: str, count: int) -> list[list[object]]:
    rows = [{"sender_id": sender, "type_name": "user", "timestamp": 1.0 + i, "intent_name": None,
             "action_name": None, "data": json.dumps({"event": "user", "text": f"message {i}"})} for i in range(count)]
    return [[row[name] for row in rows] for name in SAVED_COLUMNS]


def main(database: str) -> None:
    engine = sa.create_engine(f"postgresql://postgres@127.0.0.1:5432/{database}", isolation_level="AUTOCOMMIT",
                              pool_size=1, max_overflow=0)
    with engine.connect() as connection:
        connection.execute(sa.text("CREATE TABLE events (id serial PRIMARY KEY, sender_id text NOT NULL, "
                                   "type_name text NOT NULL, timestamp float8, intent_name text, "
                                   "action_name text, data text)"))
    report: dict[str, object] = {}
    statements = PostgresTrackerStatements("events")
    with engine.connect() as connection:
        report["unknown_sender"] = statements.newest_id(connection, "nobody")
        report["first_ids"] = statements.insert(connection, _columns("alice", 3))
        report["newest"] = statements.newest_id(connection, "alice")
        report["prepared"] = sorted(connection.execute(sa.text("SELECT name FROM pg_prepared_statements")).scalars())
        connection.execute(sa.text("DEALLOCATE ALL"))  # the server forgets them; the pool record does not
        report["after_forgetting_ids"] = statements.insert(connection, _columns("alice", 2))
        report["after_forgetting_newest"] = statements.newest_id(connection, "alice")
    plain = PostgresTrackerStatements("events", prepare=False)
    with engine.connect() as connection:
        connection.execute(sa.text("DEALLOCATE ALL"))
        report["plain_ids"] = plain.insert(connection, _columns("bob", 2))
        report["plain_newest"] = plain.newest_id(connection, "bob")
        report["plain_prepared"] = list(connection.execute(sa.text("SELECT name FROM pg_prepared_statements")).scalars())
    with engine.connect() as connection:
        report["stored"] = list(connection.execute(sa.text(
            "SELECT sender_id || ':' || (data::json->>'text') FROM events ORDER BY id")).scalars())
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
