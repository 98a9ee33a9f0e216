"""A Rasa lock store that is safe across replicas: first come, first served, atomically in Redis.

Imported by the Rasa process (``.venv-rasa``): Rasa, redis-py and the standard library only.

Rasa 3.6's ``RedisLockStore`` reads a JSON ticket list, changes it in Python and writes it back. Two
replicas issuing tickets for one conversation at the same moment overwrite each other's tickets; a
waiter whose ticket vanished then waits forever (RasaHQ/rasa#9213; the concurrent variant was reverted
in RasaHQ/rasa#11428). Seen here: two replicas given 50 interleaved messages of one conversation stopped
after eight. This store keeps, per conversation, a counter (``INCR`` hands out ticket numbers) and a
sorted set of live tickets scored by expiry; the lowest live ticket number holds the lock. Taking a ticket and
looking whose turn it is run as one Lua script (atomic in Redis, one round trip), so nothing is lost
whatever the interleaving and an uncontended turn costs two round trips (take, give back) instead of
six. Waiters poll every 20 ms (Rasa's store waits a whole second), and an expired ticket (a replica
that died holding it) is skipped. A ticket is given back from a worker thread, so the turn's response
does not wait for the second round trip.

    lock_store:
      type: connectors.rasa_lock_store.AtomicRedisLockStore
      url: 127.0.0.1
      port: 6379
      db: 1
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Optional, Text

from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore

logger = logging.getLogger(__name__)

_KEY_PREFIX = "switchboard_lock:"

#: The lowest live ticket *number* (0: none). Not the lowest score: expiries come from each caller's
#: clock, read before its script runs, so a ticket issued later can expire earlier; serving by score
#: let two holders in at once (the four-process drill caught it).
_LOWEST = """
local lowest = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local number = tonumber(member)
  if lowest == 0 or number < lowest then lowest = number end
end
"""
#: KEYS: counter, tickets. ARGV: now, this ticket's expiry, the counter's lifetime in seconds.
#: Issues the next ticket, drops expired ones and returns {ticket, lowest live ticket}.
_ISSUE = """
local number = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], number)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
""" + _LOWEST + """
return {number, lowest}
"""
#: KEYS: counter (unused), tickets. ARGV: now. Drops expired tickets and returns the lowest live one.
_SERVING = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
""" + _LOWEST + """
return lowest
"""


