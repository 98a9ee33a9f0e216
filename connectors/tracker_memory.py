"""Trackers held in memory between turns, each valid while its newest stored event id is the newest.

Imported by the Rasa process (``connectors/windowed_tracker_store.py``): Rasa and the standard library.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Text

from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)

#: Attribute on a retrieved tracker: how many of its events are already stored.
STORED_EVENTS_ATTR = "_switchboard_stored_events"
_STORED = STORED_EVENTS_ATTR

#: A held tracker unused for this long is dropped, so a conversation's text does not linger in memory.
IDLE_S = 300.0
#: How often held trackers are checked against the database (erased conversations leave memory).
SWEEP_S = 20.0


@dataclass
class _Held:
    tracker: DialogueStateTracker
    last_id: int
    domain: Any
    used: float


class TrackerMemory:
    """Trackers between turns, keyed by sender, each valid while its newest stored event id is the newest.

    Args:
        size: Most trackers held; the least recently used goes first.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._held: "OrderedDict[Text, _Held]" = OrderedDict()
        self._lock = threading.Lock()  # Rasa calls the store from its event loop and from worker threads
        self._sweeper: Optional[threading.Thread] = None

    def start_sweeping(self, newest_ids: Callable[[List[Text]], Dict[Text, int]], every_s: float = SWEEP_S) -> None:
        """Check held trackers against the database every ``every_s`` seconds, on a daemon thread.

        Args:
            newest_ids: Callable from sender ids to ``{sender_id: newest event id}`` (absent: none stored).
            every_s: Seconds between checks.
        """
        with self._lock:
            if self._sweeper is not None or self.size <= 0:
                return
            self._sweeper = threading.Thread(target=self._sweep_forever, args=(newest_ids, every_s),
                                             name="tracker-memory-sweep", daemon=True)
        self._sweeper.start()

    def _sweep_forever(self, newest_ids: Callable[[List[Text]], Dict[Text, int]], every_s: float) -> None:
        while True:
            time.sleep(every_s)
            try:
                self.sweep(newest_ids)
            except Exception:  # noqa: BLE001 - a database hiccup: the next sweep tries again
                logger.warning("could not check held trackers against the database", exc_info=True)

    def sweep(self, newest_ids: Callable[[List[Text]], Dict[Text, int]]) -> int:
        """Drop idle trackers and those whose newest event id changed or is gone; returns how many are held."""
        with self._lock:
            self._expire(time.monotonic())
            expected = {sender_id: held.last_id for sender_id, held in self._held.items()}
        if not expected:
            return 0
        stored = newest_ids(list(expected))
        with self._lock:
            for sender_id, last_id in expected.items():
                held = self._held.get(sender_id)
                if held is not None and held.last_id == last_id and stored.get(sender_id) != last_id:
                    del self._held[sender_id]
            return len(self._held)

    def holds(self, sender_id: Text) -> bool:
        """Whether a tracker of the conversation is held (still to be checked with ``get``)."""
        with self._lock:
            return sender_id in self._held

    def get(self, sender_id: Text, last_id: Optional[int], domain: Any) -> Optional[DialogueStateTracker]:
        """The held tracker if it is exactly what the database holds (same newest id, saved, same domain)."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            held = self._held.get(sender_id)
            if held is None:
                return None
            tracker = held.tracker
            if (last_id is None or held.last_id != last_id or held.domain is not domain
                    or getattr(tracker, _STORED, None) != len(tracker.events)):
                del self._held[sender_id]
                return None
            held.used = now
            self._held.move_to_end(sender_id)
            return tracker

    def put(self, sender_id: Text, tracker: DialogueStateTracker, last_id: Optional[int], domain: Any,
            max_events: int) -> None:
        """Hold a tracker just read or saved (or drop it when it has no id or grew past ``max_events``)."""
        with self._lock:
            if last_id is None or self.size <= 0 or len(tracker.events) > max_events:
                self._held.pop(sender_id, None)
                return
            self._held[sender_id] = _Held(tracker, last_id, domain, time.monotonic())
            self._held.move_to_end(sender_id)
            while len(self._held) > self.size:
                self._held.popitem(last=False)

    def forget(self, sender_id: Text) -> None:
        """Drop a conversation's tracker."""
        with self._lock:
            self._held.pop(sender_id, None)

    def __len__(self) -> int:
        return len(self._held)

    def _expire(self, now: float) -> None:
        while self._held:
            sender_id, held = next(iter(self._held.items()))
            if now - held.used < IDLE_S:
                break
            del self._held[sender_id]


