"""Publishes conversations through Rasa's own tracker store and Pika event broker (run with ``.venv-rasa``).

    .venv-rasa/bin/python tests/support/rasa_broker_publisher.py < spec.json > published.json

spec: {"host": "127.0.0.1", "queue": "...", "exchange": "...", "conversations": [{"sender_id": "...", "tenant_id": "...", "turns": 3}],
       "store": "rasa" | "windowed"}
Prints the bodies Rasa published (a last line ``PUBLISHED <JSON list>``), so a test can compare what the log consumer stored.
This is Rasa's real publishing path: ``TrackerStore.save`` → ``stream_events`` → ``PikaEventBroker.publish``, through
Rasa's in-memory store (one message per event) or the product's windowed SQL store on SQLite (one message per save).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile

from rasa.core.brokers.pika import PikaEventBroker
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered


class RecordingBroker(PikaEventBroker):
    """Rasa's broker, also remembering what it published."""

    published: list = []

    def publish(self, event, headers=None):  # type: ignore[no-untyped-def]
        RecordingBroker.published.append(event)
        super().publish(event, headers)


async def main() -> None:
    spec = json.load(sys.stdin)
    broker = RecordingBroker(spec.get("host", "127.0.0.1"), "guest", "guest", queues=[spec["queue"]],
                             exchange_name=spec["exchange"], connection_attempts=3, retry_delay_in_seconds=1)
    await broker.connect()
    if spec.get("store") == "windowed":
        from connectors.windowed_tracker_store import WindowedSQLTrackerStore

        folder = tempfile.mkdtemp(prefix="publisher-")
        store = WindowedSQLTrackerStore(Domain.from_dict({"intents": ["greet"], "responses": {"utter_greet": [{"text": "hi"}]}}),
                                        dialect="sqlite", db=os.path.join(folder, "tracker.db"), event_broker=broker)
    else:
        store = InMemoryTrackerStore(Domain.empty(), event_broker=broker)
    for conversation in spec["conversations"]:
        sender = conversation["sender_id"]
        meta = {"tenant_id": conversation.get("tenant_id"), "model_id": "test-model"}
        for turn in range(conversation["turns"]):
            tracker = await store.get_or_create_tracker(sender)
            tracker.update(UserUttered(f"message {turn} of {sender}", {"name": "greet", "confidence": 0.9},
                                       metadata=meta))
            tracker.update(ActionExecuted("utter_greet", metadata={"model_id": "test-model"}))
            tracker.update(BotUttered(f"reply {turn}", metadata={"model_id": "test-model"}))
            tracker.update(ActionExecuted("action_listen", metadata={"model_id": "test-model"}))
            await store.save(tracker)
    # publish() runs in background tasks: wait for them before closing the connection.
    await asyncio.gather(*list(broker._background_tasks))
    await broker.close()
    # Rasa logs to stdout too: the bodies are the last line.
    print("\nPUBLISHED " + json.dumps(RecordingBroker.published), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
