"""The tracker store's prepared PostgreSQL statements (run in Rasa's own environment, on psycopg2)."""

from __future__ import annotations

import json
import os
import subprocess

from gateway.settings import PROJECT_ROOT
from tests.conftest import postgres_database

RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
DRILL = PROJECT_ROOT / "tests" / "support" / "tracker_statements_drill.py"


def test_the_check_and_the_save_survive_a_server_that_forgot_its_prepared_statements() -> None:
    urls = postgres_database("sb_tracker_statements")
    database = next(urls).rsplit("/", 1)[1]
    try:
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RASA_TELEMETRY_ENABLED": "false"}
        result = subprocess.run([str(RASA_PYTHON), str(DRILL), database], env=env, capture_output=True, text=True,
                                timeout=120)
    finally:
        next(urls, None)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["unknown_sender"] is None
    first = report["first_ids"]
    assert first == sorted(first) and len(first) == 3 and report["newest"] == first[-1]  # ids in insert order
    assert report["prepared"] == ["sb_insert_events", "sb_newest_event_id"]  # prepared once, on the server
    # The server forgot them (DEALLOCATE ALL, a pooler's new session): prepared again, nothing lost.
    again = report["after_forgetting_ids"]
    assert len(again) == 2 and again[0] > first[-1] and report["after_forgetting_newest"] == again[-1]
    # SWITCHBOARD_TRACKER_PREPARE=0: the same work as plain statements, nothing prepared.
    assert len(report["plain_ids"]) == 2 and report["plain_newest"] == report["plain_ids"][-1]
    assert report["plain_prepared"] == []
    assert report["stored"] == ["alice:message 0", "alice:message 1", "alice:message 2", "alice:message 0",
                                "alice:message 1", "bob:message 0", "bob:message 1"]
