"""Hammers ``AtomicRedisLockStore`` from one process (run with ``.venv-rasa``; several at once = replicas).

    .venv-rasa/bin/python tests/support/lock_store_drill.py <conversation> <holders> <db>

Each holder takes the conversation's lock and, inside it, appends "enter <n>" and "leave <n>" to a
Redis list with a pause between: if two holders ever overlap, the list shows it.
"""

from __future__ import annotations

import asyncio
import os
import sys

from connectors.rasa_lock_store import AtomicRedisLockStore


async def main(conversation: str, holders: int, db: int) -> None:
    store = AtomicRedisLockStore(host="127.0.0.1", db=db)
    journal = f"drill:{conversation}:journal"
    me = os.getpid()

    async def hold(n: int) -> None:
        async with store.lock(conversation):
            store.red.rpush(journal, f"enter {me}-{n}")
            await asyncio.sleep(0.01)
            store.red.rpush(journal, f"leave {me}-{n}")

    await asyncio.gather(*(hold(n) for n in range(holders)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
