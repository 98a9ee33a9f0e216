"""The usage ledger: append-only records with idempotency keys, and counters kept in the same transaction.

A record's idempotency key names the event that caused it (``message:42``, ``conversation:<id>``),
so retries, replays and crashes never count twice: a second insert of the same key is ignored, and
the counter moves only when the record is new. Counters make quota checks one primary-key row
instead of a ledger scan; ``reconcile`` recomputes them from the ledger to prove they agree.

A batch locks its counters in the order of their units, whatever order the caller gave: two batches
of the same units (a conversation's first message: conversations and messages) then cannot each hold
the counter the other waits for. Were PostgreSQL to report a deadlock or a serialisation failure all
the same, the batch is rolled back and written again (its keys make that safe), a few times, before
the error reaches the caller.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import TextClause, bindparam, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.periods import period_of
from gateway.billing.plans import Unit
from gateway.db.models import UsageCounter, UsageRecord
from gateway.db.session import single_read_sessions


logger = logging.getLogger(__name__)

#: PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back whole
#: and may simply run again.
RETRIABLE_SQLSTATES = ("40P01", "40001")
#: Attempts of a batch before such an error reaches the caller.
RETRIES = 3


@dataclass(frozen=True)
class Meter:
    """One thing to count: ``quantity`` of ``unit``, caused by the event named ``key``."""

    unit: Unit
    key: str
    quantity: int = 1


class QuotaExceededError(Exception):
    """Recording would pass a hard limit; nothing of the batch was recorded."""

    def __init__(self, unit: Unit, total: int) -> None:
        super().__init__(f"{unit.value} would reach {total}")
        self.unit = unit
        self.total = total


def dialect_insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite alike)."""
    return insert_for_dialect(session.get_bind().dialect.name)(table)


def insert_for_dialect(dialect: str) -> Callable[[Any], Any]:
    """``insert`` of the dialect named (PostgreSQL's, or SQLite's for anything else)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


@lru_cache(maxsize=4)
def _statements(dialect: str) -> tuple[Any, Any]:
    """The ledger's two writes for a dialect, built once with bound parameters (compiled once, and
    prepared by PostgreSQL): the record (nothing when its key is known) and the counter's increment."""
    insert = insert_for_dialect(dialect)
    records, counters = UsageRecord.__table__, UsageCounter.__table__
    record = (insert(records)
              .values(tenant_id=bindparam("p_tenant"), unit=bindparam("p_unit"), quantity=bindparam("p_quantity"),
                      period=bindparam("p_period"), occurred_at=bindparam("p_at", type_=records.c.occurred_at.type),
                      idempotency_key=bindparam("p_key"), source=bindparam("p_source", type_=records.c.source.type))
              .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
              .returning(records.c.id))
    upsert = insert(counters).values(tenant_id=bindparam("p_tenant"), period=bindparam("p_period"),
                                     unit=bindparam("p_unit"), quantity=bindparam("p_quantity"))
    count = (upsert.on_conflict_do_update(index_elements=["tenant_id", "period", "unit"],
                                          set_={"quantity": counters.c.quantity + upsert.excluded.quantity})
             .returning(counters.c.quantity))
    return record, count


@lru_cache(maxsize=1)
def _batch_statement() -> TextClause:
    """PostgreSQL: a batch without a limit to check, in one statement (its own transaction, so a crash
    stores all of it or nothing). The records go in unless their key is known; the counters move by
    what went in, and their new totals come back."""
    records, counters = UsageRecord.__tablename__, UsageCounter.__tablename__
    return text(f"""
        WITH meters AS (
            SELECT * FROM unnest(CAST(:p_units AS text[]), CAST(:p_quantities AS integer[]),
                                 CAST(:p_keys AS text[])) AS m(unit, quantity, idempotency_key)
        ), new AS (
            INSERT INTO {records} (tenant_id, unit, quantity, period, occurred_at, idempotency_key, source)
            SELECT :p_tenant, unit, quantity, :p_period, :p_at, idempotency_key, CAST(:p_source AS json) FROM meters
            ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
            RETURNING unit, quantity
        )
        INSERT INTO {counters} AS c (tenant_id, period, unit, quantity)
        SELECT :p_tenant, :p_period, unit, sum(quantity) FROM new GROUP BY unit ORDER BY unit
        ON CONFLICT (tenant_id, period, unit) DO UPDATE SET quantity = c.quantity + excluded.quantity
        RETURNING unit, quantity""")


