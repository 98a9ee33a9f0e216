"""The gateway's PostgreSQL engine pings a pooled connection only when the server said something on it,
and so replaces a connection the server dropped before any statement meets it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from gateway.db import session as db_session
from tests.conftest import postgres_database


@pytest.fixture
def engine() -> Iterator[Engine]:
    urls = postgres_database("sb_session")
    engine = db_session.create_db_engine(next(urls))
    yield engine
    engine.dispose()
    next(urls, None)


def _pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection):  # type: ignore[no-untyped-def]
        calls.append(time.monotonic())
        return original(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return calls


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_live_connection_is_not_pinged_however_long_it_sat_idle(engine: Engine,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _pings(engine, monkeypatch)
    first = _backend_pid(engine)
    for _ in range(5):
        assert _backend_pid(engine) == first  # the same pooled connection, reused
    time.sleep(1.2)  # longer than the old rule's one second of idleness
    assert _backend_pid(engine) == first
    assert pings == []


def test_a_connection_the_server_dropped_is_replaced_before_any_statement_meets_it(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _pings(engine, monkeypatch)
    for pause in (0.05, 0.5):  # used a moment later, or after sitting idle
        dropped = _backend_pid(engine)
        _terminate(dropped)
        time.sleep(pause)
        # The server's goodbye made the socket readable: the ping finds the connection dead and the
        # pool opens a new one, so the statement succeeds.
        assert _backend_pid(engine) != dropped
    assert len(pings) == 2


def test_a_connection_that_dies_without_a_word_fails_one_statement_only(engine: Engine,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dropped = _backend_pid(engine)
    # A cut network: the socket stays silent, so nothing on this side can know before a statement.
    monkeypatch.setattr(db_session, "_server_spoke", lambda _connection: False)
    _terminate(dropped)
    time.sleep(0.05)
    with pytest.raises(Exception):
        _backend_pid(engine)
    assert _backend_pid(engine) != dropped  # and the pool has already let it go


def test_one_statement_reads_keep_their_prepared_statements_while_transactions_roll_back(engine: Engine) -> None:
    sessions = db_session.create_session_factory(engine)
    reads = db_session.single_read_sessions(sessions)
    assert reads.kw["bind"] is db_session.single_read_sessions(sessions).kw["bind"]  # one sibling per engine
    with sessions() as session:  # the schema, for a real statement
        session.execute(text("CREATE TABLE tenants_probe (id text PRIMARY KEY)"))
        session.commit()
    for _ in range(7):  # psycopg prepares a statement on its fifth run on a connection
        with reads() as session:
            session.execute(text("SELECT id FROM tenants_probe WHERE id = :id"), {"id": "acme"}).all()
        with sessions() as session:  # a transactional read: closing it rolls back
            session.execute(text("SELECT 1")).all()
    with reads() as session:
        prepared = session.execute(text("SELECT count(*) FROM pg_prepared_statements "
                                        "WHERE statement LIKE '%tenants_probe%'")).scalar_one()
    assert prepared == 1


def test_the_autocommit_sibling_is_disposed_with_its_engine(engine: Engine) -> None:
    reads = db_session.single_read_sessions(db_session.create_session_factory(engine))
    with reads() as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    sibling = reads.kw["bind"]
    assert sibling.pool.checkedin() == 1
    engine.dispose()
    assert sibling.pool.checkedin() == 0
