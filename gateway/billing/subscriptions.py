"""Subscriptions: which plan a tenant is on, when; plan changes split a period into prorated segments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.periods import bounds
from gateway.db.models import PlanRow, Subscription, Tenant, aware, utcnow
from gateway.db.session import single_read_sessions


class SubscriptionError(ValueError):
    """A subscription change that cannot be made (unknown tenant or plan)."""


@dataclass(frozen=True)
class Segment:
    """A stretch of one period on one plan."""

    plan_id: str
    start: datetime
    end: datetime


class SubscriptionStore:
    """One open subscription per tenant; changing plan closes it and opens the next at the same instant."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # one-statement lookups: no BEGIN/ROLLBACK

    def subscribe(self, tenant_id: str, plan_id: str, at: datetime | None = None, actor: str | None = None) -> None:
        """Put the tenant on ``plan_id`` from ``at`` (now by default).

        Raises:
            SubscriptionError: Unknown tenant or plan.
        """
        at = at or utcnow()
        with self._sessions.begin() as session:
            # Locking the tenant row serialises concurrent plan changes of one tenant (PostgreSQL).
            tenant = session.execute(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).scalar_one_or_none()
            if tenant is None:
                raise SubscriptionError(f"no tenant {tenant_id!r}")
            if session.get(PlanRow, plan_id) is None:
                raise SubscriptionError(f"no plan {plan_id!r}")
            current = session.execute(select(Subscription).where(Subscription.tenant_id == tenant_id,
                                                                 Subscription.ends_at.is_(None))).scalar_one_or_none()
            if current is not None:
                if current.plan_id == plan_id:
                    return
                current.ends_at = at
            session.add(Subscription(tenant_id=tenant_id, plan_id=plan_id, starts_at=at, changed_by=actor))

    def plan_at(self, tenant_id: str, at: datetime) -> str | None:
        """The tenant's plan at a moment (None: no subscription then)."""
        with self._reads() as session:
            return session.execute(select(Subscription.plan_id).where(
                Subscription.tenant_id == tenant_id, Subscription.starts_at <= at,
                or_(Subscription.ends_at.is_(None), Subscription.ends_at > at),
            ).order_by(Subscription.starts_at.desc()).limit(1)).scalar_one_or_none()

    def segments(self, tenant_id: str, period: str) -> list[Segment]:
        """The plans of a period, in order, clipped to the period."""
        start, end = bounds(period)
        with self._sessions() as session:
            rows = session.execute(select(Subscription).where(
                Subscription.tenant_id == tenant_id, Subscription.starts_at < end,
                or_(Subscription.ends_at.is_(None), Subscription.ends_at > start),
            ).order_by(Subscription.starts_at)).scalars().all()
        segments = []
        for row in rows:
            seg_start = max(start, aware(row.starts_at))  # type: ignore[type-var]
            seg_end = min(end, aware(row.ends_at) or end)  # type: ignore[type-var]
            if seg_end > seg_start:
                segments.append(Segment(row.plan_id, seg_start, seg_end))
        return segments

    def tenants_in(self, period: str) -> list[str]:
        """Tenants with a subscription during the period."""
        start, end = bounds(period)
        with self._sessions() as session:
            return sorted(set(session.execute(select(Subscription.tenant_id).where(
                Subscription.starts_at < end, or_(Subscription.ends_at.is_(None), Subscription.ends_at > start),
            )).scalars()))
