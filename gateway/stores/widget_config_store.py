"""Per-tenant widget settings, cached briefly: every widget message checks the allowed origins."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from connectors.web.config import WidgetConfig
from gateway.db.models import WidgetConfigRow, utcnow
from gateway.db.session import single_read_sessions

_CACHE_S = 5.0


class WidgetConfigStore:
    """Reads and writes ``WidgetConfig`` per tenant (defaults when none is stored)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # the cache's refresh: one statement, no BEGIN/ROLLBACK
        self._cache: dict[str, tuple[float, WidgetConfig]] = {}
        self._lock = threading.Lock()

    def cached(self, tenant_id: str) -> WidgetConfig | None:
        """The tenant's settings if read in the last few seconds (no database read), else None."""
        with self._lock:
            hit = self._cache.get(tenant_id)
        return hit[1] if hit and time.monotonic() - hit[0] < _CACHE_S else None

    def get(self, tenant_id: str) -> WidgetConfig:
        """The tenant's settings (a few seconds old at most)."""
        now = time.monotonic()
        cached = self.cached(tenant_id)
        if cached is not None:
            return cached
        with self._reads() as session:
            row = session.get(WidgetConfigRow, tenant_id)
            config = WidgetConfig.model_validate(row.config) if row else WidgetConfig()
        with self._lock:
            self._cache[tenant_id] = (now, config)
        return config

    def put(self, tenant_id: str, config: WidgetConfig) -> WidgetConfig:
        """Replace the tenant's settings."""
        with self._sessions.begin() as session:
            row = session.get(WidgetConfigRow, tenant_id)
            if row is None:
                session.add(WidgetConfigRow(tenant_id=tenant_id, config=config.model_dump(), updated_at=utcnow()))
            else:
                row.config = config.model_dump()
                row.updated_at = utcnow()
        with self._lock:
            self._cache.pop(tenant_id, None)
        return config
