"""Token-bucket rate limits per conversation and per client IP (in-process; one bucket set per replica)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_MAX_KEYS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``burst`` requests at once, refilled at ``per_minute`` per minute, per key.

    Args:
        per_minute: Sustained rate.
        burst: Bucket size.
        clock: Monotonic clock (tests pass a fake one).
    """

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Take one token for ``key``; returns 0 when allowed, else the seconds until one is free."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _MAX_KEYS:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self._rate if self._rate > 0 else float("inf")

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled (they behave exactly like new ones)."""
        full = [key for key, b in self._buckets.items() if b.tokens + (now - b.updated) * self._rate >= self._burst]
        for key in full:
            del self._buckets[key]


@dataclass
class RateLimits:
    """The gateway's limits on customer traffic."""

    per_conversation: RateLimiter
    per_ip: RateLimiter
    new_conversations_per_ip: RateLimiter

    def message(self, conversation_id: str, ip: str | None) -> float:
        """Check one customer message; seconds to wait, 0 when allowed."""
        wait = self.per_conversation.hit(f"c:{conversation_id}")
        if wait:
            return wait
        return self.per_ip.hit(f"ip:{ip}") if ip else 0.0

    def new_conversation(self, ip: str | None) -> float:
        """Check starting a conversation; seconds to wait, 0 when allowed."""
        return self.new_conversations_per_ip.hit(f"ip:{ip}") if ip else 0.0