class UsageLedger:
    """Writes and reads the ledger and its counters."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._autocommit = single_read_sessions(sessions)
        self._one_statement = sessions.kw["bind"].dialect.name == "postgresql"

    def record(self, tenant_id: str, meters: list[Meter], at: datetime, source: dict[str, Any] | None = None,
               allow: Callable[[Unit, int], bool] | None = None) -> dict[Unit, int]:
        """Record a batch atomically; returns the new period totals of the units that were new.

        ``allow(unit, new_total)`` may refuse a new total (a hard limit): the whole batch is then
        rolled back and ``QuotaExceededError`` raised. Meters whose key was already recorded are
        skipped and change nothing.
        """
        period = period_of(at)
        meters = sorted(meters, key=lambda meter: meter.unit.value)  # the counters' lock order
        for attempt in range(1, RETRIES + 1):
            try:
                if allow is None and self._one_statement and meters:
                    return self._record_batch(tenant_id, meters, at, period, source)
                return self._record_each(tenant_id, meters, at, period, source, allow)
            except OperationalError as exc:
                if attempt == RETRIES or getattr(exc.orig, "sqlstate", None) not in RETRIABLE_SQLSTATES:
                    raise
                logger.warning("usage batch of %s rolled back (%s); writing it again", tenant_id,
                               exc.orig.__class__.__name__)
        raise AssertionError("unreachable")

    def _record_each(self, tenant_id: str, meters: list[Meter], at: datetime, period: str,
                     source: dict[str, Any] | None, allow: Callable[[Unit, int], bool] | None) -> dict[Unit, int]:
        """``record`` one meter at a time in one transaction (SQLite, or a limit to check)."""
        totals: dict[Unit, int] = {}
        with self._sessions.begin() as session:
            record, count = _statements(session.get_bind().dialect.name)
            for meter in meters:
                # The insert comes first: on SQLite it takes the write lock before anything is read.
                values = {"p_tenant": tenant_id, "p_unit": meter.unit.value, "p_quantity": meter.quantity,
                          "p_period": period}
                inserted = session.execute(record, {**values, "p_at": at, "p_key": meter.key[:200],
                                                    "p_source": source}).scalar_one_or_none()
                if inserted is None:
                    continue
                total = session.execute(count, values).scalar_one()
                if allow is not None and not allow(meter.unit, total):
                    raise QuotaExceededError(meter.unit, total)  # leaving the block rolls the batch back
                totals[meter.unit] = total
        return totals

    def _record_batch(self, tenant_id: str, meters: list[Meter], at: datetime, period: str,
                      source: dict[str, Any] | None) -> dict[Unit, int]:
        """``record`` without a limit on PostgreSQL: one round trip instead of four or more."""
        with self._autocommit() as session:
            rows = session.execute(_batch_statement(), {
                "p_units": [m.unit.value for m in meters], "p_quantities": [m.quantity for m in meters],
                "p_keys": [m.key[:200] for m in meters], "p_tenant": tenant_id, "p_period": period, "p_at": at,
                "p_source": None if source is None else json.dumps(source)}).all()
        return {Unit(unit): quantity for unit, quantity in rows}

    def totals(self, tenant_id: str, period: str) -> dict[Unit, int]:
        """Counter values of a period (one indexed read)."""
        with self._sessions() as session:
            rows = session.execute(select(UsageCounter.unit, UsageCounter.quantity).where(
                UsageCounter.tenant_id == tenant_id, UsageCounter.period == period)).all()
        return {Unit(unit): quantity for unit, quantity in rows}

    def ledger_totals(self, tenant_id: str, period: str) -> dict[Unit, int]:
        """Totals recomputed from the ledger itself."""
        with self._sessions() as session:
            rows = session.execute(select(UsageRecord.unit, func.sum(UsageRecord.quantity)).where(
                UsageRecord.tenant_id == tenant_id, UsageRecord.period == period).group_by(UsageRecord.unit)).all()
        return {Unit(unit): int(total) for unit, total in rows}

    def reconcile(self, tenant_id: str, period: str) -> dict[str, tuple[int, int]]:
        """Units whose counter differs from the ledger: ``{unit: (counter, ledger)}`` (empty when they agree)."""
        counters, ledger = self.totals(tenant_id, period), self.ledger_totals(tenant_id, period)
        return {unit.value: (counters.get(unit, 0), ledger.get(unit, 0))
                for unit in set(counters) | set(ledger) if counters.get(unit, 0) != ledger.get(unit, 0)}

    def daily(self, tenant_id: str, period: str) -> dict[Unit, dict[str, int]]:
        """Per unit, the quantity recorded each day of the period (``YYYY-MM-DD``)."""
        with self._sessions() as session:  # grouped in Python: portable across SQLite and PostgreSQL
            rows = session.execute(select(UsageRecord.unit, UsageRecord.occurred_at, UsageRecord.quantity).where(
                UsageRecord.tenant_id == tenant_id, UsageRecord.period == period)).all()
        series: defaultdict[Unit, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        for unit, occurred_at, quantity in rows:
            series[Unit(unit)][occurred_at.date().isoformat()] += quantity
        return {unit: dict(days) for unit, days in series.items()}
