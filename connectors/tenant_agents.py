"""One Rasa process, many tenants: each tenant's turns run on the agent of its own production model.

Imported by the Rasa process (``.venv-rasa``): Rasa and the standard library only.

Where a tenant's model is: the gateway's model registry writes ``<registry>/<tenant>/production.json``
(``{"model_file": …, "model_id": …, "version": …}``) whenever it marks a version production (promotion,
rollback, base deploy), by write-then-rename. Every Rasa replica reads the same file (they share the
registry folder), so replicas agree without talking to each other; the deployer's ``PUT`` only makes the
swap eager. A turn costs one ``stat`` of that file.

The cache:

* loads a tenant's agent lazily, on a worker thread (other tenants' turns keep running), one load at a
  time (loads are memory spikes), and reuses the agent the server started with when the file matches;
* gives each agent its own view of the shared tracker store (same database connection pool, the tenant's
  own domain: Rasa rebuilds trackers with the domain's slots) and its own response generator;
* keeps agents while the sum of their measured sizes (RSS growth during the load) fits the budget and
  evicts the least recently used one beyond it; a turn in flight keeps its agent until it ends;
* swaps a tenant's agent when its production file changes: the new one is built beside the old one, which
  serves that tenant's turns until the assignment.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Text, Tuple

logger = logging.getLogger(__name__)

REGISTRY_ENV = "SWITCHBOARD_MODEL_REGISTRY_DIR"
BUDGET_ENV = "SWITCHBOARD_RASA_AGENT_BUDGET_MB"
DEFAULT_BUDGET_MB = 3072.0
POINTER_NAME = "production.json"
#: Tenant ids as the gateway allows them (also keeps a hostile id out of the file system).
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class NoAssistantError(LookupError):
    """The tenant has no production model (or an id that cannot be one)."""


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def own_domain_view(store: Any) -> Any:
    """A copy of a (wrapped) tracker store that shares its connections but holds its own domain.

    Rasa wraps the configured store (``FailSafeTrackerStore`` → ``AwaitableTrackerStore`` → e.g.
    ``SQLTrackerStore``) and sets ``domain`` on the innermost one, so agents sharing one object would
    rebuild each other's trackers with the wrong slots.
    """
    clone = copy.copy(store)
    inner = getattr(store, "_tracker_store", None)
    if inner is not None:
        clone._tracker_store = own_domain_view(inner)
    if hasattr(store, "_fallback_tracker_store"):
        clone._fallback_tracker_store = None  # created on demand, per view
    return clone


@dataclass
class CachedAgent:
    """One tenant's loaded agent."""

    tenant_id: Text
    agent: Any
    model_file: Text
    stamp: Optional[Tuple[int, int]]
    size_mb: float
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    load_s: float = 0.0

    def describe(self) -> Dict[Text, Any]:
        """What ``GET /webhooks/gateway/agents`` shows."""
        return {"tenant_id": self.tenant_id, "model_id": self.agent.model_id, "model_file": self.model_file,
                "size_mb": round(self.size_mb, 1), "load_s": round(self.load_s, 2)}


