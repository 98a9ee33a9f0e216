"""Helpers shared by actions: the tenant of a conversation and the gateway's stores."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from rasa_sdk import Tracker

from gateway.db.session import create_db_engine, create_session_factory
from gateway.settings import get_settings
from gateway.stores.order_store import OrderStore


def tenant_of(tracker: Tracker) -> str | None:
    """The tenant the gateway attached to the latest customer message (``metadata.tenant_id``)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            metadata: dict[str, Any] = event.get("metadata") or {}
            tenant = metadata.get("tenant_id")
            return tenant if isinstance(tenant, str) else None
    return None


@lru_cache(maxsize=1)
def order_store() -> OrderStore:
    """The order store on the gateway database, opened once per action-server process."""
    return OrderStore(create_session_factory(create_db_engine(get_settings().database_url)))


_KB_LOCK = threading.Lock()


def knowledge_base():  # type: ignore[no-untyped-def]
    """The knowledge base on the gateway database, loaded once per action-server process."""
    from knowledge_base.factory import default_knowledge_base

    with _KB_LOCK:  # the start-up warm-up and a first question must not load it twice
        return default_knowledge_base()
