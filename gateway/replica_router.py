"""Which Rasa replica serves a conversation: the same one every turn while it is up.

Each Rasa process holds recently used trackers in memory between turns (``connectors/tracker_memory.py``)
and checks them against the tracker store with one indexed lookup. A turn that lands on another
replica finds the held tracker stale and reads the conversation's window again, so turns spread over
replicas by a round-robin proxy pay that read about half the time. Rendezvous hashing (highest random
weight) gives every conversation a fixed order of preference over the replicas, the same in every
gateway process, without shared state; when a replica dies only its conversations move, and they
move back when it returns. The Redis lock store still serialises a conversation's turns whichever
replica runs them, so a moved conversation stays correct: only its first turn there is slower.
"""

from __future__ import annotations

import hashlib
import threading
import time

#: How long a replica that refused a connection is tried last.
DOWN_S = 5.0


class ReplicaRouter:
    """Orders Rasa replicas per conversation (rendezvous hashing) and remembers which refused lately.

    Args:
        urls: Base URLs of the replicas (one URL: everything goes there).
        down_s: How long a replica reported down stays at the end of every order.
    """

    def __init__(self, urls: list[str], down_s: float = DOWN_S) -> None:
        if not urls:
            raise ValueError("at least one replica URL")
        self.urls = [url.rstrip("/") for url in urls]
        self.down_s = down_s
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _weight(url: str, conversation_id: str) -> bytes:
        return hashlib.blake2b(f"{url}\n{conversation_id}".encode(), digest_size=8).digest()

    def order(self, conversation_id: str) -> list[str]:
        """Replicas to try for this conversation, best first; those reported down lately come last."""
        if len(self.urls) == 1:
            return list(self.urls)
        ranked = sorted(self.urls, key=lambda url: self._weight(url, conversation_id), reverse=True)
        now = time.monotonic()
        with self._lock:
            down = {url for url, until in self._down_until.items() if until > now}
        return [url for url in ranked if url not in down] + [url for url in ranked if url in down]

    def report_down(self, url: str) -> None:
        """A replica refused a connection: try the others first for a while."""
        with self._lock:
            self._down_until[url.rstrip("/")] = time.monotonic() + self.down_s

    def report_up(self, url: str) -> None:
        """A replica answered: it is preferred again where the hashing prefers it."""
        with self._lock:
            self._down_until.pop(url.rstrip("/"), None)
