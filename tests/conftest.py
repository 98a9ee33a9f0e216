"""Fixtures shared by every test layer: settings on a throw-away database."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.session import create_db_engine, create_session_factory
from gateway.migrate import upgrade_database
from gateway.settings import Settings
from gateway.stack import free_port, scratch_settings  # noqa: F401 - free_port is the tests' too

if TYPE_CHECKING:
    from gateway.stack import Stack


def run_async(coroutine):  # type: ignore[no-untyped-def]
    """Run a coroutine on its own thread and loop: Playwright's sync API may hold this thread's loop (e2e)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=120)


def service_up(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port`` (the machine's PostgreSQL, Redis, RabbitMQ)."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings with fresh secrets and every file under ``tmp_path`` (the admin API off unless a test turns it on)."""
    return scratch_settings(tmp_path, **{"demo_widget_key": "wk_test_northwind", **overrides})


def postgres_database(prefix: str) -> Iterator[str]:
    """Yields the URL of a new database on the machine's PostgreSQL, dropped when resumed; skips without it."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    conninfo = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    try:
        # Short-lived admin connections: a test may restart the server in between.
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is NOT reachable on 127.0.0.1:5432 ({exc}); only the SQLite run covers this")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_sessions(backend: str, tmp_path: Path, prefix: str,
                      tenants: tuple[str, ...] = ("acme", "globex")) -> Iterator[sessionmaker[Session]]:
    """Yields the session factory of a migrated gateway database with ``tenants``, on ``backend``.

    ``backend`` is ``"sqlite"`` (a file under ``tmp_path``) or ``"postgresql"`` (a fresh database on the
    machine's server, dropped afterwards; the test skips without one). Contract tests parametrise over both.
    """
    from gateway.stores.tenant_store import TenantStore

    urls: Iterator[str] = (iter([f"sqlite:///{tmp_path / f'{prefix}.db'}"]) if backend == "sqlite"
                           else postgres_database(prefix))
    url = next(urls)
    upgrade_database(url)
    engine = create_db_engine(url)
    sessions = create_session_factory(engine)
    for tenant in tenants:
        TenantStore(sessions).ensure_tenant(tenant, tenant.title())
    try:
        yield sessions
    finally:
        engine.dispose()
        next(urls, None)  # drops the PostgreSQL database


def tenant_admin_headers(database_url: str, tenant_id: str, email: str | None = None) -> dict[str, str]:
    """Headers of a new admin of ``tenant_id`` (its session token as a bearer token, as API clients send it).

    Tenant routes (``/api/v1/admin/tenants/{t}/…``) are the tenant's own admins'; the operator token
    opens only tenants and plans.
    """
    from gateway.stores.agent_store import AgentStore
    from gateway.stores.tenant_store import TenantStore

    engine = create_db_engine(database_url)
    try:
        sessions = create_session_factory(engine)
        if not TenantStore(sessions).exists(tenant_id):
            TenantStore(sessions).ensure_tenant(tenant_id, tenant_id.title())
        store = AgentStore(sessions)
        agent = store.create(tenant_id, email or f"admin-{secrets.token_hex(4)}@{tenant_id}.example", "Admin",
                             "Correct-Horse-9-Battery", role="admin")
        return {"Authorization": f"Bearer {store.start_session(agent).token}"}
    finally:
        engine.dispose()


_ADMIN_HEADERS: dict[tuple[str, str], dict[str, str]] = {}


def tenant_admin_of(client, tenant_id: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Headers of an admin of ``tenant_id`` on the database of a ``TestClient``'s app (one per tenant and database)."""
    url = client.app.state.services.settings.database_url
    if (url, tenant_id) not in _ADMIN_HEADERS:
        _ADMIN_HEADERS[(url, tenant_id)] = tenant_admin_headers(url, tenant_id)
    return _ADMIN_HEADERS[(url, tenant_id)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for one test, on its own SQLite file."""
    return make_settings(tmp_path)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A migrated database (real Alembic migrations) and its session factory."""
    upgrade_database(settings.database_url)
    engine = create_db_engine(settings.database_url)
    yield create_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator["Stack"]:
    """The real embedded stack (actions, Rasa, gateway) on free ports, started once per session."""
    from gateway.stack import Stack  # imported lazily: unit tests never need it

    workdir = tmp_path_factory.mktemp("stack")
    # Every test's browser and API client comes from 127.0.0.1: the per-address limits are raised for them.
    # The admin API is on for the stack: the learning-loop test drives the inbox and retraining through it.
    stack = Stack(make_settings(workdir, rate_ip_per_min=6000, rate_ip_burst=600, rate_new_conversations_per_min=600,
                                admin_token=secrets.token_urlsafe(32)),
                  log_dir=workdir / "logs")
    if not stack.settings.model_path.exists():
        pytest.fail(f"no trained model at {stack.settings.model_path}: run `make train` (make test does)")
    stack.start(timeout_s=300, progress=lambda line: print(f"[stack] {line}"))
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The packaged all-MiniLM-L6-v2 sentence embedder, loaded once per session."""
    from knowledge_base.embedder import shared_embedder

    return shared_embedder(None)


@pytest.fixture
def kb(tmp_path: Path, embedder):  # type: ignore[no-untyped-def]
    """A real, empty knowledge base (SQLite, FAISS, MiniLM) with tenants ``northwind`` and ``globex``."""
    from gateway.stores.tenant_store import TenantStore
    from knowledge_base.document_store import KnowledgeDocumentStore
    from knowledge_base.retriever import HybridRetriever
    from knowledge_base.service import KnowledgeBase
    from knowledge_base.tenant_index import TenantIndexStore

    url = f"sqlite:///{tmp_path / 'kb.db'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    sessions = create_session_factory(engine)
    tenants = TenantStore(sessions)
    tenants.ensure_tenant("northwind", "Northwind Goods")
    tenants.ensure_tenant("globex", "Globex")
    yield KnowledgeBase(KnowledgeDocumentStore(sessions), TenantIndexStore(tmp_path / "idx", embedder.dimension),
                        embedder, HybridRetriever())
    engine.dispose()
