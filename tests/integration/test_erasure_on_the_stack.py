"""Erasure against the real stack: Rasa's own tracker store forgets the conversation too."""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.db.session import create_db_engine, create_session_factory
from gateway.privacy.erasure import ErasureService, RasaTrackerEraser
from gateway.stack import Stack

SECRET_EMAIL = "erase.me.please@example.org"


def _tracker_texts(stack: Stack, conversation_id: str) -> list[str]:
    settings = stack.settings
    response = httpx.get(f"{settings.rasa_url}/conversations/{conversation_id}/tracker",
                         params={"token": settings.rasa_token.get_secret_value()}, timeout=30)
    assert response.status_code == 200, response.text
    return [event.get("text") or "" for event in response.json()["events"] if event.get("event") == "user"]


def test_an_erased_conversation_is_gone_from_the_gateway_and_from_rasa(running_stack: Stack) -> None:
    settings = running_stack.settings
    with httpx.Client(base_url=settings.gateway_url, timeout=60,
                      headers={"X-Widget-Key": settings.demo_widget_key}) as api:
        turn = api.post("/api/v1/messages", json={"text": f"hi, my email is {SECRET_EMAIL}"}).json()
        conversation_id, token = turn["conversation_id"], turn["conversation_token"]
        assert any(SECRET_EMAIL in text for text in _tracker_texts(running_stack, conversation_id))

        engine = create_db_engine(settings.database_url)
        tracker = RasaTrackerEraser(settings.tracker_store_url)
        report = ErasureService(create_session_factory(engine), tracker).erase_conversation(
            settings.demo_tenant, conversation_id, "test")
        tracker.close()
        engine.dispose()
        assert report.conversations == 1 and report.messages >= 2 and report.tracker_events > 0

        history = api.get(f"/api/v1/conversations/{conversation_id}/messages",
                          headers={"X-Conversation-Token": token})
        assert history.status_code == 404
    assert not any(SECRET_EMAIL in text for text in _tracker_texts(running_stack, conversation_id))
    # Not even in the files: deleted rows are overwritten (secure_delete), the WAL checkpointed.
    engine = create_db_engine(settings.database_url)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    for path in (settings.rasa_tracker_db, Path(settings.database_url.split("///", 1)[1])):
        assert SECRET_EMAIL.encode() not in Path(path).read_bytes(), path


def test_the_service_logs_hold_application_events_and_no_customer_text(running_stack: Stack) -> None:
    settings = running_stack.settings
    with httpx.Client(base_url=settings.gateway_url, timeout=60, headers={"X-Widget-Key": settings.demo_widget_key}) as api:
        assert api.post("/api/v1/messages", json={"text": f"my address is {SECRET_EMAIL}, I want a person"}).status_code == 200
    gateway_log = (running_stack.log_dir / "gateway.log").read_text(errors="replace")
    assert "INFO gateway.app: gateway started" in gateway_log
    for name in ("gateway.log", "rasa.log", "actions.log"):
        assert SECRET_EMAIL not in (running_stack.log_dir / name).read_text(errors="replace"), name

