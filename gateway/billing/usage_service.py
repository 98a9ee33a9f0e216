"""Metering and quota enforcement in the request path.

Every customer message is metered before it reaches Rasa (and the conversation with its first
message). The check and the count are one transaction on the tenant's counter rows: under
concurrency the database serialises them, so a hard limit is never overshot and nothing is lost.
At 80 % and 100 % of a limit the tenant is told once per period (log, webhook, usage-page banner).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.ledger import Meter, QuotaExceededError, UsageLedger, dialect_insert
from gateway.billing.periods import period_of
from gateway.billing.plans import GAUGES, Plan, PlanStore, UnknownPlanError, Unit
from gateway.billing.subscriptions import SubscriptionStore
from gateway.db.models import UsageAlert, utcnow
from gateway.webhooks import queue_event

logger = logging.getLogger(__name__)

WARNING_LEVELS = (80, 100)
_PLAN_CACHE_S = 5.0


class _StoredKeys:
    """Keys this process knows are stored for good (ledger keys, alerts): a bounded, thread-safe memo.

    Args:
        size: Most keys kept; the least recently seen goes first (forgetting one only costs a statement).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[str, ...]) -> bool:
        return key in self._keys

    def add(self, key: tuple[str, ...]) -> None:
        """Remember ``key`` as stored."""
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            if len(self._keys) > self.size:
                self._keys.popitem(last=False)


@dataclass(frozen=True)
class QuotaDecision:
    """What the gateway may do with a customer message."""

    allowed: bool
    reason: str | None = None  # "limit_reached" | "channel_not_in_plan"
    unit: Unit | None = None
    offer_handoff: bool = False
    totals: dict[Unit, int] = field(default_factory=dict)


