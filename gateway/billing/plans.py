"""Billable units and plans: monthly fee, limits, overage prices and allowed channels."""

from __future__ import annotations

import enum
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import PlanRow, utcnow
from gateway.db.session import single_read_sessions


class Unit(str, enum.Enum):
    """What a tenant is billed and limited by."""

    CONVERSATIONS = "conversations"
    CUSTOMER_MESSAGES = "customer_messages"
    BOT_RESOLVED = "bot_resolved_conversations"
    HANDOFFS = "handoffs"
    AGENT_SEATS = "agent_seats"
    KB_DOCUMENTS = "kb_documents"
    TRAINING_RUNS = "training_runs"


#: Units counted as "how many are in use" (checked when one is added, billed at period close);
#: every other unit counts events.
GAUGES = frozenset({Unit.AGENT_SEATS, Unit.KB_DOCUMENTS})


class Plan(BaseModel):
    """One plan.

    Attributes:
        id: Stable identifier (``free``, ``pro``, ``enterprise``).
        name: Shown on invoices and pages.
        currency: ISO currency of every price.
        monthly_fee: Price of a full month; a partial month is prorated by the second.
        limits: Included quantity per unit and month; a unit that is absent is unlimited.
        overage: Price per unit beyond the limit. A limited unit without an overage price is a hard
            stop: at 100 % the request is refused.
        channels: Channels customers may use (``web``, ``api``, ``slack``).
        handoff_on_limit: At a hard stop on messages, offer the customer a person instead.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    name: str
    currency: str = "USD"
    monthly_fee: Decimal = Field(ge=0)
    limits: dict[Unit, int] = Field(default_factory=dict)
    overage: dict[Unit, Decimal] = Field(default_factory=dict)
    channels: list[str] = Field(default_factory=lambda: ["web", "api"])
    handoff_on_limit: bool = False

    def limit(self, unit: Unit) -> int | None:
        """Included quantity of ``unit`` (None: unlimited)."""
        return self.limits.get(unit)

    def hard_stop(self, unit: Unit) -> bool:
        """Whether reaching the limit of ``unit`` refuses further use (no overage price)."""
        return unit in self.limits and unit not in self.overage


SEED_PLANS = [
    Plan(id="free", name="Free", monthly_fee=Decimal("0"),
         limits={Unit.CONVERSATIONS: 100, Unit.CUSTOMER_MESSAGES: 1000, Unit.HANDOFFS: 20, Unit.AGENT_SEATS: 2,
                 Unit.KB_DOCUMENTS: 50, Unit.TRAINING_RUNS: 2},
         channels=["web", "api"], handoff_on_limit=False),
    Plan(id="pro", name="Pro", monthly_fee=Decimal("49.00"),
         limits={Unit.CONVERSATIONS: 2000, Unit.CUSTOMER_MESSAGES: 20000, Unit.HANDOFFS: 500, Unit.AGENT_SEATS: 10,
                 Unit.KB_DOCUMENTS: 1000, Unit.TRAINING_RUNS: 20},
         overage={Unit.CONVERSATIONS: Decimal("0.05"), Unit.CUSTOMER_MESSAGES: Decimal("0.005"),
                  Unit.HANDOFFS: Decimal("0.50"), Unit.TRAINING_RUNS: Decimal("2.00")},
         channels=["web", "api", "slack"], handoff_on_limit=True),
    Plan(id="enterprise", name="Enterprise", monthly_fee=Decimal("499.00"),
         limits={Unit.CONVERSATIONS: 50000, Unit.CUSTOMER_MESSAGES: 500000, Unit.HANDOFFS: 10000,
                 Unit.AGENT_SEATS: 200, Unit.KB_DOCUMENTS: 20000, Unit.TRAINING_RUNS: 200},
         overage={Unit.CONVERSATIONS: Decimal("0.02"), Unit.CUSTOMER_MESSAGES: Decimal("0.002"),
                  Unit.HANDOFFS: Decimal("0.25"), Unit.TRAINING_RUNS: Decimal("1.00"),
                  Unit.AGENT_SEATS: Decimal("15.00"), Unit.KB_DOCUMENTS: Decimal("0.01")},
         channels=["web", "api", "slack"], handoff_on_limit=True),
]


class UnknownPlanError(LookupError):
    """No plan with this id."""


class PlanStore:
    """Plans in the database (seeded with Free, Pro and Enterprise)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # one-statement lookups: no BEGIN/ROLLBACK

    def seed(self) -> None:
        """Create the seed plans that do not exist yet (existing ones are left as edited).

        Safe to run from several processes at once: a plan another one inserted first is left alone.
        """
        for plan in SEED_PLANS:
            try:
                with self._sessions.begin() as session:
                    if session.get(PlanRow, plan.id) is None:
                        session.add(PlanRow(id=plan.id, config=plan.model_dump(mode="json")))
            except IntegrityError:
                continue

    def put(self, plan: Plan) -> Plan:
        """Create or replace a plan."""
        with self._sessions.begin() as session:
            row = session.get(PlanRow, plan.id)
            if row is None:
                session.add(PlanRow(id=plan.id, config=plan.model_dump(mode="json")))
            else:
                row.config, row.updated_at = plan.model_dump(mode="json"), utcnow()
        return plan

    def get(self, plan_id: str) -> Plan:
        """A plan.

        Raises:
            UnknownPlanError: No such plan.
        """
        with self._reads() as session:
            row = session.get(PlanRow, plan_id)
            if row is None:
                raise UnknownPlanError(f"no plan {plan_id!r}")
            return Plan.model_validate(row.config)

    def list(self) -> list[Plan]:
        """Every plan, cheapest first."""
        with self._sessions() as session:
            plans = [Plan.model_validate(c) for c in session.execute(select(PlanRow.config)).scalars()]
        return sorted(plans, key=lambda p: (p.monthly_fee, p.id))