class TenantAgentCache:
    """Per-tenant agents of one Rasa process.

    Args:
        template: The agent the server started with: its lock store, action endpoint and tracker store
            are shared by every tenant's agent.
        registry_dir: The model registry folder holding ``<tenant>/production.json``.
        budget_mb: Memory the cached agents may take together.
        build: Builds an agent for an archive (worker thread); the default shares ``template``'s parts.
    """

    def __init__(self, template: Any, registry_dir: Optional[Path], budget_mb: float = DEFAULT_BUDGET_MB,
                 build: Optional[Callable[[Text], Any]] = None) -> None:
        self.template = template
        self.registry_dir = registry_dir
        self.budget_mb = budget_mb
        self._build = build or self._build_agent
        self._entries: Dict[Text, CachedAgent] = {}
        self._tenant_locks: Dict[Text, asyncio.Lock] = {}
        self._load_lock = asyncio.Lock()
        self.evictions = 0

    @classmethod
    def from_environment(cls, template: Any) -> "TenantAgentCache":
        """The cache configured by ``SWITCHBOARD_MODEL_REGISTRY_DIR`` and ``SWITCHBOARD_RASA_AGENT_BUDGET_MB``."""
        folder = os.environ.get(REGISTRY_ENV)
        budget = float(os.environ.get(BUDGET_ENV) or DEFAULT_BUDGET_MB)
        return cls(template, Path(folder) if folder else None, budget)

    # ------------------------------------------------------------------ lookup
    def _pointer(self, tenant_id: Text) -> Optional[Path]:
        if self.registry_dir is None or not TENANT_ID.match(tenant_id):
            return None
        return self.registry_dir / tenant_id / POINTER_NAME

    def _read_pointer(self, tenant_id: Text) -> Optional[Tuple[Tuple[int, int], Text]]:
        """(stamp, model file) of the tenant's production file, None when it has none."""
        path = self._pointer(tenant_id)
        if path is None:
            return None
        try:
            stat = path.stat()
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        model_file = body.get("model_file") if isinstance(body, dict) else None
        if not isinstance(model_file, str) or not model_file:
            return None
        return (stat.st_mtime_ns, stat.st_size), model_file

    def _stamp(self, tenant_id: Text) -> Optional[Tuple[int, int]]:
        path = self._pointer(tenant_id)
        try:
            stat = path.stat() if path is not None else None
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size) if stat is not None else None

    async def agent_for(self, tenant_id: Text) -> Any:
        """The agent serving ``tenant_id`` now (loaded or swapped first when needed).

        Raises:
            NoAssistantError: The tenant has no production model.
        """
        entry = self._entries.get(tenant_id)
        if entry is not None and entry.stamp is not None and entry.stamp == self._stamp(tenant_id):
            entry.last_used = time.monotonic()
            return entry.agent
        pointer = self._read_pointer(tenant_id)
        if pointer is None:
            if entry is not None:  # loaded explicitly (PUT) before any production file existed
                entry.last_used = time.monotonic()
                return entry.agent
            raise NoAssistantError(f"tenant {tenant_id!r} has no assistant in production")
        stamp, model_file = pointer
        if entry is not None and _same_file(entry.model_file, model_file):
            entry.stamp, entry.last_used = stamp, time.monotonic()
            return entry.agent
        return (await self.load(tenant_id, model_file, stamp)).agent

    async def load(self, tenant_id: Text, model_file: Text, stamp: Optional[Tuple[int, int]] = None) -> CachedAgent:
        """Load ``model_file`` as the tenant's agent (a no-op when it already is) and return the entry.

        Raises:
            NoAssistantError: A tenant id that cannot be one.
            Exception: The archive could not be loaded (the tenant's previous agent keeps serving).
        """
        if not TENANT_ID.match(tenant_id):
            raise NoAssistantError(f"invalid tenant id {tenant_id!r}")
        lock = self._tenant_locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            current = self._entries.get(tenant_id)
            if current is not None and _same_file(current.model_file, model_file):
                current.stamp = stamp or current.stamp
                return current
            reused = self._startup_agent_for(model_file)
            if reused is not None:
                entry = CachedAgent(tenant_id, reused, model_file, stamp, size_mb=0.0)
            else:
                async with self._load_lock:
                    before, started = rss_mb(), time.monotonic()
                    agent = await asyncio.get_running_loop().run_in_executor(None, self._build, model_file)
                    entry = CachedAgent(tenant_id, agent, model_file, stamp, size_mb=max(rss_mb() - before, 1.0),
                                        load_s=time.monotonic() - started)
            self._entries[tenant_id] = entry
            logger.info("tenant %s now served by %s (model %s, %.0f MB, %.1f s)", tenant_id, model_file,
                        entry.agent.model_id, entry.size_mb, entry.load_s)
            self._evict(keep=tenant_id)
            return entry

    def _startup_agent_for(self, model_file: Text) -> Optional[Any]:
        """The server's start-up agent when it was loaded from ``model_file`` and no tenant holds it yet."""
        processor = getattr(self.template, "processor", None)
        path = getattr(processor, "model_path", None)
        if path is None or not _same_file(str(path), model_file):
            return None
        if any(e.agent is self.template for e in self._entries.values()):
            return None
        return self.template

    def _evict(self, keep: Text) -> None:
        """Drop least recently used agents until the rest fit the budget (``keep`` always stays)."""
        while sum(e.size_mb for e in self._entries.values()) > self.budget_mb:
            victims = sorted((e for e in self._entries.values() if e.tenant_id != keep), key=lambda e: e.last_used)
            if not victims:
                return
            victim = victims[0]
            del self._entries[victim.tenant_id]
            self.evictions += 1
            logger.info("evicted tenant %s's agent (%.0f MB) to stay within %.0f MB", victim.tenant_id,
                        victim.size_mb, self.budget_mb)

    def _build_agent(self, model_file: Text) -> Any:
        """A new agent for ``model_file`` with the shared stores and endpoints (worker thread)."""
        from rasa.core.agent import Agent

        old = self.template
        agent = Agent(tracker_store=own_domain_view(_innermost(old.tracker_store)), lock_store=old.lock_store,
                      action_endpoint=old.action_endpoint, model_server=None, remote_storage=None,
                      http_interpreter=old.http_interpreter)
        agent.load_model(model_file)
        if not agent.is_ready():
            raise RuntimeError(f"no model could be loaded from {model_file}")
        return agent

    def describe(self) -> Dict[Text, Any]:
        """Loaded agents, their sizes and the budget."""
        entries: List[Dict[Text, Any]] = [e.describe() for e in
                                          sorted(self._entries.values(), key=lambda e: e.tenant_id)]
        return {"agents": entries, "budget_mb": self.budget_mb, "evictions": self.evictions,
                "used_mb": round(sum(e.size_mb for e in self._entries.values()), 1), "rss_mb": round(rss_mb(), 1)}


def _innermost(store: Any) -> Any:
    """The configured store inside Rasa's fail-safe wrapper (the agent adds its own wrapper)."""
    return getattr(store, "_tracker_store", store) if type(store).__name__ == "FailSafeTrackerStore" else store


def _same_file(a: Text, b: Text) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)
