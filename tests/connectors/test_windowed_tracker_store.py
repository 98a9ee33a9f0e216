"""The windowed tracker store (run in Rasa's own environment): bounded retrieval, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from gateway.settings import PROJECT_ROOT
from tests.conftest import postgres_database

RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
DRILL = PROJECT_ROOT / "tests" / "support" / "tracker_window_drill.py"


def test_a_long_conversation_is_retrieved_in_a_bounded_window_with_every_slot_and_stored_exactly(
        backend: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    result = subprocess.run([str(RASA_PYTHON), str(DRILL), "120", "20", *backend], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Every event the turns added was stored once: the plain SQL store reads back the whole conversation.
    assert report["stored_events"] == report["expected_events"]
    # What a turn loads stops growing with the conversation (a held tracker is read again a turn or two
    # past the window).
    first, middle, last = report["retrieved_sizes"]
    assert max(middle, last) <= 20 + 12 + 3 + 10  # window, session opening, three slots, a turn or two held
    # A slot and a form set at turn 2 are still there at turn 120; the session's opening too.
    assert report["slots_match"] and report["slots"]["order_number"] == "A1234"
    assert report["active_loop"] == "order_form"
    assert report["latest_message"] == "message 119"
    assert report["first_event"] == "session_started"
    # Only the latest session is read, however long the one before it was.
    assert report["second_session"] == ["second 0", "second 1"]
    assert report["event_index"]  # the index the window's statements need is created at start-up


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """The drill's extra arguments: none for a SQLite file, else a fresh PostgreSQL database's name."""
    if request.param == "sqlite":
        yield []
        return
    urls = postgres_database("sb_tracker_drill")
    yield [next(urls).rsplit("/", 1)[1]]
    next(urls, None)


def test_held_trackers_are_reused_only_while_the_database_holds_exactly_them(backend: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    result = subprocess.run([str(RASA_PYTHON), str(DRILL), "3", "20", *backend], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    memory = json.loads(result.stdout.strip().splitlines()[-1])["memory"]
    assert memory["unchanged_is_held"]  # nothing written since: no read, no replay
    # A new conversation saved Rasa's way is held; a tracker missing stored events is read back instead.
    assert memory["rasa_made_is_held"] and memory["partial_not_held"]
    assert memory["partial_read_back"] == ["session_started", "action"]  # what is stored, from the session start
    # A new, empty tracker's save writes nothing; its first turn's save stores every event once, and holds it.
    assert memory["empty_save_statements"] == 0  # Rasa's way: a retrieve, a count and a commit
    assert memory["new_empty_stored"] == ["action", "session_started", "action", "user"]
    assert memory["new_empty_is_held"]
    assert memory["other_replica_seen"] == "from the other replica"
    assert memory["after_failure"] == "from the other replica" and memory["after_failure_is_new_object"]
    assert memory["swap_has_new_slot"]
    # An erased conversation leaves memory at the next sweep, and is gone for the next turn.
    assert memory["held_before_erasure"] >= 1
    assert memory["held_after_sweep"] == memory["held_before_erasure"] - 1
    assert memory["after_erasure"] is None
