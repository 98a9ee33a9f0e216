"""Run with .venv-rasa: a long conversation through the windowed tracker store and Rasa's own, compared.

Prints one JSON object: what the windowed store retrieved and stored against the plain SQL store.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet,
                                     UserUttered)

from connectors.windowed_tracker_store import WindowedSQLTrackerStore

DOMAIN = Domain.from_dict({
    "intents": ["greet", "inform"],
    "slots": {"order_number": {"type": "text", "mappings": [{"type": "custom"}]},
              "kb_answered": {"type": "bool", "mappings": [{"type": "custom"}]},
              "requested_slot": {"type": "text", "mappings": [{"type": "custom"}]}},
    "forms": {"order_form": {"required_slots": ["order_number"]}},
    "responses": {"utter_greet": [{"text": "hi"}]},
})


async def main(turns: int, window: int) -> dict:
    folder = Path(tempfile.mkdtemp())
    windowed = WindowedSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(folder / "t.db"), window=window)
    plain = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(folder / "t.db"))
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
    return {
        "stored_events": len(full.events),
        "expected_events": 1 + len(opening) + turns * 5,  # Rasa's first action_listen, the opening, 5 a turn
        "retrieved_sizes": [sizes[0], sizes[len(sizes) // 2], sizes[-1]],
        "slots_match": windowed_tracker.current_slot_values() == full.current_slot_values(),
        "slots": windowed_tracker.current_slot_values(),
        "active_loop": windowed_tracker.active_loop_name,
        "latest_message": windowed_tracker.latest_message.text,
        "first_event": windowed_tracker.events[0].type_name,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))))
