"""The atomic Redis lock store Rasa replicas share, hammered by several processes on the real Redis."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
import redis

from gateway.settings import PROJECT_ROOT
from tests.conftest import service_up

RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
DRILL = PROJECT_ROOT / "tests" / "support" / "lock_store_drill.py"
DB = 1



@pytest.mark.integration
@pytest.mark.skipif(not service_up(6379), reason="Redis is NOT running on 127.0.0.1:6379: the lock store is untested")
def test_four_processes_never_hold_one_conversations_lock_at_the_same_time() -> None:
    conversation = f"drill-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    replicas = [subprocess.Popen([str(RASA_PYTHON), str(DRILL), conversation, "25", str(DB)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for process in replicas:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    client = redis.Redis(host="127.0.0.1", db=DB)
    journal = [entry.decode() for entry in client.lrange(f"drill:{conversation}:journal", 0, -1)]
    client.delete(f"drill:{conversation}:journal")
    assert len(journal) == 4 * 25 * 2
    # Strictly alternating enter/leave of the same holder: no two holders were ever inside together.
    for i in range(0, len(journal), 2):
        entered, left = journal[i], journal[i + 1]
        assert entered.startswith("enter ") and left == "leave " + entered.removeprefix("enter "), journal[i:i + 2]
    # Every ticket was served and released: nothing is left waiting.
    assert client.zcard(f"switchboard_lock:{conversation}:tickets") == 0


def _run_drill(code: str, prefix: str) -> str:
    """Run a drill script in Rasa's environment on a fresh conversation; its output, stripped."""
    conversation = f"{prefix}-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    try:
        done = subprocess.run([str(RASA_PYTHON), "-c", code, conversation, str(DB)], env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        redis.Redis(host="127.0.0.1", db=DB).delete(f"switchboard_lock:{conversation}:next")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


EXPIRY_DRILL = """
import asyncio, sys, time
from connectors.rasa_lock_store import AtomicRedisLockStore

async def main(conversation):
    store = AtomicRedisLockStore(host="127.0.0.1", db=int(sys.argv[2]))
    dead = store.issue_ticket(conversation, lock_lifetime=0.5)  # a replica that died holding the lock
    started = time.monotonic()
    async with store.lock(conversation) as lock:
        waited = time.monotonic() - started
        mine = lock.tickets[0].number
    store.flush()  # the ticket is given back from a worker thread
    print(dead, mine, round(waited, 2), store.red.zcard(store._tickets(conversation)))

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.integration
@pytest.mark.skipif(not service_up(6379), reason="Redis is NOT running on 127.0.0.1:6379: the lock store is untested")
def test_a_ticket_of_a_replica_that_died_holding_it_is_skipped_when_it_expires() -> None:
    dead, mine, waited, left = _run_drill(EXPIRY_DRILL, "expiry").split()
    assert int(mine) == int(dead) + 1  # queued behind the dead ticket, then served
    assert 0.3 <= float(waited) < 5.0  # waited for the expiry, not for ever
    assert int(left) == 0  # nothing left behind once released


SKEW_DRILL = """
import asyncio, sys
from connectors.rasa_lock_store import AtomicRedisLockStore

async def main(conversation):
    store = AtomicRedisLockStore(host="127.0.0.1", db=int(sys.argv[2]))
    order = []

    async def first():
        async with store.lock(conversation, lock_lifetime=60):
            order.append("first in")
            await asyncio.sleep(0.3)
            order.append("first out")

    async def second():
        await asyncio.sleep(0.05)
        # Expires before the first ticket: what a replica whose clock runs behind issues.
        async with store.lock(conversation, lock_lifetime=10):
            order.append("second in")
            order.append("second out")

    await asyncio.gather(first(), second())
    print(",".join(order))

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.integration
@pytest.mark.skipif(not service_up(6379), reason="Redis is NOT running on 127.0.0.1:6379: the lock store is untested")
def test_a_later_ticket_that_expires_sooner_still_waits_its_turn() -> None:
    assert _run_drill(SKEW_DRILL, "skew") == "first in,first out,second in,second out"
