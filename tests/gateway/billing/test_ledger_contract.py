"""The ledger contract, on SQLite and PostgreSQL: idempotent, exact under concurrency, reconcilable."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.ledger import Meter, QuotaExceededError, UsageLedger
from gateway.billing.plans import Unit
from tests.gateway.billing.conftest import utc


def test_a_replayed_event_is_counted_once(billing_db: sessionmaker[Session]) -> None:
    ledger = UsageLedger(billing_db)
    at = utc(2026, 11, 5, 12)
    assert ledger.record("acme", [Meter(Unit.CUSTOMER_MESSAGES, "message:1")], at) == {Unit.CUSTOMER_MESSAGES: 1}
    assert ledger.record("acme", [Meter(Unit.CUSTOMER_MESSAGES, "message:1")], at) == {}
    assert ledger.totals("acme", "2026-11") == {Unit.CUSTOMER_MESSAGES: 1}
    # Keys are per tenant: another tenant's message 1 is its own.
    ledger.record("globex", [Meter(Unit.CUSTOMER_MESSAGES, "message:1")], at)
    assert ledger.totals("globex", "2026-11") == {Unit.CUSTOMER_MESSAGES: 1}


def test_parallel_writers_lose_nothing_and_double_nothing(billing_db: sessionmaker[Session]) -> None:
    ledger = UsageLedger(billing_db)
    at = utc(2026, 11, 5, 12)

    def conversation(n: int) -> None:
        for m in range(10):
            ledger.record("acme", [Meter(Unit.CONVERSATIONS, f"conversation:{n}"),
                                   Meter(Unit.CUSTOMER_MESSAGES, f"message:{n}:{m}")], at)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(conversation, range(20)))
        list(pool.map(conversation, range(20)))  # a full replay
    assert ledger.totals("acme", "2026-11") == {Unit.CONVERSATIONS: 20, Unit.CUSTOMER_MESSAGES: 200}
    assert ledger.reconcile("acme", "2026-11") == {}


def test_a_refused_batch_records_nothing(billing_db: sessionmaker[Session]) -> None:
    ledger = UsageLedger(billing_db)
    at = utc(2026, 11, 5, 12)
    ledger.record("acme", [Meter(Unit.CUSTOMER_MESSAGES, "message:1")], at)
    with pytest.raises(QuotaExceededError):
        ledger.record("acme", [Meter(Unit.CONVERSATIONS, "conversation:2"), Meter(Unit.CUSTOMER_MESSAGES, "message:2")],
                      at, allow=lambda unit, total: unit != Unit.CUSTOMER_MESSAGES or total <= 1)
    assert ledger.totals("acme", "2026-11") == {Unit.CUSTOMER_MESSAGES: 1}
    assert ledger.ledger_totals("acme", "2026-11") == {Unit.CUSTOMER_MESSAGES: 1}
    # The refused event can be recorded later (its key was not burnt).
    assert ledger.record("acme", [Meter(Unit.CUSTOMER_MESSAGES, "message:2")], at) == {Unit.CUSTOMER_MESSAGES: 2}


def test_hard_limit_holds_under_concurrency(billing_db: sessionmaker[Session]) -> None:
    ledger = UsageLedger(billing_db)
    at = utc(2026, 11, 5, 12)

    def send(n: int) -> bool:
        try:
            ledger.record("acme", [Meter(Unit.CUSTOMER_MESSAGES, f"message:{n}")], at,
                          allow=lambda unit, total: total <= 25)
            return True
        except QuotaExceededError:
            return False

    with ThreadPoolExecutor(8) as pool:
        accepted = sum(pool.map(send, range(60)))
    assert accepted == 25
    assert ledger.totals("acme", "2026-11") == {Unit.CUSTOMER_MESSAGES: 25}


def test_periods_are_counted_apart_and_daily_series_add_up(billing_db: sessionmaker[Session]) -> None:
    ledger = UsageLedger(billing_db)
    ledger.record("acme", [Meter(Unit.CUSTOMER_MESSAGES, "m:1", 3)], utc(2026, 11, 30, 23, 59))
    ledger.record("acme", [Meter(Unit.CUSTOMER_MESSAGES, "m:2", 2)], utc(2026, 11, 2, 8))
    ledger.record("acme", [Meter(Unit.CUSTOMER_MESSAGES, "m:3")], utc(2026, 12, 1, 0, 0))
    assert ledger.totals("acme", "2026-11") == {Unit.CUSTOMER_MESSAGES: 5}
    assert ledger.totals("acme", "2026-12") == {Unit.CUSTOMER_MESSAGES: 1}
    assert ledger.daily("acme", "2026-11") == {Unit.CUSTOMER_MESSAGES: {"2026-11-02": 2, "2026-11-30": 3}}


def test_a_batch_counts_only_its_new_keys_and_keeps_its_source(billing_db: sessionmaker[Session]) -> None:
    from sqlalchemy import select

    from gateway.db.models import UsageRecord

    ledger = UsageLedger(billing_db)
    at = utc(2026, 11, 5, 12)
    source = {"conversation_id": "c-1", "channel": "web", "note": "ünïcode ✓"}
    assert ledger.record("acme", [Meter(Unit.CONVERSATIONS, "conversation:c-1"),
                                  Meter(Unit.CUSTOMER_MESSAGES, "message:1", 3)], at, source) == {
        Unit.CONVERSATIONS: 1, Unit.CUSTOMER_MESSAGES: 3}
    # The conversation is known now: only the message moves its counter, and the totals say so.
    assert ledger.record("acme", [Meter(Unit.CONVERSATIONS, "conversation:c-1"),
                                  Meter(Unit.CUSTOMER_MESSAGES, "message:2")], at, None) == {
        Unit.CUSTOMER_MESSAGES: 4}
    with billing_db() as session:
        rows = session.execute(select(UsageRecord.idempotency_key, UsageRecord.quantity, UsageRecord.source,
                                      UsageRecord.period).order_by(UsageRecord.id)).all()
    assert [tuple(r) for r in rows] == [("conversation:c-1", 1, source, "2026-11"), ("message:1", 3, source, "2026-11"),
                                        ("message:2", 1, None, "2026-11")]
    assert ledger.reconcile("acme", "2026-11") == {}


def test_batches_of_the_same_units_in_any_order_neither_deadlock_nor_lose_a_count(
        billing_db: sessionmaker[Session]) -> None:
    # A conversation's first message meters two units; callers may list them in either order, with or
    # without a limit to check. Locked in the caller's order (one meter at a time) or in the order the
    # one statement's GROUP BY returned them, two such batches on PostgreSQL could each hold the counter
    # the other wanted (deadlock_detected: the customer got a 503).
    ledger = UsageLedger(billing_db)
    at = utc(2026, 11, 5, 12)

    def write(n: int) -> None:
        meters = [Meter(Unit.CONVERSATIONS, f"conversation:{n}"), Meter(Unit.CUSTOMER_MESSAGES, f"message:{n}")]
        if n % 2:
            meters.reverse()
        ledger.record("acme", meters, at, allow=None if n % 4 < 2 else (lambda unit, total: True))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(300)))
    assert ledger.totals("acme", "2026-11") == {Unit.CONVERSATIONS: 300, Unit.CUSTOMER_MESSAGES: 300}
    assert ledger.reconcile("acme", "2026-11") == {}
