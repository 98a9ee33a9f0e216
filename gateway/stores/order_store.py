"""Orders of each tenant's customers (demo data in the embedded default)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import Order
from gateway.db.session import single_read_sessions


@dataclass(frozen=True)
class OrderRecord:
    """What the order-status action needs to know about an order."""

    number: str
    status: str
    items: str
    carrier: str | None
    tracking_code: str | None
    estimated_delivery: date | None


class OrderStore:
    """Reads and upserts orders, always within one tenant."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # one-statement lookups

    def find(self, tenant_id: str, number: str) -> OrderRecord | None:
        """Look an order up by number (case-insensitive) within a tenant."""
        with self._reads() as session:
            row = session.execute(
                select(Order).where(
                    Order.tenant_id == tenant_id, func.upper(Order.number) == number.strip().upper()
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            return OrderRecord(
                number=row.number,
                status=row.status,
                items=row.items,
                carrier=row.carrier,
                tracking_code=row.tracking_code,
                estimated_delivery=row.estimated_delivery,
            )

    def upsert(self, tenant_id: str, record: OrderRecord) -> None:
        """Insert or update one order."""
        with self._sessions.begin() as session:
            row = session.execute(
                select(Order).where(Order.tenant_id == tenant_id, Order.number == record.number)
            ).scalar_one_or_none()
            if row is None:
                row = Order(tenant_id=tenant_id, number=record.number)
                session.add(row)
            row.status = record.status
            row.items = record.items
            row.carrier = record.carrier
            row.tracking_code = record.tracking_code
            row.estimated_delivery = record.estimated_delivery