class UsageService:
    """Meters billable events and applies each tenant's plan.

    Tenants without a subscription are metered but not limited (self-hosted single-tenant use).

    Args:
        sessions: Database session factory.
        clock: Current time (tests move it across periods).
    """

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self.plans = PlanStore(sessions)
        self.ledger = UsageLedger(sessions)
        self.subscriptions = SubscriptionStore(sessions)
        self.clock = clock
        self._cache: dict[str, tuple[float, Plan | None]] = {}
        self._lock = threading.Lock()
        # Alerts this process knows are stored (they are never deleted): past 80 % of a limit every
        # message would otherwise open a transaction per level only to find the alert already there.
        self._announced = _StoredKeys(100_000)
        # Conversations whose meter this process saw stored (a ledger key is recorded once, for good): their
        # later messages skip that insert, one statement of three per message.
        self._metered = _StoredKeys(20_000)

    # ----------------------------------------------------------------- plans
    def plan_for(self, tenant_id: str, at: datetime | None = None) -> Plan | None:
        """The tenant's plan now (cached a few seconds) or at ``at``."""
        if at is not None:
            plan_id = self.subscriptions.plan_at(tenant_id, at)
            return self.plans.get(plan_id) if plan_id else None
        now = time.monotonic()
        known, plan = self._cached_plan(tenant_id)
        if known:
            return plan
        plan_id = self.subscriptions.plan_at(tenant_id, self.clock())
        try:
            plan = self.plans.get(plan_id) if plan_id else None
        except UnknownPlanError:
            plan = None
        with self._lock:
            self._cache[tenant_id] = (now, plan)
        return plan

    def _cached_plan(self, tenant_id: str) -> tuple[bool, Plan | None]:
        """(True, the plan) when read in the last few seconds (None is a plan too: the tenant has none),
        else (False, None); no database read."""
        with self._lock:
            hit = self._cache.get(tenant_id)
        if hit and time.monotonic() - hit[0] < _PLAN_CACHE_S:
            return True, hit[1]
        return False, None

    def change_plan(self, tenant_id: str, plan_id: str, actor: str | None = None, at: datetime | None = None) -> Plan:
        """Move the tenant to another plan now (prorated on the period's invoice)."""
        plan = self.plans.get(plan_id)
        self.subscriptions.subscribe(tenant_id, plan_id, at or self.clock(), actor)
        with self._lock:
            self._cache.pop(tenant_id, None)
        return plan

    # --------------------------------------------------------------- metering
    def cannot_refuse(self, tenant_id: str, channel: str) -> bool:
        """Whether metering a customer message of this tenant and channel is sure to let it through,
        known from the cached plan alone (False when the plan is not cached: ask ``customer_message``).

        True when the tenant has no plan, or its plan takes the channel and stops neither messages nor
        conversations at a limit (overage is billed, never refused).
        """
        known, plan = self._cached_plan(tenant_id)
        if not known:
            return False
        return plan is None or (channel in plan.channels and not plan.hard_stop(Unit.CUSTOMER_MESSAGES)
                                and not plan.hard_stop(Unit.CONVERSATIONS))

    def customer_message(self, tenant_id: str, conversation_id: str, message_id: int, channel: str,
                         human_owned: bool = False) -> QuotaDecision:
        """Meter one customer message (and its conversation, the first time) and decide if it may go on.

        A conversation already with a person is never cut off: its messages are recorded even past a
        hard limit (and only billed where the plan has an overage price).
        """
        plan = self.plan_for(tenant_id)
        if plan is not None and channel not in plan.channels and not human_owned:
            return QuotaDecision(False, "channel_not_in_plan")
        conversation_key = (tenant_id, conversation_id)
        meters = [Meter(Unit.CUSTOMER_MESSAGES, f"message:{message_id}")]
        if conversation_key not in self._metered:
            meters.insert(0, Meter(Unit.CONVERSATIONS, f"conversation:{conversation_id}"))

        def allow(unit: Unit, total: int) -> bool:
            if plan is None or human_owned or not plan.hard_stop(unit):
                return True
            return total <= (plan.limit(unit) or 0)

        # Only a hard limit needs the totals checked before the batch commits.
        limited = plan is not None and not human_owned and any(plan.hard_stop(m.unit) for m in meters)
        try:
            totals = self.ledger.record(tenant_id, meters, self.clock(), {"conversation_id": conversation_id,
                                                                           "channel": channel},
                                        allow if limited else None)
        except QuotaExceededError as exc:
            self._announce(tenant_id, plan, {exc.unit: exc.total - 1}, force_level=100)
            return QuotaDecision(False, "limit_reached", exc.unit, offer_handoff=bool(plan and plan.handoff_on_limit))
        self._metered.add(conversation_key)
        self._announce(tenant_id, plan, totals)
        return QuotaDecision(True, totals=totals)

    def meter(self, tenant_id: str, unit: Unit, key: str, quantity: int = 1, at: datetime | None = None,
              source: dict[str, Any] | None = None) -> bool:
        """Record an event that is billed but not refused (a handoff, a training run); True when new."""
        totals = self.ledger.record(tenant_id, [Meter(unit, key, quantity)], at or self.clock(), source)
        if totals:
            self._announce(tenant_id, self.plan_for(tenant_id), totals)
        return bool(totals)

    def meter_within_plan(self, tenant_id: str, unit: Unit, key: str, source: dict[str, Any] | None = None) -> bool:
        """Record one event of a limited unit only if it fits the plan (atomic: racing events cannot both
        take the last one). True when recorded (or recorded before under ``key``), False when refused."""
        plan = self.plan_for(tenant_id)
        limit = plan.limit(unit) if plan is not None and plan.hard_stop(unit) else None
        try:
            totals = self.ledger.record(tenant_id, [Meter(unit, key, 1)], self.clock(), source,
                                        allow=None if limit is None else (lambda _unit, total: total <= limit))
        except QuotaExceededError:
            return False
        if totals:
            self._announce(tenant_id, plan, totals)
        return True

    def may_use(self, tenant_id: str, unit: Unit) -> bool:
        """Whether one more of a metered unit (a training run, say) fits the plan this period."""
        plan = self.plan_for(tenant_id)
        if plan is None or not plan.hard_stop(unit):
            return True
        used = self.ledger.totals(tenant_id, period_of(self.clock())).get(unit, 0)
        return used < (plan.limit(unit) or 0)

    def gauge_limit(self, tenant_id: str, unit: Unit) -> int | None:
        """The hard limit of a gauge unit on the tenant's plan now (None: not limited)."""
        assert unit in GAUGES
        plan = self.plan_for(tenant_id)
        if plan is None or not plan.hard_stop(unit):
            return None
        return plan.limit(unit) or 0

    def can_add(self, tenant_id: str, unit: Unit, in_use: int) -> bool:
        """Whether one more of a gauge unit (agent seat, knowledge-base document) fits the plan."""
        assert unit in GAUGES
        plan = self.plan_for(tenant_id)
        if plan is None or not plan.hard_stop(unit):
            return True
        return in_use < (plan.limit(unit) or 0)

    # ---------------------------------------------------------------- alerts
    def _announce(self, tenant_id: str, plan: Plan | None, totals: dict[Unit, int], force_level: int | None = None) -> None:
        """Tell the tenant once per period and unit when usage crosses 80 % and 100 % of a limit."""
        if plan is None:
            return
        period = period_of(self.clock())
        for unit, total in totals.items():
            limit = plan.limit(unit)
            if not limit:
                continue
            levels = [level for level in WARNING_LEVELS if total * 100 >= level * limit]
            if force_level:
                levels.append(force_level)
            for level in sorted(set(levels)):
                key = (tenant_id, period, unit.value, str(level))
                if key in self._announced:
                    continue
                with self._sessions.begin() as session:
                    new = session.execute(dialect_insert(session, UsageAlert).values(
                        tenant_id=tenant_id, period=period, unit=unit.value, level=level, created_at=utcnow(),
                    ).on_conflict_do_nothing().returning(UsageAlert.level)).scalar_one_or_none()
                    if new is None:
                        self._announced.add(key)
                        continue
                    event = "usage.warning" if level < 100 else "usage.limit_reached"
                    queue_event(session, tenant_id, event, {"unit": unit.value, "period": period, "used": total,
                                                            "limit": limit, "percent": level, "plan": plan.id,
                                                            "policy": "hard_stop" if plan.hard_stop(unit) else "overage"})
                self._announced.add(key)
                logger.warning("tenant %s used %s%% of its %s %s limit (%s of %s)", tenant_id, level, period,
                               unit.value, total, limit)

    def alerts(self, tenant_id: str, period: str) -> list[dict[str, Any]]:
        """The warnings of a period, for the usage page's banner."""
        with self._sessions() as session:
            rows = session.execute(select(UsageAlert).where(UsageAlert.tenant_id == tenant_id,
                                                            UsageAlert.period == period)
                                   .order_by(UsageAlert.created_at)).scalars().all()
            return [{"unit": r.unit, "level": r.level, "at": r.created_at.isoformat()} for r in rows]

    # ------------------------------------------------------------------ view
    def gauges_now(self, tenant_id: str) -> dict[Unit, int]:
        """Agent seats (active agents) and knowledge-base documents in use right now."""
        from gateway.db.models import Agent, KnowledgeDocument

        with self._sessions() as session:
            seats = session.execute(select(func.count()).select_from(Agent).where(
                Agent.tenant_id == tenant_id, Agent.active.is_(True))).scalar_one()
            documents = session.execute(select(func.count()).select_from(KnowledgeDocument).where(
                KnowledgeDocument.tenant_id == tenant_id)).scalar_one()
        return {Unit.AGENT_SEATS: int(seats), Unit.KB_DOCUMENTS: int(documents)}

    def summary(self, tenant_id: str, period: str | None = None) -> dict[str, Any]:
        """Usage of a period per unit against the plan, per day, with alerts and the reconciliation check."""
        period = period or period_of(self.clock())
        plan = self.plan_for(tenant_id)
        totals = self.ledger.totals(tenant_id, period)
        if period == period_of(self.clock()):
            # Gauges are metered when the period closes; while it runs, the page shows what is in use now.
            totals = {**totals, **self.gauges_now(tenant_id)}
        daily = self.ledger.daily(tenant_id, period)
        units = []
        for unit in Unit:
            limit = plan.limit(unit) if plan else None
            used = totals.get(unit, 0)
            units.append({"unit": unit.value, "kind": "gauge" if unit in GAUGES else "count", "used": used,
                          "limit": limit,
                          "percent": round(100 * used / limit, 1) if limit else None,
                          "policy": None if plan is None or limit is None else
                          ("hard_stop" if plan.hard_stop(unit) else "overage"),
                          "daily": daily.get(unit, {})})
        return {"tenant_id": tenant_id, "period": period, "plan": plan.model_dump(mode="json") if plan else None,
                "units": units, "alerts": self.alerts(tenant_id, period),
                "reconciled": not self.ledger.reconcile(tenant_id, period)}
