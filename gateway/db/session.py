"""Engine and session factory of the gateway database."""

from __future__ import annotations

import select
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

#: Connections the autocommit engine keeps open, and how many more it may open under load.
AUTOCOMMIT_POOL_SIZE = 4
AUTOCOMMIT_POOL_OVERFLOW = 4
_SIBLINGS_LOCK = threading.Lock()


def create_db_engine(database_url: str) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys so it behaves like a real server.

    Args:
        database_url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://…``).

    Returns:
        A pooled engine.
    """
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL still makes every transaction atomic and survives a crashed process;
            # only a power cut can lose the last commits. FULL made each commit wait for the disk:
            # a third of the gateway's busy time under load, several commits per turn.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten, so an erased conversation does not linger in free pages.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    engine = create_engine(database_url)
    _ping_when_the_server_spoke(engine)
    return engine


def _ping_when_the_server_spoke(engine: Engine) -> None:
    """Ping a pooled connection on checkout only when the server said something on it.

    ``pool_pre_ping`` pings on every checkout: a round trip per transaction, several a turn, and a
    round trip to a process that sat idle is the slow kind (about 1 ms here against 0.2 ms back to
    back). A server that ends a connection (a restart, ``pg_terminate_backend``, an idle timeout) says
    so on its socket: it sends its last message or closes it, and the socket turns readable. An idle
    connection's socket is otherwise silent, so looking at it (no round trip) tells a connection worth
    pinging from one that is as good as a ping. The ping then raises the driver's own "connection
    closed" for a dead one, and the pool retries the checkout on a fresh connection. A connection that
    dies without a word (a cut network) fails the one statement that meets it, as it would have failed
    a ping: SQLAlchemy then drops every pooled connection opened before the failure.
    """

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not _server_spoke(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(str(error)) from error


def _server_spoke(dbapi_connection: Any) -> bool:
    """Whether an idle connection has something to read (a closed socket counts), or is closed already."""
    if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
        return True
    try:
        descriptor = dbapi_connection.fileno()
    except Exception:  # noqa: BLE001 - no socket to look at: let the ping decide
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def single_read_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions whose every statement is its own transaction (autocommit on PostgreSQL).

    A statement in a normal session costs two more round trips on PostgreSQL (``BEGIN`` before it,
    ``ROLLBACK`` or ``COMMIT`` after); the hot per-turn lookups (widget key, who owns the
    conversation, recent messages) and the one-statement writes of the PostgreSQL paths (a message
    with its positions, a ledger batch) each run one statement, which is atomic by itself, so the
    transaction buys them nothing. Never use these for work of several statements that must commit
    or read together. On SQLite these are the normal sessions, so a write there still needs its commit.
    """
    engine = sessions.kw["bind"]
    if engine.dialect.name == "sqlite":
        return sessions  # in-process: no round trip to save, and switching modes costs more than it saves
    return sessionmaker(autocommit_engine(engine), expire_on_commit=False)


def autocommit_engine(engine: Engine) -> Engine:
    """The one autocommit engine beside ``engine``: its own small pool, disposed with it.

    psycopg prepares a statement on the server once a connection has run it five times, which
    saves PostgreSQL parsing and planning it again (most of a hot statement's cost). But every
    ``ROLLBACK`` throws a connection's prepared statements away, and a pool shared with
    transactional sessions sees one whenever such a session closes without writing, so the hot
    statements were never prepared. Connections that only ever run autocommit statements never roll
    back; most-recently-used first keeps the busy few warm.
    """
    with _SIBLINGS_LOCK:  # stores are built at start-up, but two built at once must still share one
        sibling = engine.__dict__.get("_switchboard_autocommit")
        if sibling is None:
            sibling = _new_autocommit_engine(engine)
            engine.__dict__["_switchboard_autocommit"] = sibling
    return sibling


def _new_autocommit_engine(engine: Engine) -> Engine:
    sibling = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_use_lifo=True,
                            pool_size=AUTOCOMMIT_POOL_SIZE, max_overflow=AUTOCOMMIT_POOL_OVERFLOW)
    _ping_when_the_server_spoke(sibling)

    @event.listens_for(engine, "engine_disposed")
    def _dispose_sibling(_engine: Engine) -> None:
        sibling.dispose()

    return sibling