class AtomicRedisLockStore(LockStore):
    """Ticket locks kept in Redis with atomic commands only.

    Args:
        endpoint_config: Rasa's ``lock_store`` endpoint (``url`` = host, ``port``, ``db``, ``password``).
        host / port / db / password: The same, when built directly.
        poll_s: How often a waiter looks whether its turn came.
    """

    def __init__(self, endpoint_config: Any = None, host: Text = "localhost", port: int = 6379, db: int = 1,
                 password: Optional[Text] = None, poll_s: float = 0.02) -> None:
        import redis

        if endpoint_config is not None:
            kwargs = dict(getattr(endpoint_config, "kwargs", {}) or {})
            host = endpoint_config.url or host
            port = int(kwargs.get("port", port))
            db = int(kwargs.get("db", db))
            password = kwargs.get("password", password)
            poll_s = float(kwargs.get("poll_s", poll_s))
        self.red = redis.StrictRedis(host=host, port=int(port), db=int(db), password=password or None,
                                     socket_timeout=10)
        self._issue = self.red.register_script(_ISSUE)
        self._serving_script = self.red.register_script(_SERVING)
        self.poll_s = poll_s
        # Tickets are given back from this thread, in the order the turns ended (see ``lock``).
        self._releases = ThreadPoolExecutor(max_workers=1, thread_name_prefix="switchboard-lock-release")
        super().__init__()

    # ------------------------------------------------------------------ keys
    @staticmethod
    def _tickets(conversation_id: Text) -> Text:
        return f"{_KEY_PREFIX}{conversation_id}:tickets"

    @staticmethod
    def _counter(conversation_id: Text) -> Text:
        return f"{_KEY_PREFIX}{conversation_id}:next"

    # ------------------------------------------------------ the lock itself
    def _issue_and_look(self, conversation_id: Text, lock_lifetime: float) -> tuple[int, Optional[int]]:
        """A new ticket queued behind every live one, and the ticket served now (one atomic script)."""
        now = time.time()
        try:
            number, first = self._issue(keys=[self._counter(conversation_id), self._tickets(conversation_id)],
                                        args=[now, now + lock_lifetime, int(lock_lifetime) + 3600])
        except Exception as exc:  # noqa: BLE001 - Rasa expects LockError
            raise LockError(f"could not issue a ticket for {conversation_id}: {exc}") from exc
        return int(number), int(first) or None

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """A new ticket, queued behind every live one."""
        return self._issue_and_look(conversation_id, lock_lifetime)[0]

    def _serving(self, conversation_id: Text) -> Optional[int]:
        """The lowest live ticket, after dropping tickets of replicas that died holding them."""
        keys = [self._counter(conversation_id), self._tickets(conversation_id)]
        return int(self._serving_script(keys=keys, args=[time.time()])) or None

    @asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = 1) -> AsyncGenerator[TicketLock, None]:
        """Hold the conversation's lock for the block; waits for every earlier ticket first."""
        del wait_time_in_seconds  # polling is ``poll_s``: Rasa's one second makes every queued turn slow
        ticket, serving = self._issue_and_look(conversation_id, lock_lifetime)
        try:
            while serving != ticket:
                if serving is None:
                    raise LockError(f"the ticket {ticket} of {conversation_id} expired while waiting")
                await asyncio.sleep(self.poll_s)
                serving = self._serving(conversation_id)
            yield TicketLock(conversation_id, deque([Ticket(ticket, time.time() + lock_lifetime)]))
        finally:
            # The turn's response need not wait for Redis's reply to the give-back (a round trip to
            # another process: 0.3 ms a turn in the running topology). The conversation's next turn
            # comes after that response, so its ticket is nearly always issued after this one is gone;
            # one that races it waits a poll.
            self._releases.submit(self._give_back, conversation_id, ticket)

    def flush(self) -> None:
        """Wait until every ticket given back so far is gone from Redis (one worker: they go in order)."""
        self._releases.submit(lambda: None).result()

    def _give_back(self, conversation_id: Text, ticket: int) -> None:
        try:
            self.finish_serving(conversation_id, ticket)
        except Exception:  # noqa: BLE001 - the ticket expires by itself; the next turn skips it then
            logger.warning("could not give back ticket %s of %s", ticket, conversation_id, exc_info=True)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Give the lock to the next ticket."""
        self.red.zrem(self._tickets(conversation_id), str(ticket_number))

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Same as ``finish_serving`` (the sorted set empties itself)."""
        self.finish_serving(conversation_id, ticket_number)

    def is_someone_waiting(self, conversation_id: Text) -> bool:
        """Whether more than the holder hold tickets."""
        return int(self.red.zcard(self._tickets(conversation_id))) > 1

    # ----------------------------------------- LockStore's storage contract
    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """The live tickets as Rasa's lock object (for callers that inspect it)."""
        entries = self.red.zrange(self._tickets(conversation_id), 0, -1, withscores=True)
        if not entries:
            return None
        return TicketLock(conversation_id, deque(Ticket(int(number), expires) for number, expires in entries))

    def delete_lock(self, conversation_id: Text) -> None:
        """Forget every ticket of the conversation."""
        self.red.delete(self._tickets(conversation_id), self._counter(conversation_id))

    def save_lock(self, lock: TicketLock) -> None:
        """Replace the live tickets with ``lock``'s (not used by this store's own locking)."""
        key = self._tickets(lock.conversation_id)
        pipe = self.red.pipeline(transaction=True)
        pipe.delete(key)
        if lock.tickets:
            pipe.zadd(key, {str(t.number): t.expires for t in lock.tickets})
        pipe.execute()
